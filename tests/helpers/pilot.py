"""Driving the console with Textual's Pilot in the tests: start and settle, press keys, read what is drawn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pgiam_devtools.sample import cluster_configs, fixed_now, sample_check, sample_snapshots
from pgiam_devtools.static_source import StaticSource
from textual.pilot import Pilot
from textual.widget import Widget

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.app import PgiamApp

WAIT_S = 90.0  # a generous bound on a condition the app reaches on its own (a liveness guard, not a timing)


def sample_app(rounds: list[tuple[ClusterSnapshot, ...]] | None = None) -> tuple[PgiamApp, StaticSource]:
    """The console on the sample clusters (a fixed clock, no 1 s tick) and its canned source: ROUNDS of
    snapshots (by default the sample's one round; [] emits nothing until pushed), pgdemo-rds's check."""
    source = StaticSource([sample_snapshots()] if rounds is None else rounds, {"pgdemo-rds": sample_check()})
    return PgiamApp(source, cluster_configs(), now=fixed_now, tick=False), source


async def settle(pilot: Pilot[int], app: PgiamApp, seen: int) -> None:
    """Let the app process messages until it has seen `seen` snapshots."""
    for _ in range(200):
        await pilot.pause()
        if app.snapshots_seen >= seen:
            break
    assert app.snapshots_seen >= seen
    await pilot.pause()


@asynccontextmanager
async def running(
    app: PgiamApp, size: tuple[int, int] = (120, 40), seen: int = 3
) -> AsyncIterator[Pilot[int]]:
    """APP run headless at SIZE, once it has shown `seen` snapshots."""
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, seen)
        yield pilot


async def press(pilot: Pilot[int], *keys: str) -> None:
    """Press KEYS, then let the app draw what they did."""
    await pilot.press(*keys)
    await pilot.pause()


def lines(widget: Widget) -> list[str]:
    """The widget's rendered lines, as the terminal gets them."""
    return ["".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)]


async def wait_for(pilot: Pilot[int], what: str, cond: Callable[[], bool], limit_s: float = WAIT_S) -> None:
    """Let the app run until `cond()` holds; fail naming `what` (and what the app holds) after `limit_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}; {describe(pilot.app)}")
        await pilot.pause(0.25)


def describe(app: object) -> str:
    """What the app holds per cluster (for failure messages)."""
    if not isinstance(app, PgiamApp):
        return ""
    parts = []
    for name, snap in app.latest.items():
        err = f" {snap.error.step}: {snap.error.message}" if snap.error else ""
        parts.append(f"{name}={snap.status}({len(snap.activity)} sessions){err}")
    return f"snapshots seen {app.snapshots_seen}: " + "; ".join(parts)
