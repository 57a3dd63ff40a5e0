"""CachedCellTable: cells drawn once are reused, yet every change shows (values, sort order, cursor)."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from helpers.pilot import lines
from pgiam_tui.ui.widgets.cached_table import CachedCellTable


class TableApp(App[None]):
    """One CachedCellTable with three rows."""

    def compose(self) -> ComposeResult:
        yield CachedCellTable[Text](id="t", cursor_type="row")

    def on_mount(self) -> None:
        table = self.table
        table.add_column("name", key="name", width=8)
        table.add_column("n", key="n", width=4)
        for name, n in (("alpha", "3"), ("beta", "1"), ("gamma", "2")):
            table.add_row(Text(name), Text(n), key=name)

    @property
    def table(self) -> CachedCellTable[Text]:
        return self.query_one("#t", CachedCellTable)


def _shown(app: TableApp) -> list[str]:
    return [line.rstrip() for line in lines(app.table) if line.strip()]


async def test_an_updated_cell_shows_its_new_value_each_time_and_others_stay() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert [s.split() for s in _shown(app)[1:]] == [["alpha", "3"], ["beta", "1"], ["gamma", "2"]]
        for value in ("7", "8", "3", "8"):  # back to an earlier value too: never the stale drawing
            app.table.update_cell("beta", "n", Text(value))
            await pilot.pause()
            assert _shown(app)[2].split() == ["beta", value]
            assert _shown(app)[1].split() == ["alpha", "3"] and _shown(app)[3].split() == ["gamma", "2"]


async def test_sorted_rows_and_the_cursor_are_drawn_in_their_new_places() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        before = _shown(app)
        app.table.sort("n", key=lambda t: t.plain)
        await pilot.pause()
        assert [s.split()[0] for s in _shown(app)[1:]] == ["beta", "gamma", "alpha"]
        app.table.sort("n", key=lambda t: t.plain, reverse=True)
        await pilot.pause()
        assert [s.split()[0] for s in _shown(app)[1:]] == ["alpha", "gamma", "beta"]
        # the cursor row's drawing differs from the others' (its style), and follows the cursor
        cursor_strip = app.table.render_line(1)
        app.table.move_cursor(row=2)
        await pilot.pause()
        assert app.table.render_line(1) != cursor_strip
        assert before  # drawn before the sorts too
