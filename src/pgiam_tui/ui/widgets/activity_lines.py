"""The activity table's drawing: rows of cached `Strip`s, one line each -- or several, when the query is
shown wrapped or in full (ui/query_display.py) -- under a header that stays while rows scroll.

The base of `ActivityTable` (activity_table.py), which keeps the rows, sorts them and moves the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pgiam_tui.textsafe import ELLIPSIS
from pgiam_tui.ui.activity_model import ACTIVITY_COLUMNS, COLUMN_LABELS, COLUMNS_BY_KEY, Located, styled_cells
from pgiam_tui.ui.query_display import QueryDisplay, RowLines, full_query, wrapped_query
from pgiam_tui.ui.render import SortCell

_COLUMN_INDEX = {c.key: i for i, c in enumerate(ACTIVITY_COLUMNS)}
STALE_STYLE = "dim"


@dataclass(slots=True)
class RowEntry:
    """One row: the session as of the last round, its highlight, its cells and drawn lines (made on use)."""

    loc: Located
    style: str
    stale: bool = False
    cells: tuple[SortCell, ...] | None = None
    strips: dict[tuple[object, ...], Strip] = field(default_factory=dict)
    # the query's lines in the wrapped / full displays, for one (display, width)
    query_lines: tuple[tuple[object, ...], tuple[str, ...]] | None = None

    def forget(self) -> None:
        """The session or its highlight changed: its cells and drawings are made again on use."""
        self.cells, self.query_lines = None, None
        self.strips.clear()

    def cells_of(self, with_cluster: bool) -> tuple[SortCell, ...]:
        """The row's cells (a leading cluster cell when the table has that column)."""
        if self.cells is None:
            style = STALE_STYLE if self.stale else self.style
            self.cells = styled_cells(self.loc.row, style, self.loc.cluster if with_cluster else None)
        return self.cells


def fit(text: str, width: int, *, keep_end: bool = False) -> str:
    """`text` in exactly `width` cells: one trailing space kept free, cut with "…" when longer."""
    room = width - 1
    if room <= 0:
        return " " * max(0, width)
    if cell_len(text) > room:
        if keep_end:
            tail = text[-(room - 1) :] if room > 1 else ""
            text = ELLIPSIS + tail
        else:
            text = set_cell_size(text, room - 1) + ELLIPSIS
    return set_cell_size(text, width)


class ActivityLines(ScrollView):
    """Draws the rows of `_entries` in `_order` (set by the subclass) at the `widths` it lays out."""

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.with_cluster = with_cluster
        self.sort_column = "duration"
        self.sort_reverse = True
        self.cursor_row = 0
        self.widths: dict[str, int] = {}
        self._entries: dict[str, RowEntry] = {}
        self._order: list[str] = []
        self._header: Strip | None = None
        self.query_display: QueryDisplay = "truncated"
        self._lines = RowLines()  # body line <-> row, when rows have several lines (wrapped / full)
        self._styles: dict[str, Style] = {}

    def _cursor_key(self) -> str | None:
        row = self.cursor_row
        return self._order[row] if 0 <= row < len(self._order) else None

    def _keep_cursor(self, cursor_key: str | None) -> None:
        """Keep the cursor on the same session, not the same line (clamped when its session left)."""
        if cursor_key is not None and cursor_key in self._entries:
            self.cursor_row = self._order.index(cursor_key)
        else:
            self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))

    def _forget_drawings(self) -> None:
        self._header = None
        for entry in self._entries.values():
            entry.strips.clear()

    def _cell_index(self, key: str) -> int:
        offset = 1 if self.with_cluster else 0
        return 0 if key == "cluster" else _COLUMN_INDEX[key] + offset

    def _update_virtual_size(self) -> None:
        self._lines.forget()
        size = Size(sum(self.widths.values()), self._body_lines() + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    # ----- query display: rows of several lines ---------------------------------------------------------

    def set_query_display(self, mode: QueryDisplay) -> None:
        """Show query text truncated (one line a row), wrapped in its column, or in full under the row."""
        if mode != self.query_display:
            cursor_key = self._cursor_key()
            self.query_display = mode
            self._forget_drawings()
            self._update_virtual_size()
            self._keep_cursor(cursor_key)
            self._scroll_to_cursor()
            self.refresh()

    def _query_lines(self, entry: RowEntry) -> tuple[str, ...]:
        """The query's lines in the current display: wrapped (in the column), or full (under the row)."""
        mode, query_width = self.query_display, self.widths.get("query", 0)
        memo_key = (mode, query_width, sum(self.widths.values()))
        if entry.query_lines is None or entry.query_lines[0] != memo_key:
            query = entry.loc.row.query
            if mode == "wrapped":
                lines = wrapped_query(query, max(1, query_width - 1))
            else:
                lines = full_query(query, sum(self.widths.values()) - 1)
            entry.query_lines = (memo_key, lines)
        return entry.query_lines[1]

    def _row_height(self, index: int) -> int:
        mode = self.query_display
        if mode == "truncated":
            return 1
        lines = self._query_lines(self._entries[self._order[index]])
        return len(lines) if mode == "wrapped" else 1 + len(lines)

    def _tops(self) -> list[int] | None:
        """First body line of each row (None: one line a row, line = row)."""
        if self.query_display == "truncated":
            return None
        return self._lines.tops(len(self._order), self._row_height)

    def _body_lines(self) -> int:
        tops = self._tops()
        return len(self._order) if tops is None else tops[-1]

    def _row_span(self, index: int) -> tuple[int, int]:
        """(first body line, line count) of row INDEX."""
        tops = self._tops()
        if tops is None:
            return index, 1
        return tops[index], tops[index + 1] - tops[index]

    def _row_at(self, line: int) -> tuple[int, int]:
        """(row index, line within it) of body LINE."""
        tops = self._tops()
        return (line, 0) if tops is None else RowLines.row_at(tops, line)

    def _refresh_row(self, index: int) -> None:
        if not 0 <= index < len(self._order):
            return
        first, count = self._row_span(index)
        for line in range(first, first + count):
            y = line - int(self.scroll_offset.y) + 1
            if 1 <= y < self.size.height:
                self.refresh_line(y)

    def _scroll_to_cursor(self) -> None:
        if not self._order:
            return
        top = int(self.scroll_offset.y)
        lines_on_screen = max(1, self.scrollable_content_region.height - 1)
        first, count = self._row_span(self.cursor_row)
        if first < top:
            self.scroll_to(y=first, animate=False)
        elif first + count > top + lines_on_screen:
            # the whole row when it fits, else its first lines
            self.scroll_to(y=first + min(count, lines_on_screen) - lines_on_screen, animate=False)

    # ----- drawing --------------------------------------------------------------------------------------

    def _style(self, style: str | Style) -> Style:
        if isinstance(style, Style):
            return style
        made = self._styles.get(style)
        if made is None:
            made = self._styles[style] = Style.parse(style) if style else Style()
        return made

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self.get_component_rich_style("activity-table--header")
            segments = []
            for key, width in self.widths.items():
                label = COLUMN_LABELS.get(key, key)
                if key == self.sort_column:
                    label += "↓" if self.sort_reverse else "↑"
                segments.append(Segment(fit(label, width), style))
            self._header = Strip(segments, sum(self.widths.values()))
        return self._header

    def _row_strip(self, index: int, sub: int = 0) -> Strip:
        """Line SUB of row INDEX (wrapped / full displays give a row more than one line)."""
        entry = self._entries[self._order[index]]
        cursor = index == self.cursor_row
        focus = self.has_focus
        cache_key = (cursor, focus and cursor, sub)
        strip = entry.strips.get(cache_key)
        if strip is None:
            cells = entry.cells_of(self.with_cluster)
            cursor_style = self.get_component_rich_style("activity-table--cursor") if cursor else None
            mode = self.query_display
            lines = self._query_lines(entry) if mode != "truncated" else ()
            total = sum(self.widths.values())
            segments = []
            if mode == "full" and sub > 0:
                style = self._style(STALE_STYLE if entry.stale else entry.style)
                if cursor_style is not None:
                    style = style + cursor_style
                segments.append(Segment(fit(lines[sub - 1], total), style))
            for key, width in self.widths.items() if not (mode == "full" and sub > 0) else ():
                c = cells[self._cell_index(key)]
                keep_end = key in COLUMNS_BY_KEY and COLUMNS_BY_KEY[key].keep_end
                style = self._style(c.style)
                if cursor_style is not None:
                    style = style + cursor_style
                text = c.plain if sub == 0 else ""
                if key == "query" and mode == "wrapped":
                    text = lines[sub] if sub < len(lines) else ""
                segments.append(Segment(fit(text, width, keep_end=keep_end), style))
            strip = entry.strips[cache_key] = Strip(segments, total)
        return strip

    def render_line(self, y: int) -> Strip:
        """One line on screen: the header (line 0, it stays while rows scroll) or a row."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header_strip()
        else:
            index, sub = self._row_at(scroll_y + y - 1)
            if index >= len(self._order):
                return Strip.blank(width, self.rich_style)
            strip = self._row_strip(index, sub)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)
