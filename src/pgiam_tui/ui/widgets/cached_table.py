"""A DataTable that draws a cell again only when that cell changed.

Textual's DataTable keys its render caches on one counter that every `update_cell`, `add_row` and
`remove_row` bumps: one changed cell (a token countdown, each second) re-renders every cell on screen
through rich, which was most of the drawing cost of the cluster list, the logins and the IAM users.
This table keeps each drawn cell with the value it was drawn from and draws it again only when the value
object changed, or anything else that decides its look (place, width, cursor, hover, style).

DataTable has no public hook for drawing a cell (nor a public update that repaints one row): this table
reads cells through DataTable's public lookups and updates them through its `update_cell`, but overrides
the private `_render_cell` and keys its drawings on two private flags, as DataTable's own cell cache does.
Textual is pinned to a major version (pyproject.toml) for that; tests/unit/test_ui_cached_table.py shows
when a new Textual breaks it. The line API (as the sessions table in activity_lines.py) is the public way,
at the cost of writing cursor, sort and selection again for each of the three tables.
"""

from __future__ import annotations

from typing import Any, Self, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

CellType = TypeVar("CellType")

CACHED_CELLS = 4000  # several screenfuls; beyond it the table starts afresh


class CachedCellTable(DataTable[CellType]):
    """DataTable whose cells are re-drawn only when their value (by identity) or their look changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before DataTable's __init__, which already clears caches
        self._drawn_cells: dict[tuple[object, ...], tuple[object, list[list[Segment]]]] = {}
        self._repaint_row_only: RowKey | str | None = None  # while update_cell runs (see refresh)
        super().__init__(*args, **kwargs)

    def _cell_value(self, row_index: int, column_index: int) -> tuple[object, int]:
        """(the value a cell is drawn from, its row's height), by DataTable's public lookups."""
        if row_index == -1:
            label = self.ordered_columns[column_index].label if column_index >= 0 else None
            return label, self.header_height
        if column_index == -1:
            row = self.ordered_rows[row_index]
            return row.label, row.height
        row_key, column_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
        return self.get_cell(row_key, column_key), self.rows[row_key].height

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """The cell as drawn last time when nothing that decides its look has changed since."""
        try:
            value, height = self._cell_value(row_index, column_index)
        except (CellDoesNotExist, IndexError):  # not laid out yet: let the table decide
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_index,  # part of the drawn cell (mouse metadata), and a row moved by a sort is another place
            column_index,
            base_style,
            width,
            height,
            cursor,
            hover,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        drawn = self._drawn_cells.get(key)
        if drawn is not None and drawn[0] is value:
            return drawn[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._drawn_cells) >= CACHED_CELLS:
            self._drawn_cells.clear()  # (textual's LRUCache keeps the first value set for a key)
        self._drawn_cells[key] = (value, lines)
        return lines

    def update_cell(
        self,
        row_key: RowKey | str,
        column_key: ColumnKey | str,
        value: CellType,
        *,
        update_width: bool = False,
    ) -> None:
        """DataTable.update_cell, repainting that row's lines only (DataTable's repaints the whole table,
        every line of which is drawn again: 40 ms for the cluster list, once a second for its countdown)."""
        if update_width:
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        self._repaint_row_only = row_key
        try:
            super().update_cell(row_key, column_key, value)
        finally:
            self._repaint_row_only = None

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        """Widget.refresh; the whole-table repaint DataTable.update_cell asks for becomes that row's."""
        row_key = self._repaint_row_only
        if row_key is not None and not regions and repaint and not layout and not recompose:
            self._repaint_row_only = None
            return self.refresh_row(self.get_row_index(row_key))
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._drawn_cells.clear()

    def notify_style_update(self) -> None:
        """A style change (theme, focus) re-draws every cell."""
        self._drawn_cells.clear()
        super().notify_style_update()
