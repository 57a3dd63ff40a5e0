"""On-call items of the console checked on the live sandbox with the real Monitor (MonitorSource), via Pilot:
the caller ARN in the top bar, `r` re-reading a cluster's IAM setting at once and retrying a failed connection
at once. The Monitor's own cadences (or its reconnect backoff) are set to an hour or so here, so a change
seen at all within the wait was brought by `r`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from textual.widget import Widget

from helpers.check_support import set_cluster_iam_flag
from helpers.pilot import WAIT_S, lines, wait_for
from pgiam_tui.config import load_config
from pgiam_tui.db.connection import Backoff
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.source import MonitorSource

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = pytest.mark.timeout(400)
HOUR_S = 3600.0


def _pane_text(app: PgiamApp, selector: str) -> str:
    """What the widget and everything in it draws (a container draws only its background)."""
    top = app.query_one(selector)
    return " ".join(" ".join(lines(w)) for w in (top, *top.walk_children(Widget)) if w.display)


async def test_live_top_bar_names_caller_and_r_rereads_iam_setting(sandbox: Sandbox, tmp_path: Path) -> None:
    config = load_config(sandbox.profiles_toml)
    sc = [c for c in sandbox.clusters if c.kind == "aurora"][-1]
    cfg = config.cluster(sc.name)
    # the identity the cluster's profile resolves to, asked of STS directly (not through the console)
    sts = sandbox.boto_session(cfg.profile).client("sts", region_name=cfg.region)
    caller_arn = sts.get_caller_identity()["Arn"]
    app = PgiamApp(
        MonitorSource(
            config,
            cache_dir=tmp_path / "aws-cache",
            monitor_options={"discovery_refresh_s": HOUR_S, "iam_refresh_s": HOUR_S},
        ),
        config.clusters,
    )
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, f"a snapshot of {sc.name}", lambda: sc.name in app.latest)
        app.cluster_list.select(sc.name)
        await wait_for(pilot, f"{sc.name} selected", lambda: app.selected == sc.name)
        await wait_for(
            pilot, "the caller ARN in the top bar", lambda: caller_arn in _pane_text(app, "#topbar")
        )
        await wait_for(pilot, "IAM auth enabled", lambda: "IAM auth enabled" in _pane_text(app, "#iam"))
        try:
            set_cluster_iam_flag(sandbox, sc, False)
            await pilot.press("r")
            await wait_for(
                pilot, "IAM auth DISABLED after r", lambda: "IAM auth DISABLED" in _pane_text(app, "#iam")
            )
        finally:
            set_cluster_iam_flag(sandbox, sc, True)
        await pilot.press("r")
        await wait_for(
            pilot, "IAM auth enabled again after r", lambda: "IAM auth enabled" in _pane_text(app, "#iam")
        )
        await pilot.press("q")
    assert app.return_value == 0


async def test_live_r_retries_a_failed_connection_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """With a reconnect backoff of half an hour or more, only `r` can bring a cluster back within the wait."""
    config = load_config(sandbox.profiles_toml)
    victim = sandbox.clusters[1].name
    app = PgiamApp(
        MonitorSource(
            config,
            cache_dir=tmp_path / "aws-cache",
            monitor_options={"backoff": Backoff(base_s=HOUR_S, cap_s=HOUR_S)},
        ),
        config.clusters,
    )
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(
            pilot, f"{victim} ok", lambda: victim in app.latest and app.latest[victim].status == "ok"
        )
        app.cluster_list.select(victim)
        await wait_for(pilot, f"{victim} selected", lambda: app.selected == victim)
        try:
            sandbox.stop_cluster(victim)
            await wait_for(pilot, f"{victim} failed", lambda: app.latest[victim].status == "error")
        finally:
            sandbox.start_cluster(victim)
        # each `r` retries at once; a server still starting may refuse one, so `r` is pressed again until back
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while app.latest[victim].status != "ok":
            assert loop.time() < deadline, f"{victim} not back after r: {app.latest[victim].status}"
            await pilot.press("r")
            for _ in range(20):
                await pilot.pause(0.25)
                if app.latest[victim].status == "ok":
                    break
        await pilot.press("q")
    assert app.return_value == 0
