"""The activity table: pg_stat_activity drawn with Textual's Line API (as Textualize's toolong draws logs).

A `ScrollView` that keeps its own rows (by row key, in display order) and draws only the lines on screen,
each from a cached `Strip`: a round re-renders only the rows whose session changed, a sort or a cursor
move re-renders nothing but the lines that moved, and nothing here changes the layout (the table's
size never depends on its data). The cursor stays on its session (row key) across rounds and sorts,
and the scroll position stays where the DBA left it. Public Textual API only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message

from pgiam_tui.ui.activity_model import (
    COLUMN_LABELS,
    COLUMNS_BY_KEY,
    ROW_STYLES,
    Located,
    blockers_of,
    layout_columns,
    row_class,
    text_key,
)
from pgiam_tui.ui.filter_language import Filter
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.render import SortCell
from pgiam_tui.ui.widgets.activity_lines import ActivityLines, RowEntry, fit


class ActivityTable(ActivityLines, can_focus=True):
    """Sessions of one cluster (or of all clusters, with a cluster column), diff-updated by row key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("activity"),  # ui/keys.py: this pane's footer
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"activity-table--header", "activity-table--cursor"}
    DEFAULT_CSS = """
    ActivityTable {
        background: $surface;
        & > .activity-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .activity-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .activity-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        super().__init__(with_cluster=with_cluster, id=id)
        self.session_filter: Filter[Located] = Filter()
        self.hide_idle = False
        self.show_background = False  # autovacuum, walwriter, ...: noise for a DBA watching sessions
        # shown for clusters with several instances (Aurora readers), and in the all-clusters view
        self.instance_column = with_cluster
        self.stale_instances: frozenset[tuple[str, str]] = frozenset()  # (cluster, instance)
        self._sources: list[Located] = []
        self._key_memo: dict[tuple[str, str, int, datetime | None], str] = {}

    # ----- public reading API ---------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Sessions shown (after hiding and filtering)."""
        return len(self._order)

    @property
    def row_count_total(self) -> int:
        """Sessions before filtering."""
        return len(self._sources)

    @property
    def sessions(self) -> list[Located]:
        """The sessions of the last update, before filtering."""
        return self._sources

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def index_of(self, key: str) -> int:
        """Display index of a row key (ValueError when not shown)."""
        return self._order.index(key)

    def cells_at(self, index: int) -> tuple[SortCell, ...]:
        """The cells of the row at `index`, in the order of the columns shown."""
        entry = self._entries[self._order[index]]
        cells = entry.cells_of(self.with_cluster)
        return tuple(cells[self._cell_index(k)] for k in self.widths)

    def drawn_row(self, index: int) -> str:
        """The row at `index` as drawn, all columns (plain text)."""
        return "".join(segment.text for segment in self._row_strip(index))

    def located(self, key: str) -> Located | None:
        """The session behind a row key (as of the last update)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.loc

    def current(self) -> Located | None:
        """The session under the cursor."""
        key = self._cursor_key()
        return None if key is None else self._entries[key].loc

    # ----- columns ----------------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Columns for the width the table has."""
        self._layout()

    def on_resize(self, event: events.Resize) -> None:
        """New width: the columns are laid out again (widths never depend on data)."""
        self._layout()

    def _layout(self) -> None:
        widths = layout_columns(
            self.scrollable_content_region.width, instance=self.instance_column, cluster=self.with_cluster
        )
        if widths != self.widths:
            self.widths = widths
            self._forget_drawings()
            self._update_virtual_size()
            self.refresh()

    def set_instance_column(self, shown: bool) -> None:
        """Show or hide the instance column."""
        if shown != self.instance_column:
            self.instance_column = shown
            self._layout()

    def set_stale_instances(self, stale: frozenset[tuple[str, str]]) -> None:
        """(cluster, instance) whose rows are old data: drawn dimmed."""
        if stale != self.stale_instances:
            self.stale_instances = stale
            for entry in self._entries.values():
                now_stale = (entry.loc.cluster, entry.loc.row.instance) in stale
                if now_stale != entry.stale:
                    entry.stale = now_stale
                    entry.forget()
            self.refresh()

    # ----- updating -----------------------------------------------------------------------------------

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
            self._entries = {}
            self._order = []
            self.cursor_row = 0
            self.scroll_to(0, 0, animate=False, immediate=True)
        blockers = blockers_of(loc.row for loc in sessions)
        rows = self._visible(sessions)
        entries = self._entries
        stale = self.stale_instances
        changed = False
        gone = [k for k in entries if k not in rows]
        for key in gone:
            del entries[key]
        added = False
        for key, loc in rows.items():
            style = ROW_STYLES[row_class(loc.row, blockers)]
            entry = entries.get(key)
            if entry is None:
                entries[key] = RowEntry(loc, style, (loc.cluster, loc.row.instance) in stale)
                added = True
            elif entry.loc.row is not loc.row or entry.style != style:
                if entry.style != style or entry.loc.row != loc.row:
                    entry.forget()
                    changed = True
                entry.loc, entry.style = loc, style
        if gone or added:
            self._order = [k for k in self._order if k in rows] if gone else self._order
            known = set(self._order)
            self._order.extend(k for k in rows if k not in known)
        if gone or added or changed or reset:
            self._order = self._sorted_keys()
            self._update_virtual_size()
            self._keep_cursor(cursor_key)
            self.refresh()

    def reapply(self) -> None:
        """Re-run filters on the last sessions (after the filter or hide-idle changed)."""
        self.show(self._sources)

    # ----- sorting ------------------------------------------------------------------------------------

    def _sorted_keys(self) -> list[str]:
        """self._order sorted by the current sort column (stable: ties keep their place)."""
        entries, order = self._entries, self._order
        if self.sort_column == "cluster":
            keys = [text_key(entries[k].loc.cluster) for k in order]
        else:
            column = COLUMNS_BY_KEY.get(self.sort_column)
            if column is None:
                return order
            key_of = column.sort_key_of
            keys = [key_of(entries[k].loc.row) for k in order]
        # Sorting positions by a precomputed key list keeps the comparisons in C.
        return [order[i] for i in sorted(range(len(order)), key=keys.__getitem__, reverse=self.sort_reverse)]

    def _resort(self) -> None:
        cursor_key = self._cursor_key()
        order = self._sorted_keys()
        if order != self._order:
            self._order = order
            self._lines.forget()
            self.refresh()
        self._keep_cursor(cursor_key)

    def sortable_columns(self) -> list[str]:
        """The columns `s` cycles through: those on screen."""
        return list(self.widths)

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column` (a key of ACTIVITY_COLUMNS, or 'cluster')."""
        if column not in COLUMNS_BY_KEY and not (column == "cluster" and self.with_cluster):
            raise ValueError(f"unknown column {column!r}")
        if reverse is None:
            reverse = column in ("duration", "xact", "blocked_by")
        self.sort_column, self.sort_reverse = column, reverse
        self._header = None
        self._resort()

    def cycle_sort(self) -> str:
        """Next visible column; returns its label."""
        keys = self.sortable_columns()
        nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)] if self.sort_column in keys else keys[0]
        self.set_sort(nxt)
        return COLUMN_LABELS[nxt]

    def reverse_sort(self) -> None:
        """Flip the sort direction."""
        self.sort_reverse = not self.sort_reverse
        self._header = None
        self._resort()

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
        if self.query_display != "truncated":
            parts.append(f"query {self.query_display}")
        return " · ".join(parts)

    # ----- cursor -------------------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        """Put the cursor on display row `row` (clamped), scrolling it into view."""
        before = self.cursor_row
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        if self.cursor_row != before:
            self._refresh_row(before)
            self._refresh_row(self.cursor_row)
        if scroll:
            self._scroll_to_cursor()

    def action_cursor(self, step: int) -> None:
        """Up / down."""
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, step: int) -> None:
        """Page up / down."""
        self.move_cursor(row=self.cursor_row + step * max(1, self.scrollable_content_region.height - 1))

    def action_jump(self, row: int) -> None:
        """First / last row."""
        self.move_cursor(row=row if row >= 0 else len(self._order) - 1)

    def action_choose(self) -> None:
        """Enter: ask the app for the detail screen of the row under the cursor."""
        loc = self.current()
        if loc is not None:
            self.post_message(SessionChosen(loc.cluster, loc.key))

    def on_click(self, event: events.Click) -> None:
        """Click a header to sort by that column; click a row to put the cursor on it (twice: detail)."""
        x = event.x + int(self.scroll_offset.x)
        if event.y == 0:
            column = self._column_at(x)
            if column is not None:
                if column == self.sort_column:
                    self.reverse_sort()
                else:
                    self.set_sort(column)
                self.post_message(SortChanged())
            return
        self.move_cursor(row=self._row_at(int(self.scroll_offset.y) + event.y - 1)[0], scroll=False)
        if event.chain >= 2:
            self.action_choose()

    def _column_at(self, x: int) -> str | None:
        left = 0
        for key, width in self.widths.items():
            if left <= x < left + width:
                return key
            left += width
        return None

    def on_focus(self) -> None:
        """The cursor's colour differs with focus: redraw its line."""
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        """See on_focus."""
        self._refresh_row(self.cursor_row)


class SortChanged(Message):
    """The sort changed by a header click (the pane redraws its title)."""


__all__ = ["ActivityTable", "Located", "SortChanged", "fit"]
