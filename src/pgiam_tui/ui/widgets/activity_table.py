"""The activity table: pg_stat_activity as a DataTable updated in place by row key.

Updates follow dolphie's Processlist in spirit: rows that went away are removed, new rows added, the
others updated in place; the table is never cleared while live, so the cursor (kept on its row key
across re-sorts) and the scroll position stay where the DBA left them. For 10,000-row rounds the row
bookkeeping is done once per round and cells are made only for rows on screen (see ActivityTable).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.binding import BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, Row, RowKey

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.activity_model import (
    ACTIVITY_COLUMNS,
    COLUMN_LABELS,
    COLUMNS_GIVING_WAY,
    QUERY_FLOOR,
    QUERY_MIN_WIDTH,
    ROW_STYLES,
    Located,
    blockers_of,
    row_class,
    styled_cells,
    text_key,
)
from pgiam_tui.ui.filter_language import Filter
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.render import SortCell


class _LiveRow(dict[ColumnKey, SortCell]):
    """What the table holds per row key: the session as of the last round, its highlight, its cells.

    It is also DataTable's cell mapping for the row (`_data[row_key]`), kept empty: DataTable reads a
    cell as `mapping[column_key]` (drawing, get_cell, get_row), which lands in __missing__ and makes
    a LiveCell. So a row costs no per-cell objects (ten per row were 100,000 more objects for every
    full garbage collection to walk at 10,000 rows), and its text is made only when it is drawn, and
    made again only after the session changed: a round that moves every duration of 10,000 sessions
    costs one assignment per row.
    """

    __slots__ = ("_cells", "_columns", "cluster", "line", "row", "row_key", "style")

    def __init__(
        self,
        row_key: RowKey,
        row: SessionRow,
        style: str,
        cluster: str | None,
        columns: dict[ColumnKey, int],
    ) -> None:
        super().__init__()
        self.row_key = row_key
        self.line = (row_key, 0)  # DataTable's per-line offset entry, made once (see _publish)
        self.row = row
        self.style = style
        self.cluster = cluster  # None unless the table has a cluster column
        self._columns = columns  # column key -> index into styled_cells' tuple
        self._cells: tuple[SortCell, ...] | None = None

    def __missing__(self, key: ColumnKey) -> SortCell:
        return LiveCell(self, self._columns[key])

    # a dict subclass compares by contents (always empty here): identity is what is meant
    __eq__ = object.__eq__
    __hash__ = object.__hash__  # type: ignore[assignment]

    def renew(self, row: SessionRow, style: str) -> None:
        """A newer state of the same session."""
        self.row = row
        self.style = style
        self._cells = None

    def cells(self) -> tuple[SortCell, ...]:
        """The row's cells, made on first use after a change."""
        cells = self._cells
        if cells is None:
            cells = self._cells = styled_cells(self.row, self.style, self.cluster)
        return cells


class LiveCell(SortCell):
    """One cell of a `_LiveRow`: DataTable keeps these, they read the row's current cells when drawn."""

    __slots__ = ("_index", "_live")

    def __init__(self, live: _LiveRow, index: int) -> None:
        self._live = live
        self._index = index

    @property
    def plain(self) -> str:
        """The text shown."""
        return self._live.cells()[self._index].plain

    @property
    def sort_key(self) -> Any:
        """What sorting compares."""
        return self._live.cells()[self._index].sort_key

    @property
    def style(self) -> str | Style:
        """The row highlight or the column's own style."""
        return self._live.cells()[self._index].style

    def __rich__(self) -> Text:
        return self._live.cells()[self._index].__rich__()


class ActivityTable(DataTable[SortCell]):
    """Sessions of one cluster (or of all clusters, with a cluster column), diff-updated by row key.

    DataTable's public API re-indexes every row per add/remove and measures every new cell, which made
    a 10,000-row round take hundreds of ms; `show` keeps DataTable's row bookkeeping (`rows`, `_data`,
    `_row_locations`, `_update_count`, `_require_update_dimensions`) itself, once per round. Those are
    Textual 8 internals: tests/test_ui_app.py (`test_big_diff_*`) checks what a user sees through them
    (order, cursor, scrolling to the last row, the rendered lines), so a Textual change shows up there.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("activity")  # the footer while the table has focus

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        # No cell padding: each column's width holds one trailing space (see activity_model.Column).
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=0)
        self.with_cluster = with_cluster
        self.sort_column = "duration"
        self.sort_reverse = True
        self.session_filter: Filter[Located] = Filter()
        self.hide_idle = False
        self.show_background = False  # autovacuum, walwriter, ...: noise for a DBA watching sessions
        # shown for clusters with several instances (Aurora readers), and in the all-clusters view
        self.instance_column = with_cluster
        self._live: dict[str, _LiveRow] = {}
        self._order: list[str] = []  # row keys in display order (mirrors _row_locations)
        # (DataTable column key, index into styled_cells' tuple) of each column on screen
        self._col_objs: list[tuple[ColumnKey, int]] = []
        self._rows: dict[str, Located] = {}
        self._col_keys: tuple[str, ...] = (("cluster",) if with_cluster else ()) + tuple(
            c.key for c in ACTIVITY_COLUMNS
        )
        self._sources: list[Located] = []
        self._key_memo: dict[tuple[str, str, int, datetime | None], str] = {}
        self._shown_keys: tuple[str, ...] = ()

    def on_mount(self) -> None:
        """Fixed-width columns: widths never depend on data, so updates never re-layout."""
        self._add_columns()

    def _wanted_columns(self, available: int) -> tuple[str, ...]:
        """Keys of the columns to show in `available` cells: app, then db, give way to the query."""
        keys = [c.key for c in ACTIVITY_COLUMNS if c.shown and (c.key != "instance" or self.instance_column)]
        widths = {c.key: c.width or 0 for c in ACTIVITY_COLUMNS} | {"cluster": 13}
        fixed = sum(widths[k] for k in keys) + (13 if self.with_cluster else 0)
        for optional in COLUMNS_GIVING_WAY:
            if available <= 0 or available - fixed >= QUERY_MIN_WIDTH:
                break
            keys.remove(optional)
            fixed -= widths[optional]
        return tuple(keys)

    def _add_columns(self) -> None:
        offset = 1 if self.with_cluster else 0
        self._col_objs = []
        if self.with_cluster:
            self._col_objs.append((self.add_column("cluster", width=13, key="cluster"), 0))
        self._shown_keys = self._wanted_columns(self.scrollable_content_region.width)
        for i, col in enumerate(ACTIVITY_COLUMNS):
            if col.key not in self._shown_keys:
                continue
            width = col.width if col.width is not None else QUERY_MIN_WIDTH
            self._col_objs.append((self.add_column(col.label, width=width, key=col.key), i + offset))
        self._fit_query()

    def _rebuild_columns(self) -> None:
        """New column set: empty the table, add the columns, fill it again from the last sessions."""
        cursor_key = self._cursor_key()
        self.clear(columns=True)
        self._live.clear()
        self._order = []
        self._add_columns()
        self.show(self._sources)
        if cursor_key is not None and cursor_key in self._live:
            self._keep_cursor(cursor_key)

    def set_instance_column(self, shown: bool) -> None:
        """Show or hide the instance column."""
        if shown == self.instance_column:
            return
        self.instance_column = shown
        self._rebuild_columns()

    def on_resize(self, event: events.Resize) -> None:
        """The query column takes whatever width the other columns leave (app and db give way)."""
        if self._wanted_columns(self.scrollable_content_region.width) != self._shown_keys:
            self._rebuild_columns()
        else:
            self._fit_query()

    def _fit_query(self) -> None:
        query = self.columns.get(ColumnKey("query"))
        if query is None:
            return
        others = sum(c.width for key, c in self.columns.items() if key != query.key)
        # scrollable_content_region leaves out the vertical scrollbar's gutter (kept stable in CSS)
        # never wider than what is left: a horizontal scrollbar would hide a line of sessions
        width = max(QUERY_FLOOR, self.scrollable_content_region.width - others)
        if width != query.width:
            query.width = width
            self._require_update_dimensions = True
            self._update_count += 1
            self.refresh()

    @property
    def row_count_total(self) -> int:
        """Sessions before filtering."""
        return len(self._sources)

    def located(self, key: str) -> Located | None:
        """The session behind a row key (as of the last update)."""
        return self._rows.get(key)

    def current(self) -> Located | None:
        """The session under the cursor."""
        key = self._cursor_key()
        return None if key is None else self._rows.get(key)

    def action_choose(self) -> None:
        """Enter: ask the app for the detail screen of the row under the cursor."""
        loc = self.current()
        if loc is not None:
            self.post_message(SessionChosen(loc.cluster, loc.key))

    def _visible(self, sessions: Sequence[Located]) -> dict[str, Located]:
        """The sessions that pass hide-idle, background and the filter, by row key."""
        rows: dict[str, Located] = {}
        flt = self.session_filter
        filtering = flt.active
        hide_idle, show_background = self.hide_idle, self.show_background
        # Located.key formats a timestamp (~2 us); the same session keeps its key from round to round.
        memo, new_memo = self._key_memo, {}
        for loc in sessions:
            row = loc.row
            # is_idle / is_background, inlined: this loop runs once per session per round
            if hide_idle and row.state == "idle":
                continue
            if not show_background and row.backend_type not in (None, "client backend"):
                continue
            if filtering and not flt.matches(loc):
                continue
            ident = (loc.cluster, row.instance, row.pid, row.backend_start)
            key = memo.get(ident)
            if key is None:
                key = loc.key
            new_memo[ident] = key
            rows.setdefault(key, loc)  # a duplicate key in one snapshot: keep the first
        self._key_memo = new_memo
        return rows

    def show(self, sessions: Sequence[Located], *, reset: bool = False) -> None:
        """Bring the table in line with `sessions` (a diff unless `reset`: a new cluster starts afresh)."""
        self._sources = list(sessions)
        cursor_key = None if reset else self._cursor_key()
        if reset:
            self.clear()
            self._live.clear()
            self._order = []
        blockers = blockers_of(loc.row for loc in sessions)
        rows = self._rows = self._visible(sessions)
        live = self._live
        data, meta = self._data, self.rows
        changed = False
        gone = [k for k in live if k not in rows] if len(live) + len(rows) else []
        for key in gone:
            row_key = live.pop(key).row_key
            del data[row_key]
            del meta[row_key]
        added: list[str] = []
        col_index = dict(self._col_objs)
        with_cluster = self.with_cluster
        for key, loc in rows.items():
            row = loc.row
            style = ROW_STYLES[row_class(row, blockers)]
            entry = live.get(key)
            if entry is None:
                row_key = RowKey(key)
                cluster = loc.cluster if with_cluster else None
                entry = live[key] = _LiveRow(row_key, row, style, cluster, col_index)
                data[row_key] = entry
                meta[row_key] = Row(row_key, 1)
                added.append(key)
            elif entry.row is not row or entry.style != style:
                entry.renew(row, style)
                changed = True
        if gone or added:
            order = [k for k in self._order if k in rows] if gone else self._order
            order.extend(added)
            self._order = order
            # Heights are fixed at 1 and widths are fixed: only the virtual size needs working out
            # again (DataTable measures every cell of rows in _new_rows, which we never fill).
            self._require_update_dimensions = True
        if gone or added or changed:
            self._apply_order(force=bool(gone or added))
            self._publish()
            self.check_idle()
            self._keep_cursor(cursor_key)

    def _publish(self) -> None:
        """Tell DataTable its rows changed, handing it the row order we already know.

        DataTable caches its ordered rows and per-line offsets by update count and rebuilds both by
        walking every row after each change (~25 ms at 10,000 rows); every row is one line high here,
        so both lists are one comprehension each.
        """
        self._update_count += 1
        count = self._update_count
        live, meta = self._live, self.rows
        entries = [live[k] for k in self._order]
        self._ordered_row_cache[(len(meta), count)] = [meta[e.row_key] for e in entries]
        self._offset_cache[count] = [e.line for e in entries]
        self.refresh()

    def _sorted_keys(self) -> list[str]:
        """self._order sorted by the current sort column (stable: ties keep their place)."""
        live, order = self._live, self._order
        if self.sort_column == "cluster":
            keys = [text_key(live[k].cluster) for k in order]
        else:
            column = next((c for c in ACTIVITY_COLUMNS if c.key == self.sort_column), None)
            if column is None:
                return order
            key_of = column.sort_key_of
            keys = [key_of(live[k].row) for k in order]
        # Sorting positions by a precomputed key list keeps the comparisons in C.
        return [order[i] for i in sorted(range(len(order)), key=keys.__getitem__, reverse=self.sort_reverse)]

    def _apply_order(self, *, force: bool) -> bool:
        """Sort; re-index DataTable's rows only when the order changed (or rows came and went)."""
        order = self._sorted_keys()
        if not force and order == self._order:
            return False
        self._order = order
        live = self._live
        self._row_locations = TwoWayDict({live[k].row_key: i for i, k in enumerate(order)})
        return True

    def _keep_cursor(self, cursor_key: str | None) -> None:
        """Keep the cursor on the same session, not on the same line number (clamped when it left)."""
        count = len(self._order)
        # Re-assigning clamps to the new row count; only done when needed, since each assignment
        # refreshes regions found by walking the rows (O(rows)).
        if self.cursor_row >= count:
            self.cursor_coordinate = self.cursor_coordinate
        if self.hover_row >= count:
            self.hover_coordinate = self.hover_coordinate
        if cursor_key is not None and cursor_key in self._live:
            index = self._row_locations.get(self._live[cursor_key].row_key)
            if index is not None and index != self.cursor_row:
                self.move_cursor(row=index, scroll=False)

    def _cursor_key(self) -> str | None:
        if not self._order:
            return None
        row = self.cursor_row
        return self._order[row] if 0 <= row < len(self._order) else None

    def _resort(self, cursor_key: str | None) -> None:
        if self._apply_order(force=False):
            self._publish()
        self._keep_cursor(cursor_key)

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column` (a key of ACTIVITY_COLUMNS, or 'cluster')."""
        if column not in self._col_keys:
            raise ValueError(f"unknown column {column!r}")
        if reverse is None:
            reverse = column in ("duration", "xact", "blocked_by")
        self.sort_column, self.sort_reverse = column, reverse
        self._resort(self._cursor_key())

    def cycle_sort(self) -> str:
        """Next sortable column; returns its label."""
        keys = list(self._col_keys)
        nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)] if self.sort_column in keys else keys[0]
        self.set_sort(nxt)
        return COLUMN_LABELS[nxt]

    def reverse_sort(self) -> None:
        """Flip the sort direction."""
        self.sort_reverse = not self.sort_reverse
        self._resort(self._cursor_key())

    def reapply(self) -> None:
        """Re-run filters on the last sessions (after the filter or hide-idle changed)."""
        self.show(self._sources)

    def describe(self) -> str:
        """Short state for the pane title: sort, filter, idle."""
        arrow = "↓" if self.sort_reverse else "↑"
        parts = [f"sort {COLUMN_LABELS.get(self.sort_column, self.sort_column)}{arrow}"]
        if self.session_filter.active:
            parts.append(f"filter '{self.session_filter.text}'")
        if self.hide_idle:
            parts.append("idle hidden")
        if self.show_background:
            parts.append("+background")
        return " · ".join(parts)
