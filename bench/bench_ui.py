"""Console (Textual UI) benchmark: prints a markdown fragment with its figures.

1. launch to first activity rows on screen: app start -> rows in the activity table (synthetic source;
   with --sandbox also on a live sandbox in its own process, through the real Monitor);
2. applying a 10,000-row snapshot to the activity table as a diff after the first fill (every duration
   changed, 1% of sessions replaced);
3. steady CPU of the app watching 10 clusters x 500 sessions refreshed every 2 s (synthetic source: a
   timer emits new rounds, so this measures the UI alone, not collection) over --seconds (default 60),
   with a clock that moves, so the token countdowns tick as they do live;
4. key press to repaint at 10 clusters x 500 sessions while rounds arrive: switch cluster, sort, filter
   (the time from the key event to the end of the screen update it causes);
5. peak RSS of the process.

The app runs headless (Textual's test driver): the screen is composed and rendered but not written to a
terminal, so terminal output cost is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pgiam_devtools.sample import T0, synthetic_snapshot
from pgiam_devtools.static_source import StaticSource
from textual.widgets import Input

from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.activity import Located

SIZE = (160, 50)


class TickingSource(StaticSource):
    """A fresh round for every cluster every `interval` seconds (durations move, 1% of sessions churn)."""

    def __init__(self, names: list[str], sessions: int, interval: float) -> None:
        super().__init__([[synthetic_snapshot(n, sessions) for n in names]])
        self.names = names
        self.sessions = sessions
        self.interval = interval
        self.round = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, emit: Callable[[ClusterSnapshot], None]) -> None:
        await super().start(emit)
        self._task = asyncio.get_running_loop().create_task(self._run(emit))

    async def _run(self, emit: Callable[[ClusterSnapshot], None]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.paused:  # `p` in the console: no rounds
                continue
            self.round += 1
            for name in self.names:
                emit(synthetic_snapshot(name, self.sessions, self.round, churn=self.sessions // 100))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await super().stop()


async def wait_rows(app: PgiamApp, pilot: object, limit_s: float = 120.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while app.activity.table.row_count == 0:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def launch_synthetic() -> float:
    t0 = time.perf_counter()
    source = StaticSource([[synthetic_snapshot("bench-1", 500)]])
    app = PgiamApp(source, [ClusterConfig(name="bench-1")], tick=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(app, pilot)
        await pilot.pause()
        elapsed = time.perf_counter() - t0
    return elapsed


def launch_sandbox() -> float | None:
    """Launch to first rows through the real Monitor on a sandbox started before the clock runs.

    The sandbox runs in its own process (`pgiam-tui sandbox up`, workload on), as AWS and RDS would: in this
    process its moto server, front doors and workload would compete with the app for the GIL and the CPU.
    """
    from pgiam_tui.config import Config, load_config
    from pgiam_tui.ui.source import MonitorSource
    from sandbox_process import SandboxDidNotStart, sandbox_up

    async def run(config: Config) -> float | None:
        t0 = time.perf_counter()
        app = PgiamApp(MonitorSource(config), config.clusters)
        async with app.run_test(size=SIZE) as pilot:
            ok = await wait_rows(app, pilot)
            await pilot.pause()
            elapsed = time.perf_counter() - t0
            await app.action_quit()
        return elapsed if ok else None

    try:
        with sandbox_up("pgiam-bench-ui-") as box:
            time.sleep(3)  # let the workload open its sessions, as on a cluster that is already busy
            return asyncio.run(run(load_config(box / "profiles.toml")))
    except SandboxDidNotStart:
        return None


async def diff_10k() -> tuple[float, float, float, int, int]:
    """(fill s, diff wall s, diff CPU s, rows, changed rows) for 10,000 sessions."""
    first = synthetic_snapshot("bench-1", 10_000, 0)
    second = synthetic_snapshot("bench-1", 10_000, 1, churn=100)
    source = StaticSource([[]])
    app = PgiamApp(source, [ClusterConfig(name="bench-1")], tick=False)
    async with app.run_test(size=SIZE) as pilot:
        table = app.activity.table
        t0 = time.perf_counter()
        table.show([Located("bench-1", r) for r in first.activity], reset=True)
        await pilot.pause()
        fill = time.perf_counter() - t0
        updates = sum(
            1 for a, b in zip(first.activity, second.activity, strict=True) if a.duration_s != b.duration_s
        )
        sessions = [Located("bench-1", r) for r in second.activity]
        t0, c0 = time.perf_counter(), time.process_time()
        table.show(sessions)
        await pilot.pause()  # includes the repaint of the visible part
        diff = time.perf_counter() - t0
        diff_cpu = time.process_time() - c0
        rows = table.row_count
    return fill, diff, diff_cpu, rows, updates


def moving_clock() -> Callable[[], datetime]:
    """T0 plus the time elapsed: the synthetic tokens (valid until T0 + 15 min) count down live."""
    start = time.monotonic()
    return lambda: T0 + timedelta(seconds=time.monotonic() - start)


async def steady_cpu(seconds: float) -> tuple[float, int]:
    """(CPU % of one core, rounds applied) for 10 clusters x 500 sessions every 2 s."""
    names = [f"bench-{i}" for i in range(1, 11)]
    source = TickingSource(names, 500, 2.0)
    app = PgiamApp(source, [ClusterConfig(name=n) for n in names], now=moving_clock())
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(app, pilot)
        await asyncio.sleep(2.5)  # past the first fill
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        rounds = source.round
        await app.action_quit()
    return 100.0 * cpu / wall, rounds


async def key_latency(presses: int = 12) -> dict[str, list[float]]:
    """Key press to repaint at 10 clusters x 500 sessions: (wall ms, CPU ms) per press.

    Polling is paused (`p`) while keys are pressed: Pilot's press waits until the app is idle, so a round
    arriving meanwhile would be counted as the key's cost (the bench measures round cost apart)."""
    names = [f"bench-{i}" for i in range(1, 11)]
    source = TickingSource(names, 500, 2.0)
    app = PgiamApp(source, [ClusterConfig(name=n) for n in names], now=moving_clock())
    times: dict[str, list[float]] = {"switch cluster": [], "sort": [], "filter": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    async with app.run_test(size=SIZE) as pilot:
        await wait_rows(app, pilot)
        await asyncio.sleep(2.5)
        app.action_pause()
        await asyncio.sleep(2.5)

        async def timed(what: str, *keys: str) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            await pilot.press(*keys)  # each key is handled and the screen updated before it returns
            await pilot.pause()
            times[what].append((time.perf_counter() - t0) * 1000 / len(keys))
            cpu[what].append((time.process_time() - c0) * 1000 / len(keys))

        async def settled() -> None:  # focus changes redraw the footer: not part of the key timed next
            await pilot.pause()
            await asyncio.sleep(0.2)
            await pilot.pause()

        for i in range(presses):
            app.cluster_list.focus()
            await settled()
            await timed("switch cluster", "down" if i % 2 == 0 else "up")
            app.activity.table.focus()
            await settled()
            await timed("sort", "s")
            app.activity.open_filter()
            app.activity.query_one("#activity-filter", Input).value = "user_1"
            await asyncio.sleep(0.3)  # that filter is in force; the key below narrows it
            await timed("filter", str(i % 10))
            app.activity.query_one("#activity-filter", Input).value = ""
            await pilot.press("enter")
            await asyncio.sleep(0.3)
        await app.action_quit()
    return {k: times[k] for k in times} | {f"{k} (CPU)": cpu[k] for k in cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-CPU window (default 60)")
    parser.add_argument("--sandbox", action="store_true", help="also measure launch on the live sandbox")
    args = parser.parse_args()

    launch = asyncio.run(launch_synthetic())
    fill, diff, diff_cpu, rows, updates = asyncio.run(diff_10k())
    cpu, rounds = asyncio.run(steady_cpu(args.seconds))
    latency = asyncio.run(key_latency())
    # measured before the optional sandbox run: moto, the front doors and the workload live in this process
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    live = launch_sandbox() if args.sandbox else None

    print("## Console (Textual UI)\n")
    print("Headless Textual driver (screen rendered, not written to a terminal).")
    print(f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.\n")
    print("| measure | value | aim |")
    print("|---|---|---|")
    print(f"| launch to first activity rows (synthetic source, 500 sessions) | {launch:.2f} s | < 2 s |")
    if args.sandbox:
        shown = f"{live:.2f} s" if live is not None else "no rows within 120 s"
        print(f"| launch to first activity rows (live sandbox, own process) | {shown} | < 2 s |")
    print(f"| first fill of {rows:,} rows | {fill * 1000:.0f} ms | |")
    print(f"| apply a {rows:,}-row snapshot as a diff ({updates:,} rows changed, 100 replaced) "
          f"| {diff * 1000:.0f} ms wall, {diff_cpu * 1000:.0f} ms CPU | < 100 ms |")  # fmt: skip
    print(
        f"| steady CPU, 10 clusters x 500 sessions every 2 s, {args.seconds:.0f} s "
        f"(synthetic source, {rounds} rounds) | {cpu:.1f} % of one core | < 10 % |"
    )
    for what, values in latency.items():
        print(
            f"| key press to repaint: {what} (10 clusters x 500 sessions, {len(values)} presses) "
            f"| median {statistics.median(values):.0f} ms, max {max(values):.0f} ms | <= 50 ms |"
        )
    print(f"| peak RSS (10,000-row table, then 10 clusters x 500 sessions) | {peak_mb:.0f} MB | < 250 MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
