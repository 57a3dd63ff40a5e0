"""A DataTable that draws a cell again only when that cell changed.

Textual's DataTable keys its render caches on one counter that every `update_cell`, `add_row` and
`remove_row` bumps: one changed cell (a token countdown, each second) re-renders every cell on screen
through rich, which was most of the drawing cost of the cluster list, the logins and the IAM users.
This table keeps each drawn cell with the value it was drawn from and draws it again only when the value
object changed, or anything else that decides its look (place, width, cursor, hover, style).
"""

from __future__ import annotations

from typing import Any, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

CellType = TypeVar("CellType")

CACHED_CELLS = 4000  # several screenfuls; beyond it the table starts afresh


class CachedCellTable(DataTable[CellType]):
    """DataTable whose cells are re-drawn only when their value (by identity) or their look changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before DataTable's __init__, which already clears caches
        self._drawn_cells: dict[tuple[object, ...], tuple[object, list[list[Segment]]]] = {}
        super().__init__(*args, **kwargs)

    def _cell_value(self, row_index: int, column_index: int) -> tuple[object, int]:
        """(the value a cell is drawn from, its row's height)."""
        column_key = self._column_locations.get_key(column_index) if column_index >= 0 else None
        if row_index == -1:
            label = self.columns[column_key].label if column_key is not None else None
            return label, self.header_height
        row_key = self._row_locations.get_key(row_index)
        if row_key is None:
            raise KeyError(row_index)
        row = self.rows[row_key]
        if column_key is None:
            return row.label, row.height
        return self._data[row_key].get(column_key), row.height

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
        except KeyError:  # not laid out yet: let the table decide
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
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._update_count += 1  # the rows' own caches are keyed on it
        index = self._row_locations.get(row_key)
        if index is not None:
            self.refresh_row(index)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._drawn_cells.clear()

    def notify_style_update(self) -> None:
        """A style change (theme, focus) re-draws every cell."""
        self._drawn_cells.clear()
        super().notify_style_update()
