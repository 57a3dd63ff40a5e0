"""The activity pane's filter, in the shared filter language: sessions matched as the table shows them."""

from __future__ import annotations

from collections.abc import Iterable

from pgiam_tui.ui.activity_model import STATE_SHORT, Located, client_of, wait_of
from pgiam_tui.ui.filter_language import FieldKind, Filter, FilterField, FilterLanguage

# Every name a state is known by: PostgreSQL's own and the table's short form.
_STATE_NAMES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
    *STATE_SHORT.values(),
)


def _state(loc: Located) -> tuple[str | None, ...]:
    state = loc.row.state
    return (STATE_SHORT.get(state, state) if state else None, state)


def _words(loc: Located) -> Iterable[str | None]:
    r = loc.row
    return (
        r.query,
        r.usename,
        r.datname,
        r.application_name,
        client_of(r),
        r.client_addr,
        *_state(loc),
        wait_of(r),
        r.instance,
        str(r.pid),
        loc.cluster,
    )


ACTIVITY_FILTER: FilterLanguage[Located] = FilterLanguage(
    fields=(
        FilterField("state", FieldKind.CHOICE, "'idle tx'", texts=_state, choices=_STATE_NAMES),
        FilterField("user", FieldKind.TEXT, "name", texts=lambda loc: (loc.row.usename,)),
        FilterField(
            "db", FieldKind.TEXT, "name", texts=lambda loc: (loc.row.datname,), aliases=("database",)
        ),
        FilterField(
            "app",
            FieldKind.TEXT,
            "name",
            texts=lambda loc: (loc.row.application_name,),
            aliases=("application",),
        ),
        FilterField(
            "client",
            FieldKind.TEXT,
            "host",
            texts=lambda loc: (client_of(loc.row), loc.row.client_addr),
            aliases=("host",),
        ),
        FilterField("wait", FieldKind.TEXT, "lock", texts=lambda loc: (wait_of(loc.row),)),
        FilterField("query", FieldKind.TEXT, "text", texts=lambda loc: (loc.row.query,)),
        FilterField("instance", FieldKind.TEXT, "reader", texts=lambda loc: (loc.row.instance,)),
        FilterField("cluster", FieldKind.TEXT, "name", texts=lambda loc: (loc.cluster,)),
        FilterField("pid", FieldKind.NUMBER, "123", number=lambda loc: loc.row.pid),
        FilterField("min", FieldKind.AT_LEAST, "10s", number=lambda loc: loc.row.duration_s),
    ),
    words=_words,
    example="state:'idle tx' user:oltp min:10s -db:postgres words",
)


def parse_activity_filter(text: str) -> Filter[Located]:
    """Parse `/` input of the activity pane (FilterError, a ValueError, when it is not valid)."""
    return ACTIVITY_FILTER.parse(text)
