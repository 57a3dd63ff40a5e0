"""Acting on sessions, on canned snapshots: what the console says before an attempt that cannot work, the
cancel of an idle-in-transaction session, how `y` copied, and focus after the all-clusters view."""

from __future__ import annotations

import pytest
from pgiam_devtools.sample import sample_snapshots
from pgiam_devtools.static_source import StaticSource
from textual.widgets import DataTable

from helpers.pilot import running, sample_app
from helpers.snapshot_variants import without_signal_right
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.detail import SessionDetailScreen, copy_notice
from pgiam_tui.ui.screens.modals import ConfirmScreen


async def _cursor_on(app: PgiamApp, pid: int) -> None:
    table = app.activity.table
    table.focus()
    index = next(i for i, k in enumerate(table.row_keys) if (loc := table.located(k)) and loc.row.pid == pid)
    table.move_cursor(row=index)


async def test_cancel_says_before_the_attempt_when_the_user_cannot_signal_backends() -> None:
    app, source = sample_app([without_signal_right(sample_snapshots())])
    async with running(app) as pilot:
        await _cursor_on(app, 4105)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # no confirmation for what cannot work
        notes = [str(n.message) for n in app._notifications]
        assert any(
            "not a member of pg_signal_backend" in n and "GRANT pg_signal_backend TO" in n for n in notes
        )
        assert source.actions == []


@pytest.mark.slow
async def test_cancel_of_an_idle_in_transaction_session_offers_terminate() -> None:
    app, source = sample_app()
    async with running(app) as pilot:
        await _cursor_on(app, 4102)  # idle in transaction, holding the lock others wait on
        await pilot.press("k")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        text = str(screen.question)
        assert "no running query to cancel" in text and "Terminate it instead?" in text
        assert "stops its current query" not in text
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        assert source.actions == [("pgdemo-1", "pgdemo-1-writer", 4102, "terminate")]


def test_copy_notice_says_how_and_where_it_may_be_dropped() -> None:
    assert "OSC 52" in copy_notice(12, {})
    assert "set-clipboard on" in copy_notice(12, {"TMUX": "/tmp/tmux-0/default,1,0"})
    assert "set-clipboard" not in copy_notice(12, {})


@pytest.mark.slow
async def test_y_in_the_detail_does_not_claim_a_copy_arrived() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        await _cursor_on(app, 4105)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SessionDetailScreen)
        await pilot.press("y")
        await pilot.pause()
        notes = [str(n.message) for n in app._notifications]
        assert any("OSC 52" in n for n in notes) and not any("copied to the clipboard" in n for n in notes)


@pytest.mark.slow
async def test_focus_comes_back_after_the_all_clusters_view() -> None:
    app = PgiamApp(StaticSource([sample_snapshots()]), (), tick=False)
    async with running(app) as pilot:
        for widget in (app.cluster_list, app.query_one("#events-table", DataTable)):
            widget.focus()
            await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is widget
