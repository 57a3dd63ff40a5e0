"""The IAM pane on canned snapshots: whole `member of` cells, a user's detail on Enter, unread findings."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import cluster_configs, fixed_now, sample_snapshots
from pgiam_devtools.static_source import StaticSource
from textual.widgets import DataTable

from helpers.pilot import lines, running, settle
from pgiam_tui.model import ErrorInfo
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.iam_detail import IamUserScreen


def _app(snaps: tuple = ()) -> PgiamApp:  # type: ignore[type-arg]
    return PgiamApp(StaticSource([snaps or sample_snapshots()]), cluster_configs(), now=fixed_now, tick=False)


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), [(120, 40), (200, 50)])
async def test_member_of_is_never_cut_mid_word(width: int, height: int) -> None:
    app = _app()
    async with app.run_test(size=(width, height)) as pilot:
        await settle(pilot, app, 3)
        table = app.query_one("#iam-users", DataTable)
        member_of = table.columns[next(k for k in table.columns if k.value == "member of")]
        assert member_of.width >= len("oltp_rw_role, rds_iam")
        if width >= 200:
            shown = "\n".join(lines(table))
            assert "pg_monitor, rds_iam" in shown and "oltp_rw_role, rds_iam" in shown


@pytest.mark.slow
async def test_enter_on_an_iam_row_shows_principals_policy_findings_and_last_use() -> None:
    app = _app()
    async with running(app) as pilot:
        table = app.query_one("#iam-users", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("pgmonitor"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, IamUserScreen)
        text = app.screen.text.plain
        assert "arn:aws:iam::111111111111:role/pg-monitor-role" in text
        assert "pg-db-monitor-policy" in text and "dbuser:*/pgmonitor" in text
        assert "wildcard_grant" in text and "(2m00s ago)" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, IamUserScreen)


async def test_findings_of_a_cluster_whose_credentials_failed_say_not_read() -> None:
    snaps = sample_snapshots()
    failed = replace(
        snaps[2],
        iam=None,
        findings=(),
        error=ErrorInfo("credentials", "No credentials found", "aws sso login"),
    )
    app = _app((snaps[0], snaps[1], failed))
    async with running(app) as pilot:
        app.cluster_list.select("pgdemo-rds")
        await pilot.pause()
        body = "\n".join(lines(app.query_one("#iam-findings")))
        assert "Findings: not read (credentials failed)" in body
        assert "none" not in body
