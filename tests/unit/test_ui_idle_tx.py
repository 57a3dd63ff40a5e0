"""`X`: terminate a cluster's sessions idle in transaction for more than N, on canned snapshots via Pilot.

One confirmation lists them; + / - change N; the gates are those of cancel / terminate (allow_actions, then
pg_signal_backend). The same against a real server: tests/integration/test_idle_tx_terminate.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import HOSTILE_QUERY, cluster_configs, fixed_now, sample_snapshots, session
from pgiam_devtools.static_source import StaticSource

from helpers.pilot import running, settle
from helpers.snapshot_variants import without_signal_right
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.idle_tx import IdleTxScreen, idle_tx_older_than, next_threshold
from pgiam_tui.ui.widgets.events import EventsTable

W, R = "pgdemo-1-writer", "pgdemo-1-reader"


def _snaps(*, can_signal: bool = True) -> tuple[ClusterSnapshot, ...]:
    snaps = sample_snapshots()
    extra = (
        # 4102 (sample data) is idle in transaction for 3m05s, holding a lock
        session(W, 4180, "oltp_rw_user", "idle in transaction", "SELECT 1", duration_s=45.0, xact_s=50.0),
        session(R, 5180, "report_user", "idle in transaction (aborted)", HOSTILE_QUERY, duration_s=700.0,
                xact_s=720.0),
        session(W, 4181, "oltp_rw_user", "idle", "COMMIT", duration_s=900.0),  # idle, no transaction
    )  # fmt: skip
    with_extra = (replace(snaps[0], activity=snaps[0].activity + extra), *snaps[1:])
    return with_extra if can_signal else without_signal_right(with_extra)


def _app(*, can_signal: bool = True) -> tuple[PgiamApp, StaticSource]:
    source = StaticSource([_snaps(can_signal=can_signal)])
    return PgiamApp(source, cluster_configs(), now=fixed_now, tick=False), source


def _body(app: PgiamApp) -> str:
    screen = app.screen
    assert isinstance(screen, IdleTxScreen)
    return str(screen.query_one("#idle-tx-body").render())


def _listed(app: PgiamApp) -> list[int]:
    screen = app.screen
    assert isinstance(screen, IdleTxScreen)
    return [r.pid for r in screen.sessions]


# one size in make test-fast, every size in make test
@pytest.mark.parametrize(
    "size",
    [
        (80, 24),
        pytest.param((120, 40), marks=pytest.mark.slow),
        pytest.param((200, 50), marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow
async def test_one_confirmation_lists_them_and_y_terminates_exactly_those(size: tuple[int, int]) -> None:
    app, source = _app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, 3)
        await pilot.press("X")
        await pilot.pause()
        # idle in transaction for more than 1m (the default), longest first; not the younger one, not idle
        assert _listed(app) == [5180, 4102]
        body = _body(app)
        assert "Terminate 2 sessions idle in transaction for more than 1m" in body
        for piece in (
            "5180",
            "report_user",
            R,
            "11m40s",
            "12m00s",
            "4102",
            W,
            "3m05s",
            "UPDATE pgdemo.products",
        ):
            assert piece in body, piece
        assert "\x1b" not in body and "[bold red]x[/]" in body  # the query head is plain text
        await pilot.press("minus")  # 30s: the younger one joins
        await pilot.pause()
        assert _listed(app) == [5180, 4102, 4180] and "for more than 30s" in _body(app)
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.actions == [
            ("pgdemo-1", R, 5180, "terminate"),
            ("pgdemo-1", W, 4102, "terminate"),
            ("pgdemo-1", W, 4180, "terminate"),
        ]
        notes = [str(n.message) for n in app._notifications]
        assert any("pgdemo-1: 3 idle-in-transaction sessions terminated" in n for n in notes), notes
        events = app.query_one(EventsTable)
        shown = " ".join(str(events.get_row_at(i)) for i in range(events.row_count))
        assert "5180" in shown and "4180" in shown
        assert app.idle_tx_threshold_s == 30.0  # the next X starts from the age chosen


@pytest.mark.slow
async def test_refusing_terminates_nothing() -> None:
    app, source = _app()
    async with running(app) as pilot:
        for refuse in ("n", "escape"):
            await pilot.press("X")
            await pilot.pause()
            assert isinstance(app.screen, IdleTxScreen)
            await pilot.press(refuse)
            await pilot.pause()
            await app.workers.wait_for_complete()
            assert not isinstance(app.screen, IdleTxScreen)
        assert source.actions == []


@pytest.mark.slow
async def test_gated_like_cancel_and_terminate() -> None:
    app, source = _app()
    async with running(app) as pilot:
        app.cluster_list.select("pgdemo-2")  # allow_actions is off there (the default)
        await pilot.pause()
        await pilot.press("X")
        await pilot.pause()
        assert not isinstance(app.screen, IdleTxScreen)
        notes = [str(n.message) for n in app._notifications]
        assert any("terminate is disabled for pgdemo-2: set allow_actions = true" in n for n in notes)
    app, source = _app(can_signal=False)
    async with running(app) as pilot:
        await pilot.press("X")
        await pilot.pause()
        assert not isinstance(app.screen, IdleTxScreen)
        notes = [str(n.message) for n in app._notifications]
        assert any("not a member of pg_signal_backend" in n for n in notes)
    assert source.actions == []


@pytest.mark.slow
async def test_none_old_enough_says_so_and_y_does_nothing() -> None:
    app, source = _app()
    async with running(app) as pilot:
        await pilot.press("X")
        for _ in range(6):
            await pilot.press("plus")  # the longest age: 1h
        await pilot.pause()
        assert _listed(app) == [] and "No session idle in transaction for more than 1h00m" in _body(app)
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert source.actions == []


def test_selection_and_thresholds() -> None:
    rows = _snaps()[0].activity
    assert [r.pid for r in idle_tx_older_than(rows, 0.0)] == [5180, 4102, 4180]
    assert next_threshold(60.0, 1) == 300.0 and next_threshold(10.0, -1) == 10.0
    assert next_threshold(3600.0, 1) == 3600.0
