"""The events pane: one row per connection attempt (and per event of the console itself), newest first.

A row shows the attempt's outcome, user, database, client host, authentication method and AWS's error code;
Enter opens its detail (every raw log line, AWS's reason, the caller ARN). Below the table: failed logins per
user and host (the same count as the cluster list and `snapshot`), then the AssumeRole sources.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import ColumnKey

from pgiam_tui.model import Attempt, ClusterSnapshot, ConnEvent, EventKind, Outcome
from pgiam_tui.ui.filter_language import FieldKind, Filter, FilterField, FilterLanguage
from pgiam_tui.ui.render import SortCell, cell, fmt_time, safe_text
from pgiam_tui.ui.widgets.cached_table import CachedCellTable
from pgiam_tui.ui.widgets.filterable import FilterablePane
from pgiam_tui.ui.widgets.text_line import TextLine, update_static

# Label and colour per outcome: a failure must be told from a login at a glance.
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    Outcome.OK: ("ok", "green"),
    Outcome.FAILED: ("FAILED", "bold white on red"),
    Outcome.REFUSED: ("REFUSED", "bold red"),
}
# The console's own events are rows too (they are not lines of the server's log).
CONSOLE_LABELS: dict[str, tuple[str, str]] = {
    EventKind.CLIENT_CONNECT: ("console ok", "cyan"),
    EventKind.CLIENT_FAILED: ("console FAIL", "bold red"),
    EventKind.ACTION: ("ACTION", "bold magenta"),
}


@dataclass(frozen=True, slots=True)
class PaneRow:
    """One row of the pane: an attempt, or an event of the console itself."""

    attempt: Attempt | None = None
    event: ConnEvent | None = None

    def names(self) -> tuple[str, ...]:
        """The names `kind:` (or `outcome:`) matches, whole: the outcome shown, `fail` for every failed
        login, the method, AWS's code and `iam` when AWS gave one; for the console's rows their label."""
        if self.attempt is not None:
            a = self.attempt
            out = [OUTCOME_LABELS[a.outcome][0], a.outcome.value]
            if a.failed:
                out += ["fail", "failed"]
            if a.method:
                out.append(a.method)
            if a.aws_code:
                out += [a.aws_code, "iam"]
            return tuple(out)
        assert self.event is not None
        kind = self.event.kind
        out = [CONSOLE_LABELS.get(kind, (str(kind), ""))[0], str(kind), "console"]
        if kind == EventKind.CLIENT_FAILED:
            out += ["fail", "failed"]
        if kind == EventKind.CLIENT_CONNECT:
            out.append("ok")
        return tuple(out)

    def value(self, name: str) -> str | None:
        """The text of one field (user, db, host, method, aws, source, instance)."""
        a, e = self.attempt, self.event
        if a is not None:
            return {"user": a.user, "db": a.database, "host": a.host, "method": a.method, "aws": a.aws_code,
                    "source": a.source, "instance": a.instance}.get(name)  # fmt: skip
        assert e is not None
        return {"user": e.user, "db": e.database, "host": e.host, "method": e.method, "aws": None,
                "source": e.source, "instance": e.instance}.get(name)  # fmt: skip

    @property
    def pid(self) -> int | None:
        """The backend pid."""
        return self.attempt.pid if self.attempt is not None else self.event.pid if self.event else None

    def words(self) -> tuple[str | None, ...]:
        """Every text a free word may match."""
        if self.attempt is not None:
            a = self.attempt
            return (a.user, a.database, a.host, a.message, a.aws_code, a.aws_reason, a.caller_arn, a.method,
                    a.source, *self.names(), *a.lines)  # fmt: skip
        assert self.event is not None
        e = self.event
        return (e.message, e.user, e.database, e.host, e.caller_arn, e.source, *self.names())


def _choices() -> tuple[str, ...]:
    names = [label for label, _ in OUTCOME_LABELS.values()] + [o.value for o in Outcome]
    names += [label for label, _ in CONSOLE_LABELS.values()] + [str(k) for k in CONSOLE_LABELS]
    names += ["fail", "failed", "console", "iam", "InvalidToken", "ExpiredToken", "NotAuthorized",
              "ThrottlingException", "InternalError", "password", "pam"]  # fmt: skip
    return tuple(dict.fromkeys(names))


def _text_field(name: str, help_: str, *aliases: str) -> FilterField[PaneRow]:
    return FilterField(name, FieldKind.TEXT, help_, texts=lambda r: (r.value(name),), aliases=aliases)


EVENT_FILTER: FilterLanguage[PaneRow] = FilterLanguage(
    fields=(
        FilterField(
            "kind", FieldKind.CHOICE, "failed", texts=PaneRow.names, choices=_choices(), aliases=("outcome",)
        ),
        _text_field("user", "name"),
        _text_field("db", "name", "database"),
        _text_field("host", "ip"),
        _text_field("method", "iam"),
        _text_field("aws", "ExpiredToken"),
        _text_field("source", "cloudwatch"),
        _text_field("instance", "reader"),
        FilterField("pid", FieldKind.NUMBER, "123", number=lambda r: r.pid),
    ),
    words=PaneRow.words,
    example="kind:failed user:oltp aws:ExpiredToken -host:10.0.1.23 words",
)


def parse_event_filter(text: str) -> Filter[PaneRow]:
    """Parse `/` input of the events pane (FilterError, a ValueError, when it is not valid)."""
    return EVENT_FILTER.parse(text)


def pane_rows(snap: ClusterSnapshot) -> list[PaneRow]:
    """The rows of a snapshot: its attempts, and the console's own events."""
    rows = [PaneRow(attempt=a) for a in snap.attempts]
    rows.extend(PaneRow(event=e) for e in snap.events if e.kind in CONSOLE_LABELS)
    return rows


def row_key(row: PaneRow) -> str:
    """A stable key for a row across rounds."""
    if row.attempt is not None:
        raw = "a\x1f" + row.attempt.key
    else:
        e = row.event
        assert e is not None
        raw = "\x1f".join(
            str(x)
            for x in (
                "e",
                e.time.isoformat() if e.time else "",
                e.kind,
                e.pid,
                e.source,
                e.instance,
                e.message,
            )
        )
    return hashlib.blake2b(raw.encode("utf-8", "replace"), digest_size=10).hexdigest()


def ssl_label(ssl: dict[str, object] | None) -> str:
    """'TLSv1.3 AES256…' / 'no SSL' / ''."""
    if not ssl:
        return ""
    if ssl.get("enabled") is False:
        return "no SSL"
    parts = [str(ssl[k]) for k in ("protocol", "cipher", "bits") if ssl.get(k) is not None]
    return " ".join(parts) or "SSL"


def row_cells(row: PaneRow) -> tuple[SortCell, ...]:
    """Cells: time, outcome, user, AWS code, message, db, host, method."""
    if row.attempt is not None:
        a = row.attempt
        label, style = OUTCOME_LABELS[a.outcome]
        when, user, db, host, method, message = a.time, a.user, a.database, a.host, a.method, a.message
        aws = a.aws_code
        if a.aws_reason:
            message = f"AWS: {a.aws_reason} — {message}"
    else:
        e = row.event
        assert e is not None
        label, style = CONSOLE_LABELS.get(e.kind, (str(e.kind), ""))
        when, user, db, host, method, message, aws = e.time, e.user, e.database, e.host, None, e.message, None
    ts = when.timestamp() if when else 0.0
    return (
        cell(fmt_time(when), (ts,)),
        cell(label, style=style),
        cell(user, max_len=16),
        cell(aws, max_len=14, style="red" if aws else ""),
        cell(message, max_len=300),
        cell(db, max_len=10),
        cell(host, max_len=24),
        cell(method, max_len=8),
    )


# The message (where AWS's reason is) comes right after the AWS code, so that a pane a third of a wide
# terminal still shows it; its width is the room left (see EventsTable.fit_message), never a fixed 80.
EVENT_COLUMNS = (
    ("time", 8),
    ("outcome", 12),
    ("user", 12),
    ("aws", 13),
    ("message", 40),
    ("db", 8),
    ("host", 16),
    ("method", 6),
)
MESSAGE_LEAST = 20  # narrower than this, the message scrolls sideways instead of shrinking


class EventsTable(CachedCellTable[SortCell]):
    """Attempts of the selected cluster, newest first, diff-updated by row key. Enter opens a row's detail."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: dict[str, PaneRow] = {}
        self.event_filter: Filter[PaneRow] = Filter()
        self._sources: list[PaneRow] = []

    def on_mount(self) -> None:
        """Fixed-width columns, the message's fitted to the width the table has."""
        for name, width in EVENT_COLUMNS:
            self.add_column(name, width=width, key=name)
        self.fit_message()

    def on_resize(self, event: events.Resize) -> None:
        """New width: the message column takes the room there is."""
        self.fit_message()

    def fit_message(self) -> None:
        """The message column fills the width the other columns leave; when they leave too little, it fills
        what the columns before it leave (the ones after it scroll sideways), and never goes under
        MESSAGE_LEAST."""
        pad = 2 * self.cell_padding
        room = self.scrollable_content_region.width
        names = [name for name, _ in EVENT_COLUMNS]
        at = names.index("message")
        before = sum(width + pad for _, width in EVENT_COLUMNS[:at])
        after = sum(width + pad for _, width in EVENT_COLUMNS[at + 1 :])
        wanted = room - before - after - pad
        if wanted < MESSAGE_LEAST:
            wanted = max(MESSAGE_LEAST, room - before - pad)
        column = self.columns[ColumnKey("message")]
        if column.width != wanted:
            column.width = wanted
            self.refresh(layout=True)
            self._require_update_dimensions = True  # Textual re-measures columns on the next render

    def show(self, rows: Sequence[PaneRow], *, reset: bool = False) -> None:
        """Add new rows, update changed ones, drop those gone from the snapshot's window; newest first."""
        self._sources = list(rows)
        if reset:
            self.clear()
            self._shown.clear()
        wanted: dict[str, PaneRow] = {}
        for row in rows:
            if self.event_filter.active and not self.event_filter.matches(row):
                continue
            wanted[row_key(row)] = row
        changed = False
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
            for key, row in wanted.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*row_cells(row), key=key)
                    changed = True
                elif old != row:  # an attempt that learned more (AWS's reason, its disconnection)
                    for (name, _), value in zip(EVENT_COLUMNS, row_cells(row), strict=True):
                        self.update_cell(key, name, value)
                self._shown[key] = row
            if changed:
                self.sort("time", key=lambda c: c.sort_key, reverse=True)

    def reapply(self) -> None:
        """Re-filter the last rows."""
        self.show(self._sources)

    def row_at_cursor(self) -> PaneRow | None:
        """The row under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self._shown.get(key or "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: its detail screen."""
        from pgiam_tui.ui.screens.attempt_detail import AttemptDetailScreen

        row = self._shown.get(event.row_key.value or "")
        if row is not None:
            event.stop()
            self.app.push_screen(AttemptDetailScreen(row.attempt, row.event))


def failures_text(snap: ClusterSnapshot) -> Text:
    """Failed logins per user/host, then AssumeRole sources."""
    text = Text()
    text.append("Failed logins (user @ host): ", style="bold")
    if not snap.failures:
        text.append("none", style="dim")
    for i, f in enumerate(sorted(snap.failures, key=lambda x: -x.count)[:6]):
        if i:
            text.append("  ")
        text.append(f"{f.count}× ", style="bold red")
        text.append_text(safe_text(f.user, 16, none="?"))
        text.append(" @ ", style="dim")
        text.append_text(safe_text(f.host, 28, none="?"))
    iam = snap.iam
    if iam is not None and iam.assume_role_events:
        text.append("\nAssumeRole: ", style="bold")
        for i, a in enumerate(iam.assume_role_events[:4]):
            if i:
                text.append("  ")
            text.append(fmt_time(a.time) + " ", style="dim")
            text.append_text(safe_text(a.source_account, 14, none="?"))
            text.append(" from ", style="dim")
            text.append_text(safe_text(a.source_ip, 40, none="?"))
    return text


class EventsPane(FilterablePane):
    """Title, attempts table, failures summary and filter input."""

    ALLOW_MAXIMIZE = True
    can_focus = False
    FILTER_INPUT_ID = "events-filter"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.cluster_name: str | None = None

    def compose(self) -> ComposeResult:
        """Title, table, summary, filter."""
        yield TextLine(Text("Logins", style="bold"), classes="pane-title", id="events-title")
        yield EventsTable(id="events-table")
        yield Static("", id="events-summary")
        yield Input(placeholder=f"filter: {EVENT_FILTER.example}   (Esc closes)", id="events-filter")

    @property
    def table(self) -> EventsTable:
        """The attempts table."""
        return self.query_one(EventsTable)

    def show_snapshot(self, snap: ClusterSnapshot | None, *, name: str | None = None) -> None:
        """Render one cluster's attempts (switching cluster resets the table)."""
        reset = name != self.cluster_name
        self.cluster_name = name
        self.table.show(pane_rows(snap) if snap is not None else [], reset=reset)
        summary = self.query_one("#events-summary", Static)
        update_static(summary, failures_text(snap) if snap is not None else Text(""))
        self._update_title()

    def _update_title(self) -> None:
        table = self.table
        title = Text()
        title.append("Logins", style="bold")
        title.append(f"  {table.row_count} shown", style="dim")
        if table.event_filter.active:
            title.append(f" · filter '{table.event_filter.text}'", style="dim")
        self.query_one("#events-title", TextLine).set(title)

    def current_filter_text(self) -> str:
        """The text of the event filter in force."""
        return self.table.event_filter.text

    def set_filter(self, text: str) -> None:
        """Parse and apply an event filter (FilterError, a ValueError, when it is not valid)."""
        self.table.event_filter = parse_event_filter(text)
