"""The console's check modal (`c`) shows each step as it finishes and the running one (a tunnel that accepts
TCP and never answers is visibly "connecting…"), then ends with the cause sentence, the evidence and the fix
as `pgiam-tui check` prints them (issue 12). The real app, driven by Pilot; the check is a source whose steps
the test releases one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from pgiam_devtools.sample import cluster_configs, fixed_now, sample_snapshots
from pgiam_devtools.static_source import StaticSource
from textual.pilot import Pilot

from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.modals import CheckScreen
from pgiam_tui.ui.source import CheckProgressSink, CheckStepView, CheckView
from pgiam_tui.vocabulary import CheckCause


class SteppedSource(StaticSource):
    """A StaticSource whose check reports steps as the test lets them through."""

    def __init__(self) -> None:
        super().__init__([sample_snapshots()])
        self.release = asyncio.Event()

    async def run_check(self, name: str, progress: CheckProgressSink | None = None) -> CheckView:
        assert progress is not None
        progress("config", None)
        progress("config", CheckStepView("config", "ok", 0.4, "pgdemo-rds (line 3): endpoint …"))
        progress("tcp", None)
        progress("tcp", CheckStepView("tcp", "ok", 1.2, "connected to 127.0.0.1:15432"))
        progress("tls", None)
        await self.release.wait()  # the tunnel accepted TCP and says nothing
        progress(
            "tls", CheckStepView("tls", "failed", 5000.0, "no TLS answer within 5 s", "is this PostgreSQL?")
        )
        return CheckView(
            cluster=name,
            ok=False,
            steps=(
                CheckStepView("config", "ok", 0.4, "pgdemo-rds (line 3): endpoint …"),
                CheckStepView("tcp", "ok", 1.2, "connected to 127.0.0.1:15432"),
                CheckStepView("tls", "failed", 5000.0, "no TLS answer within 5 s", "is this PostgreSQL?"),
            ),
            cause=CheckCause.TLS_ERROR,
            cause_text="the TLS handshake failed",
            evidence=("127.0.0.1:15432 accepted TCP and sent nothing for 5 s",),
            evidence_source="inference",
            fix="check the tunnel: it must forward to the cluster endpoint's port 5432",
        )


def body_text(screen: CheckScreen) -> str:
    widget = screen.query_one("#check-body")
    return "\n".join("".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height))


async def until(pilot: Pilot[Any], predicate: Any) -> None:
    for _ in range(400):
        await pilot.pause()
        if predicate():
            return
    raise AssertionError("condition never held")


async def test_modal_shows_progress_then_cause_and_evidence() -> None:
    source = SteppedSource()
    app = PgiamApp(source, cluster_configs(), now=fixed_now, tick=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshots_seen >= 1)
        app.cluster_list.select("pgdemo-rds")
        await pilot.pause()
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        await until(pilot, lambda: "connecting (TLS handshake)…" in body_text(screen))
        body = body_text(screen)
        assert "✔ config" in body and "✔ tcp" in body  # finished steps are already there
        assert "cause:" not in body
        source.release.set()
        await until(pilot, lambda: "cause:" in body_text(screen))
        body = body_text(screen)
        assert "cause: the TLS handshake failed [tls_error]" in body
        assert "evidence (from inference):" in body
        assert "accepted TCP and sent nothing for 5 s" in body
        assert "fix:   check the tunnel" in body
        assert "connecting (TLS handshake)…" not in body
        await pilot.press("escape")
