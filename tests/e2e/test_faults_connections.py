"""Fault matrix (issue 10): a cluster that stalls and recovers again and again leaves no session behind.

psycopg's connect timeout abandons the half-open libpq connection in a reference cycle with its exception:
until the garbage collector runs, its socket stays open, and the front door (as RDS would) completes that
login and keeps the server session behind it. The stall here is the stand-in's `latency_ms` switch (every
relayed message late by seconds): the monitor's reads go over budget, its reconnects time out mid-login. The
collector is switched off for the test, so only what the product closes itself is closed.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox import Sandbox

from helpers.faults import Snapshots, Stopwatch, record_figure
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config, load_config
from pgiam_tui.db.connection import Backoff
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.monitor import Monitor

pytestmark = pytest.mark.timeout(600)

STALLS = 3
LATENCY_MS = 2500.0  # per relayed message: a login (about 15 messages) takes far longer than the 2 s timeout
GUARD_S = 180.0


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cyclic garbage collector off: whatever the product leaves to it stays (and is counted)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def _sessions(dsn: str) -> int:
    """Monitoring sessions (pgiam-tui's) on the server, idle or not."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE usename = 'pgmonitor' AND application_name = 'pgiam-tui'"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _until(what: str, check: object, guard_s: float = GUARD_S) -> None:
    """Poll the async predicate CHECK until it holds (a liveness wait with a generous guard, not a timing)."""
    assert callable(check)
    async with asyncio.timeout(guard_s):
        while not await check():
            await asyncio.sleep(0.25)


async def test_repeated_stalls_leave_no_sessions_behind(
    sandbox: Sandbox, tmp_path: Path, no_collector: None
) -> None:
    cluster = next(c for c in sandbox.clusters if c.kind == "aurora")
    assert cluster.writer is not None
    writer = cluster.writer.id
    dsn = sandbox.admin_dsn(cluster.name, writer)
    config = load_config(sandbox.profiles_toml)
    cfg = replace(config.cluster(cluster.name), connect_timeout_s=2.0, statement_timeout_ms=1000)
    seen = Snapshots()
    monitor = Monitor(
        Config(path=config.path, clusters=(cfg,)),
        SessionFactory(cache_dir=tmp_path / "cli-cache"),
        seen,
        backoff=Backoff(base_s=0.1, factor=2.0, cap_s=0.5),
        collect_events=False,
        collect_iam=False,
    )
    monitor.set_interval(cluster.name, 0.5)

    def writer_live(s: ClusterSnapshot) -> bool:
        w = next(i for i in s.instances if i.id == writer)
        return s.name == cluster.name and not w.freshness.stale and w.status == "connected"

    def writer_timed_out(s: ClusterSnapshot) -> bool:
        w = next(i for i in s.instances if i.id == writer)
        return w.freshness.stale and w.connection is not None and w.connection.attempt >= 2

    await monitor.start()
    clock = Stopwatch()
    try:
        await seen.wait(writer_live, guard_s=GUARD_S)

        async def one_session() -> bool:
            return await _sessions(dsn) == 1

        await _until("one monitoring session", one_session)
        for _ in range(STALLS):
            mark = seen.mark()
            sandbox.switches.latency_ms = LATENCY_MS
            try:
                # over budget, then reconnects that time out mid-login (attempt 2 and later)
                await seen.wait(writer_timed_out, after=mark, guard_s=GUARD_S)
            finally:
                sandbox.switches.latency_ms = 0
            await seen.wait(writer_live, after=seen.mark(), guard_s=GUARD_S)
        # every login abandoned during the stalls must be gone, the collector notwithstanding: one session
        await _until("no sessions left over from the stalls", one_session)
    finally:
        sandbox.switches.latency_ms = 0
        await monitor.stop()
    record_figure(
        f"{STALLS} stalls (latency {LATENCY_MS:.0f} ms) with no session left behind", total_s=clock()
    )
