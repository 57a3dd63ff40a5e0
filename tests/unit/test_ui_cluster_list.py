"""The cluster list on canned snapshots: names kept apart, counts never cut, health at a glance, cursor."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import (
    LONG_NAMES,
    cluster_configs,
    fixed_now,
    later_round,
    long_named,
    long_named_configs,
    sample_snapshots,
    session,
)
from pgiam_devtools.static_source import StaticSource

from helpers.pilot import lines, running, settle
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.cluster_list import middle_cut


def test_middle_cut_keeps_both_ends_and_escapes_whole() -> None:
    assert middle_cut("orders-prod", 10) == "order…prod"
    assert middle_cut("orders-prod", 11) == "orders-prod"
    assert middle_cut("orders-prod-eu-1", 10) != middle_cut("orders-prod-eu-2", 10)
    cut = middle_cut("a\x1bbcdefgh", 8)
    assert len(cut) <= 8 and ("\\" not in cut or "\\x1b" in cut)  # never half an escape
    assert len(middle_cut("x" * 100, 9)) == 9


def _app(long: bool = True, rounds: int = 2) -> tuple[PgiamApp, StaticSource]:
    snaps = long_named(sample_snapshots()) if long else sample_snapshots()
    configs = long_named_configs() if long else cluster_configs()
    source = StaticSource([snaps, later_round(snaps, 2.0, 240)][:rounds])
    return PgiamApp(source, configs, now=fixed_now, tick=False), source


@pytest.mark.parametrize(
    ("width", "height"),
    [(80, 24), pytest.param(120, 40, marks=pytest.mark.slow), pytest.param(200, 50, marks=pytest.mark.slow)],
)
async def test_long_names_stay_distinguishable_at_every_size(width: int, height: int) -> None:
    app, _ = _app()
    async with app.run_test(size=(width, height)) as pilot:
        await settle(pilot, app, 3)
        listed = lines(app.cluster_list)
        prod, replica = LONG_NAMES["pgdemo-1"], LONG_NAMES["pgdemo-2"]
        shown = [line.split(" ●")[0].strip() for line in listed if " ●" in line]
        assert len(shown) == 2 and shown[0] != shown[1], listed
        assert shown[0].endswith("prod") and shown[1].endswith("lica")
        if width >= 200:  # room for the whole names
            assert shown == [prod, replica]
        elif width >= 120:  # longer than the least width, and no more than its share of the screen
            assert len(shown[0]) > 10
        assert app.cluster_list.outer_size.width <= max(34, int(width * 0.4))
        assert app.cluster_list.virtual_size.width <= app.cluster_list.scrollable_content_region.width + 1


async def test_counts_are_never_cut() -> None:
    crowd = tuple(session("pgdemo-1-writer", 10_000 + n, "app", "active", "SELECT 1") for n in range(1001))
    idle = tuple(session("pgdemo-1-writer", 20_000 + n, "app", "idle", "SELECT 1") for n in range(7))
    snaps = sample_snapshots()
    busy = (replace(snaps[0], activity=crowd + idle), *snaps[1:])
    app = PgiamApp(StaticSource([busy]), cluster_configs(), now=fixed_now, tick=False)
    async with running(app):
        assert any("1001/0/1008" in line for line in lines(app.cluster_list)), lines(app.cluster_list)


@pytest.mark.slow
async def test_health_at_a_glance_second_line() -> None:
    app, source = _app(long=False)
    async with running(app, size=(200, 50)) as pilot:
        text = "\n".join(lines(app.cluster_list))
        assert "query 5m12s" in text and "xact 3m10s" in text and "conn 9/500" in text
        assert "tps" not in text  # one sample: no rate yet, and none guessed
        await source.refresh_now(None)
        await settle(pilot, app, 6)
        text = "\n".join(lines(app.cluster_list))
        # 240 more transactions in 2 s on each of pgdemo-1's two instances; pgdemo-2 has one
        assert "tps 240" in text and "tps 120" in text
        # the failed cluster shows nothing it does not know
        rds = next(i for i, line in enumerate(lines(app.cluster_list)) if line.startswith("pgdemo-rds"))
        assert lines(app.cluster_list)[rds + 1].strip() == ""


@pytest.mark.slow
async def test_down_over_a_heading_lands_on_the_next_cluster_every_time() -> None:
    app, _ = _app(long=False, rounds=1)
    async with running(app) as pilot:
        app.cluster_list.focus()
        assert app.selected == "pgdemo-1"
        await pilot.press("down", "down", "down")  # pgdemo-2, over "staging" to pgdemo-rds, stays
        await pilot.pause()
        assert app.selected == "pgdemo-rds" and app.cluster_list.selected == "pgdemo-rds"
        await pilot.press("up")
        await pilot.pause()
        assert app.selected == "pgdemo-2"
        await pilot.press("up", "up")  # pgdemo-1; the heading above it is not a stop
        await pilot.pause()
        assert app.selected == "pgdemo-1"


@pytest.mark.slow
async def test_z_on_the_cluster_list_zooms_that_clusters_activity() -> None:
    app, _ = _app(long=False, rounds=1)
    async with running(app) as pilot:
        app.cluster_list.focus()
        await pilot.press("z")
        await pilot.pause()
        assert app.zoomed == "activity" and not app.cluster_list.display  # zoomed in place (top bar kept)
        await pilot.press("z")
        await pilot.pause()
        assert app.zoomed is None and app.cluster_list.display
