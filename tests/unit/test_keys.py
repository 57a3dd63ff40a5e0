"""The one key table (ui/keys.py): README, help, footer and palette are made from it and agree with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from helpers.pilot import sample_app
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.keys import KEYS, markdown_table
from pgiam_tui.ui.replay import ReplayApp
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.help import HelpScreen
from pgiam_tui.ui.widgets.activity import ActivityTable
from pgiam_tui.ui.widgets.cluster_list import ClusterList

README = Path(__file__).resolve().parents[2] / "README.md"
LOCAL_OWNERS: dict[str, type] = {
    "activity": ActivityTable,
    "detail": SessionDetailScreen,
    "all": AllSessionsScreen,
    "help": HelpScreen,
    "clusters": ClusterList,
}


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


def lines(widget: Widget) -> list[str]:
    return ["".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)]


def test_readme_key_table_is_the_key_table() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- keys:start -->\n(.*?)\n<!-- keys:end -->", text, re.S)
    assert found, "README lost its keys:start / keys:end markers"
    assert found.group(1).strip() == markdown_table(), "README's key table differs: paste markdown_table()"


def test_every_bound_key_has_its_action() -> None:
    for spec in KEYS:
        if not spec.bound:
            continue
        name = spec.action.split("(")[0]
        owner = LOCAL_OWNERS[spec.scope] if spec.local else ReplayApp if spec.scope == "replay" else PgiamApp
        assert callable(getattr(owner, f"action_{name}", None)), (spec.keys, spec.action, owner)


def test_keys_are_unique_within_what_is_active_together() -> None:
    """A key bound twice where both are active would make one of them dead (pane keys shadow main ones)."""
    for scope in ("main", "activity", "clusters", "detail", "all", "help"):
        keys = [k for s in KEYS if s.scope == scope and s.bound for k in s.keys.split(",")]
        assert len(keys) == len(set(keys)), scope


def footer_keys(app: PgiamApp) -> set[str]:
    return {key for key, active in app.screen.active_bindings.items() if active.binding.show}


# one size in make test-fast, every size in make test
@pytest.mark.parametrize(
    "size",
    [
        (80, 24),
        pytest.param((120, 40), marks=pytest.mark.slow),
        pytest.param((200, 50), marks=pytest.mark.slow),
    ],
)
async def test_footer_follows_the_focused_pane(size: tuple[int, int]) -> None:
    app = sample_app()[0]
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
        app.cluster_list.focus()
        await pilot.pause()
        on_list = footer_keys(app)
        app.activity.table.focus()
        await pilot.pause()
        on_activity = footer_keys(app)
        assert {"s", "b", "k", "t", "enter"} <= on_activity and not {"s", "b"} & on_list
        assert {"a", "r"} <= on_list
        assert {"q", "question_mark", "slash", "p"} <= on_list & on_activity
        # pane keys still work from elsewhere on the main screen
        app.cluster_list.focus()
        await pilot.press("s")
        assert app.activity.table.sort_column != "duration"


def test_palette_lists_each_title_once_and_every_cluster() -> None:
    app = sample_app()[0]

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
            commands = list(app.get_system_commands(app.screen))
            titles = [c.title for c in commands]
            assert len(titles) == len(set(titles)), sorted(titles)
            for spec in KEYS:
                if spec.title:
                    assert spec.title in titles
            for name in ("pgdemo-1", "pgdemo-2", "pgdemo-rds"):
                assert f"Cluster: {name}" in titles
            jump = next(c for c in commands if c.title == "Cluster: pgdemo-rds")
            await jump.callback()
            await pilot.pause()
            assert app.selected == "pgdemo-rds" and app.cluster_list.selected == "pgdemo-rds"

    import asyncio

    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), pytest.param((120, 40), marks=pytest.mark.slow)])
@pytest.mark.slow
async def test_help_scrolls_to_everything_and_says_how_to_close(size: tuple[int, int]) -> None:
    app = sample_app()[0]
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 3, "snapshots")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help open")
        screen = app.screen
        await pilot.pause()
        assert "Esc closes" in "".join(lines(screen.query_one("#help-title", Static)))
        scroll = screen.query_one("#help-scroll")
        body = screen.query_one("#help-body")
        # every line of the body is reachable by scrolling, and the dialog fits the screen
        assert screen.query_one("#help-dialog").region.bottom <= size[1]
        for _ in range(60):
            if scroll.scroll_y >= scroll.max_scroll_y:
                break
            await pilot.press("pagedown")
            await pilot.pause()
        assert scroll.scroll_y == scroll.max_scroll_y  # the keys scroll it to the end...
        # ...which is the body's end
        assert scroll.max_scroll_y + scroll.scrollable_content_region.height >= body.size.height
        text = " ".join(" ".join(lines(body)).split())
        for spec in KEYS:
            if spec.listed:
                first_words = " ".join(spec.description.split()[:3])
                assert first_words in text, spec.description
        assert "waits on a lock" in text and "state:idle tx" in text
        assert body.size.width <= size[0]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
