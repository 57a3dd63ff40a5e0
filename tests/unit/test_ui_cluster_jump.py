"""Type-to-jump in the cluster list (`'`, then the name), driven by Pilot on canned snapshots."""

from __future__ import annotations

import pytest
from pgiam_devtools.sample import LONG_NAMES, fixed_now, long_named, long_named_configs, sample_snapshots
from pgiam_devtools.static_source import StaticSource

from helpers.pilot import lines, running, settle
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.cluster_jump import ClusterJump, find_cluster
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen

PROD, REPLICA, LEDGER = LONG_NAMES["pgdemo-1"], LONG_NAMES["pgdemo-2"], LONG_NAMES["pgdemo-rds"]


def _app() -> tuple[PgiamApp, StaticSource]:
    snaps = long_named(sample_snapshots())
    source = StaticSource([snaps, snaps])  # a refresh (r) would move it to the second round
    return PgiamApp(source, long_named_configs(), now=fixed_now, tick=False), source


async def _type(pilot: object, keys: str) -> None:
    for ch in keys:
        await pilot.press(ch)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
@pytest.mark.slow
async def test_typing_a_name_moves_the_list_and_says_so(size: tuple[int, int]) -> None:
    app, source = _app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, 3)
        clusters = app.cluster_list
        assert app.focused is clusters and app.selected == PROD
        await pilot.press("apostrophe")
        await pilot.pause()
        assert lines(clusters)[0].startswith(" jump: ▏")
        # every letter of "ledger" goes to the name: r (refresh) and g (background) do nothing else
        await _type(pilot, "ledger")
        await pilot.pause()
        assert app.selected == LEDGER and clusters.selected == LEDGER
        assert lines(clusters)[0].startswith(" jump: ledger▏ → ledger")
        assert source.index == 0 and not app.activity.table.show_background
        assert "ledger" in str(app.query_one("#activity-title").render())  # the panes followed
        # part of a name: no name starts with "rep", one contains it
        for _ in "ledger":
            await pilot.press("backspace")
        await _type(pilot, "rep")
        await pilot.pause()
        assert app.selected == REPLICA
        await pilot.press("x")
        await pilot.pause()
        assert app.selected == REPLICA and "no match" in lines(clusters)[0]
        # Esc: back where it was, the header as before
        await pilot.press("escape")
        await pilot.pause()
        assert app.selected == PROD and clusters.jump is None
        assert "jump" not in lines(clusters)[0] and "cluster" in lines(clusters)[0]
        # Enter keeps the cluster found; then the keys do their usual work again
        await pilot.press("apostrophe")
        await _type(pilot, "LED")  # any case
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == LEDGER and clusters.jump is None
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AllSessionsScreen)


@pytest.mark.slow
async def test_any_other_key_ends_the_jump_and_does_its_work() -> None:
    app, _ = _app()
    async with running(app) as pilot:
        await pilot.press("apostrophe")
        await _type(pilot, "orders")
        await pilot.pause()
        assert app.selected == PROD  # both start so: the one higher in the list
        await pilot.press("down")
        await pilot.pause()
        assert app.cluster_list.jump is None and app.selected == REPLICA


def test_prefix_wins_over_substring_and_case_is_ignored() -> None:
    names = ["billing-orders", "orders-prod", "Orders-stage"]
    assert find_cluster(names, "ord") == "orders-prod"
    assert find_cluster(names, "ORDERS-S") == "Orders-stage"
    assert find_cluster(names, "-ord") == "billing-orders"
    assert find_cluster(names, "nothing") is None and find_cluster(names, "") is None


def test_jump_keys() -> None:
    jump = ClusterJump(["a-1", "b-2"], "b-2")
    assert jump.key("a", "a").target == "a-1"
    assert jump.key("minus", "-").consumed and jump.typed == "a-"
    out = jump.key("tab", "\t")
    assert not out.consumed and out.done
    assert ClusterJump(["a-1"], "b-2").key("escape", None).target == "b-2"
