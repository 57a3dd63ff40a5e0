"""What the activity table shows, independent of Textual: columns, filters, highlighting, blocking trees.

Kept apart from the widget so it can be unit-tested and benchmarked without a screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.render import SortCell, cell, fmt_duration, num_key

LONG_RUNNING_S = 60.0  # an active query older than this stands out


@dataclass(frozen=True, slots=True)
class Located:
    """A session together with the cluster it belongs to."""

    cluster: str
    row: SessionRow

    @property
    def key(self) -> str:
        """Row key unique across clusters."""
        return f"{self.cluster}/{self.row.key}"


def is_background(row: SessionRow) -> bool:
    """Server processes (autovacuum, walwriter, ...) rather than client sessions."""
    return row.backend_type is not None and row.backend_type != "client backend"


def is_idle(row: SessionRow) -> bool:
    """Plain idle sessions (not idle in transaction)."""
    return row.state == "idle"


def blockers_of(rows: Iterable[SessionRow]) -> set[tuple[str, int]]:
    """(instance, pid) of every session that blocks at least one other."""
    return {(r.instance, pid) for r in rows for pid in r.blocked_by}


def row_class(row: SessionRow, blockers: set[tuple[str, int]]) -> str:
    """Highlight class: 'blocker', 'waiting', 'idle_tx', 'long', or ''."""
    if (row.instance, row.pid) in blockers:
        return "blocker"
    if row.blocked_by or row.wait_event_type == "Lock":
        return "waiting"
    if row.state and row.state.startswith("idle in transaction"):
        return "idle_tx"
    if row.state == "active" and (row.duration_s or 0.0) >= LONG_RUNNING_S:
        return "long"
    return ""


# Lock holders and waiters in true colours: the ANSI names ("magenta", "red") map to one and the same RGB in
# Textual's dark themes. These two differ in hue and stay readable on every built-in theme's background
# (tests/unit/test_ui_blocking_tree.py checks all of them).
ROW_STYLES = {
    "blocker": "bold #c061cb",
    "waiting": "bold #ef4444",
    "idle_tx": "yellow",
    "long": "bold yellow",
    "": "",
}
STATE_STYLES = {"active": "green", "idle": "dim"}


@dataclass(frozen=True, slots=True)
class Column:
    """One activity column: header, width and how to make its cell from a row.

    Cells hold the whole text; the table cuts it to the column's width when it draws the row (with
    "…"), keeping one trailing space so columns stay apart. `width` is what the column gets at least;
    with room to spare it grows up to `max_width` (wait events and user names are then not cut).
    """

    key: str
    label: str
    width: int | None  # None: takes the rest of the table's width (the query)
    make: Callable[[SessionRow, str], SortCell]
    # SessionRow fields the cell is made from.
    fields: tuple[str, ...] = ()
    # The sort key straight from the row, without making the cell: sorting 10,000 rows then costs one
    # cheap call per row (None: the made cell's own sort_key).
    sort_by: Callable[[SessionRow], Any] | None = None
    # False: sortable (palette) and in the detail screen, but not a table column.
    shown: bool = True
    max_width: int | None = None  # grows up to this with room to spare (None: fixed)
    keep_end: bool = False  # cut from the start ("…1-reader": instance ids differ at the end)

    def sort_key_of(self, row: SessionRow) -> Any:
        """What sorting by this column compares for `row`."""
        if self.sort_by is not None:
            return self.sort_by(row)
        return self.make(row, "").sort_key


_NONE_FIRST = -math.inf  # a missing number sorts first, as num_key does (plain floats compare faster)
QUERY_MIN_WIDTH = 16
QUERY_FLOOR = 8  # narrower than this, the query column scrolls out instead
QUERY_COMFORT = 60  # the query keeps this much before other columns grow
# When the query would get less than QUERY_MIN_WIDTH, these columns are left out, in this order (still
# in the detail screen, the filter and sorting): at 80 columns pid, state, blocker, duration and query stay.
COLUMNS_GIVING_WAY = ("app", "db", "wait", "instance", "user")
# With room to spare, these grow first (then in column order).
COLUMNS_GROWING = ("wait", "user", "app", "instance", "db")
QUERY_MAX_LEN = 400  # characters kept in the query cell (the detail screen has the whole text)
CLUSTER_WIDTH = 13
CLUSTER_MAX_WIDTH = 28

# pg_stat_activity states, shortened to fit the 8 characters of the state cell
STATE_SHORT = {
    "idle in transaction": "idle tx",
    "idle in transaction (aborted)": "idle tx!",
    "fastpath function call": "fastpath",
}


def text_key(s: str | None) -> tuple[int, str]:
    """Sort key of an optional text: missing first, then case-insensitive."""
    return (0, "") if s is None else (1, s.lower())


def _state_cell(r: SessionRow, style: str) -> SortCell:
    state = r.state or ""
    short = STATE_SHORT.get(state, state)
    return cell(short, (1, state), style=style or STATE_STYLES.get(state, ""))


def client_of(r: SessionRow) -> str | None:
    """The client as the table shows it: host name, else address, else 'local' (Unix socket)."""
    host = r.client_hostname or r.client_addr
    if host is None:
        return "local" if r.client_port == -1 else None
    return host


def wait_of(r: SessionRow) -> str | None:
    """The wait as the table shows it: `Type:Event`."""
    if not r.wait_event_type:
        return None
    return f"{r.wait_event_type}:{r.wait_event or ''}"


def blocked_text(r: SessionRow) -> str:
    """The blockers as the narrow column shows them: the first pid, then how many more ("4102+2")."""
    if not r.blocked_by:
        return ""
    first = str(r.blocked_by[0])
    return first if len(r.blocked_by) == 1 else f"{first}+{len(r.blocked_by) - 1}"


def _text_column(key: str, label: str, width: int, field: str, max_width: int | None = None) -> Column:
    """A column showing one optional text field."""
    get = attrgetter(field)
    return Column(
        key,
        label,
        width,
        lambda r, s: cell(get(r), style=s),
        (field,),
        lambda r: text_key(get(r)),
        max_width=max_width,
    )


# In display order: what a DBA scans first, the query last, taking the rest of the width.
ACTIVITY_COLUMNS: tuple[Column, ...] = (
    Column(
        "instance",
        "instance",
        10,
        lambda r, s: cell(r.instance, text_key(r.instance), style=s),
        ("instance",),
        lambda r: text_key(r.instance),
        max_width=30,
        keep_end=True,
    ),
    Column(
        "pid", "pid", 8, lambda r, s: cell(str(r.pid), num_key(r.pid), style=s), ("pid",), attrgetter("pid")
    ),
    # 13: a 12-character role name ("oltp_rw_user") whole, plus the space that keeps columns apart
    _text_column("user", "user", 13, "usename", max_width=24),
    _text_column("db", "db", 8, "datname", max_width=16),
    _text_column("app", "app", 12, "application_name", max_width=24),
    Column("state", "state", 9, _state_cell, ("state",)),
    Column(
        "wait",
        "wait",
        11,
        lambda r, s: cell(wait_of(r), style=s),
        ("wait_event_type", "wait_event"),
        max_width=30,
    ),
    Column(
        "blocked_by",
        "blk by",
        8,
        lambda r, s: cell(blocked_text(r), (len(r.blocked_by), r.blocked_by), style=s),
        ("blocked_by",),
    ),
    Column(
        "duration",
        "dur",
        7,
        lambda r, s: cell(fmt_duration(r.duration_s), num_key(r.duration_s), style=s),
        ("duration_s",),
        lambda r: _NONE_FIRST if r.duration_s is None else r.duration_s,
    ),
    Column(
        "query",
        "query",
        None,
        lambda r, s: cell(r.query, style=s, max_len=QUERY_MAX_LEN),
        ("query",),
        lambda r: text_key(r.query),
    ),
    Column(
        "xact",
        "xact",
        7,
        lambda r, s: cell(fmt_duration(r.xact_duration_s), num_key(r.xact_duration_s), style=s),
        ("xact_duration_s",),
        lambda r: _NONE_FIRST if r.xact_duration_s is None else r.xact_duration_s,
        shown=False,
    ),
    Column(
        "client",
        "client",
        16,
        lambda r, s: cell(client_of(r), style=s),
        ("client_hostname", "client_addr", "client_port"),
        shown=False,
    ),
)
SORTABLE = tuple(c.key for c in ACTIVITY_COLUMNS)
COLUMN_LABELS = {c.key: c.label for c in ACTIVITY_COLUMNS} | {"cluster": "cluster"}
COLUMNS_BY_KEY = {c.key: c for c in ACTIVITY_COLUMNS}


def layout_columns(available: int, *, instance: bool, cluster: bool) -> dict[str, int]:
    """Column key -> width for a table `available` cells wide (the query takes what is left).

    Narrow: columns give way (COLUMNS_GIVING_WAY) until the query has QUERY_MIN_WIDTH. Wide: once the
    query has QUERY_COMFORT, the rest goes to the columns that were cut (COLUMNS_GROWING), up to
    their max_width, then back to the query.
    """
    keys = [c.key for c in ACTIVITY_COLUMNS if c.shown and (c.key != "instance" or instance)]
    widths: dict[str, int] = {k: COLUMNS_BY_KEY[k].width or 0 for k in keys if k != "query"}
    if cluster:
        widths = {"cluster": CLUSTER_WIDTH, **widths}
    for optional in COLUMNS_GIVING_WAY:
        if available <= 0 or available - sum(widths.values()) >= QUERY_MIN_WIDTH:
            break
        widths.pop(optional, None)
    spare = available - sum(widths.values()) - QUERY_COMFORT
    growing = [k for k in ("cluster", *COLUMNS_GROWING) if k in widths]
    for key in growing:
        if spare <= 0:
            break
        limit = CLUSTER_MAX_WIDTH if key == "cluster" else COLUMNS_BY_KEY[key].max_width or widths[key]
        grow = min(spare, limit - widths[key])
        if grow > 0:
            widths[key] += grow
            spare -= grow
    query = max(QUERY_FLOOR, available - sum(widths.values()))
    ordered = {k: widths[k] for k in ("cluster", *keys) if k in widths}
    ordered["query"] = query
    return ordered


def row_cells(
    row: SessionRow, blockers: set[tuple[str, int]], cluster: str | None = None
) -> tuple[SortCell, ...]:
    """Cells of one row, in ACTIVITY_COLUMNS order (with a leading cluster cell when `cluster` is given)."""
    return styled_cells(row, ROW_STYLES[row_class(row, blockers)], cluster)


def styled_cells(row: SessionRow, style: str, cluster: str | None = None) -> tuple[SortCell, ...]:
    """Cells of one row with its highlight `style` already worked out (see `row_cells`)."""
    cells = tuple(c.make(row, style) for c in ACTIVITY_COLUMNS)
    if cluster is not None:
        return (cell(cluster, style=style), *cells)
    return cells


@dataclass(frozen=True, slots=True)
class BlockNode:
    """A session in the blocking tree with the sessions it blocks."""

    row: SessionRow
    children: tuple[BlockNode, ...]


def blocking_forest(rows: Sequence[SessionRow]) -> list[BlockNode]:
    """Trees of blocker -> blocked per instance; roots are blockers that nobody blocks (cycles cut)."""
    by_id = {(r.instance, r.pid): r for r in rows}
    children: dict[tuple[str, int], list[SessionRow]] = {}
    for r in rows:
        for pid in r.blocked_by:
            children.setdefault((r.instance, pid), []).append(r)
    blocked = {(r.instance, r.pid) for r in rows if r.blocked_by}
    roots = [k for k in children if k not in blocked and k in by_id]
    # A deadlock-style cycle has no root: start from its lowest pid so it is still shown.
    seen_any: set[tuple[str, int]] = set()

    def build(key: tuple[str, int], path: frozenset[tuple[str, int]]) -> BlockNode:
        seen_any.add(key)
        kids = tuple(
            build((k.instance, k.pid), path | {key})
            for k in sorted(children.get(key, []), key=lambda x: x.pid)
            if (k.instance, k.pid) not in path and (k.instance, k.pid) != key
        )
        return BlockNode(by_id[key], kids)

    forest = [build(k, frozenset()) for k in sorted(roots)]
    for k in sorted(children):
        if k not in seen_any and k in by_id:
            forest.append(build(k, frozenset()))
    return forest


def blocking_chain(row: SessionRow, rows: Sequence[SessionRow]) -> list[SessionRow]:
    """The sessions `row` waits behind, nearest first (following the first blocker; cycles cut)."""
    by_id = {(r.instance, r.pid): r for r in rows}
    chain: list[SessionRow] = []
    seen = {(row.instance, row.pid)}
    current = row
    while current.blocked_by:
        key = (current.instance, current.blocked_by[0])
        nxt = by_id.get(key)
        if nxt is None or key in seen:
            break
        chain.append(nxt)
        seen.add(key)
        current = nxt
    return chain


def blocked_by_row(row: SessionRow, rows: Sequence[SessionRow]) -> list[SessionRow]:
    """Sessions waiting directly on `row`."""
    return [r for r in rows if r.instance == row.instance and row.pid in r.blocked_by]
