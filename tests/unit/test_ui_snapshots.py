"""SVG snapshot tests (pytest-textual-snapshot) of the console on deterministic data.

Fixed datetimes and a frozen clock (no countdown tick), so every run renders the same screen.
Update after an intended change with: .venv/bin/pytest tests/test_ui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from helpers.pilot import sample_app
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.activity import ActivityTable

SnapCompare = Callable[..., bool]


async def loaded(pilot: Pilot[Any]) -> None:
    """Wait until the three canned snapshots are rendered."""
    app = pilot.app
    assert isinstance(app, PgiamApp)
    for _ in range(200):
        await pilot.pause()
        if app.snapshots_seen >= 3:
            break
    await pilot.pause()


def test_main_screen(snap_compare: SnapCompare) -> None:
    assert snap_compare(sample_app()[0], terminal_size=(120, 40), run_before=loaded)


def test_main_screen_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(sample_app()[0], terminal_size=(80, 24), run_before=loaded)


def test_detail_screen(snap_compare: SnapCompare) -> None:
    async def open_detail(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app = pilot.app
        assert isinstance(app, PgiamApp)
        table = app.query_one(ActivityTable)
        table.focus()
        index = next(
            i for i, k in enumerate(table.row_keys) if (loc := table.located(k)) and loc.row.pid == 4104
        )
        table.move_cursor(row=index)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(sample_app()[0], terminal_size=(120, 40), run_before=open_detail)


def test_iam_pane_with_findings(snap_compare: SnapCompare) -> None:
    async def zoom_iam(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app = pilot.app
        app.query_one("#iam-users").focus()
        await pilot.press("z")
        await pilot.pause()

    assert snap_compare(sample_app()[0], terminal_size=(120, 40), run_before=zoom_iam)


def test_check_modal(snap_compare: SnapCompare) -> None:
    async def run_check(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app = pilot.app
        assert isinstance(app, PgiamApp)
        app.cluster_list.select("pgdemo-rds")
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(sample_app()[0], terminal_size=(120, 40), run_before=run_check)
