"""Live filtering in the console, driven by Pilot on canned snapshots: the table follows as you type."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input

from helpers.pilot import sample_app
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.activity import ActivityTable
from pgiam_tui.ui.widgets.events import EventsTable

SIZES = [(80, 24), (120, 40), (200, 50)]


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds (a generous number of turns, no wall-clock deadline)."""
    for _ in range(2000):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


def lines(widget: Widget) -> list[str]:
    return ["".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)]


def pids(table: ActivityTable) -> list[int]:
    return sorted(loc.row.pid for key in table.row_keys if (loc := table.located(key)) is not None)


def burst(app: PgiamApp, text: str) -> None:
    """Keys as a fast typist's terminal delivers them: all queued before the app handles the first."""
    names = {"/": "slash", " ": "space", ":": "colon", '"': "quotation_mark", "_": "underscore", "-": "minus"}
    for ch in text:
        app.post_message(events.Key(names.get(ch, ch), ch))


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
async def test_activity_filters_as_you_type_without_losing_a_key(size: tuple[int, int]) -> None:
    app = sample_app()[0]
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
        table = app.activity.table
        await until(pilot, lambda: table.row_count == 9, "rows")
        table.focus()
        await pilot.pause()
        burst(app, "/state:idle tx")  # no Enter: the table follows the input by itself
        inp = app.query_one("#activity-filter", Input)
        await until(pilot, lambda: pids(table) == [4102], "live filter applied")
        assert inp.value == "state:idle tx" and inp.has_focus
        assert table.sort_column == "duration"  # the `s` went to the input, not to the sort key
        title = "".join(lines(app.query_one("#activity-title")))
        assert "1/9 sessions" in title
        # a filter that does not parse yet keeps the last good one and says why under the input
        burst(app, " user:")
        await until(pilot, lambda: "needs a value" in str(inp.border_subtitle), "error shown")
        assert pids(table) == [4102]
        burst(app, "oltp")
        await until(pilot, lambda: not inp.border_subtitle, "error cleared")
        assert pids(table) == [4102]
        # Esc closes and keeps the filter; reopening shows it for editing
        await pilot.press("escape")
        assert not inp.display and table.has_focus and pids(table) == [4102]
        await pilot.press("slash", "ctrl+u")
        await until(pilot, lambda: table.row_count == 9, "cleared filter")
        await pilot.press("enter")
        assert not inp.display


async def test_enter_right_after_typing_applies_the_whole_filter() -> None:
    app = sample_app()[0]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
        app.activity.table.focus()
        await pilot.pause()
        burst(app, '/state:"idle in transaction"')
        app.post_message(events.Key("enter", "\r"))
        table = app.activity.table
        inp = app.query_one("#activity-filter", Input)
        await until(pilot, lambda: inp.value.endswith('"') and not inp.display, "typed, then closed")
        assert pids(table) == [4102]
        assert "filter 'state:\"idle in transaction\"'" in "".join(lines(app.query_one("#activity-title")))


@pytest.mark.slow
async def test_events_pane_uses_the_same_language_live() -> None:
    app = sample_app()[0]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
        table = app.query_one(EventsTable)
        table.focus()
        await pilot.pause()
        burst(app, "/kind:ok")

        def labels() -> list[str]:
            return [table.get_row_at(i)[1].plain for i in range(table.row_count)]

        await until(pilot, lambda: labels() == ["ok", "console ok", "ok"], "events filtered live")
        burst(app, " -user:pgmonitor")
        await until(pilot, lambda: labels() == ["ok", "ok"], "negation applied")
