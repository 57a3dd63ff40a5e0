"""Fault matrix, database side (issue 10 item 3): the headless Monitor on the stand-in, faults by pid.

Each test: the monitor keeps running, the other cluster keeps updating, the affected instance says what
happened (stale, with a reason) within one refresh interval plus its read budget, recovers after the fault
ends, and keeps the rows it had meanwhile. Waits are on conditions with generous guards, never on timings;
the measured detection and recovery times go to $PGIAM_FAULT_FIGURES for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox import Sandbox

from helpers.faults import Snapshots, Stopwatch, record_figure
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config, load_config
from pgiam_tui.db.connection import Backoff
from pgiam_tui.model import ClusterSnapshot, InstanceInfo
from pgiam_tui.monitor import Monitor

INTERVAL_S = 0.5
FAST = Backoff(base_s=0.1, factor=2.0, cap_s=0.5)


@asynccontextmanager
async def watching(
    sandbox: Sandbox, tmp_path: Path, names: list[str]
) -> AsyncIterator[tuple[Monitor, Snapshots]]:
    """A running headless Monitor over NAMES (activity only, short interval), and its snapshots."""
    config = load_config(sandbox.profiles_toml)
    chosen = Config(path=config.path, clusters=tuple(c for c in config.clusters if c.name in names))
    seen = Snapshots()
    monitor = Monitor(
        chosen,
        SessionFactory(cache_dir=tmp_path / "cli-cache"),
        seen,
        backoff=FAST,
        collect_events=False,
        collect_iam=False,
    )
    for name in names:
        monitor.set_interval(name, INTERVAL_S)
    await monitor.start()
    try:
        for name in names:
            await seen.wait(functools.partial(_live, name=name))
        yield monitor, seen
    finally:
        await monitor.stop()


def _live(snap: ClusterSnapshot, name: str) -> bool:
    return snap.name == name and snap.status == "ok" and not snap.stale and bool(snap.activity)


def _inst(snap: ClusterSnapshot, instance_id: str) -> InstanceInfo:
    return next(i for i in snap.instances if i.id == instance_id)


def _aurora(sandbox: Sandbox) -> tuple[str, str, str, str]:
    """(aurora cluster, its writer id, its reader id, another cluster)."""
    cluster = next(c for c in sandbox.clusters if c.kind == "aurora" and c.reader is not None)
    assert cluster.reader is not None and cluster.writer is not None
    other = next(c.name for c in sandbox.clusters if c.name != cluster.name)
    return cluster.name, cluster.writer.id, cluster.reader.id, other


async def _other_keeps_updating(seen: Snapshots, other: str, rounds: int = 2) -> None:
    mark = seen.mark()
    for _ in range(rounds):
        await seen.wait(lambda s: s.name == other and s.status == "ok" and not s.stale, after=mark)
        mark = seen.mark()


async def test_server_stall_marks_the_writer_stale_and_keeps_the_reader_live(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    name, writer, reader, other = _aurora(sandbox)
    async with watching(sandbox, tmp_path, [name, other]) as (_, seen):
        pids = sandbox.instance_pids(writer)
        assert pids.postmaster is not None
        stopped = [pids.postmaster, *pids.children]
        mark = seen.mark()
        clock = Stopwatch()
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            down = await seen.wait(lambda s: s.name == name and _inst(s, writer).freshness.stale, after=mark)
            detected = clock()
            w = _inst(down, writer)
            assert w.freshness.reason is not None and "no answer" in w.freshness.reason
            assert "permission" not in w.freshness.reason.lower()
            # writer dead, reader healthy: no cluster-wide error; the reader live beside the writer's old rows
            # (waited for: on a loaded machine one of the reader's rounds may be late too)
            both = await seen.wait(
                functools.partial(_writer_down_reader_up, name=name, writer=writer, reader=reader), after=mark
            )
            assert both.error is None
            assert {r.instance for r in both.activity} == {writer, reader}
            await _other_keeps_updating(seen, other)
            reader_rounds = seen.mark()
            await seen.wait(
                lambda s: s.name == name and not _inst(s, reader).freshness.stale, after=reader_rounds
            )
        finally:
            for pid in reversed(stopped):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        clock = Stopwatch()
        mark = seen.mark()
        await seen.wait(lambda s: s.name == name and s.status == "ok" and not s.stale, after=mark)
        record_figure("server stall (SIGSTOP writer)", detected_s=detected, recovered_s=clock())


async def test_server_killed_and_restarted(sandbox: Sandbox, tmp_path: Path) -> None:
    name, writer, reader, other = _aurora(sandbox)
    async with watching(sandbox, tmp_path, [name, other]) as (_, seen):
        pids = sandbox.instance_pids(writer)
        assert pids.postmaster is not None
        mark = seen.mark()
        clock = Stopwatch()
        os.kill(pids.postmaster, signal.SIGKILL)
        try:
            down = await seen.wait(lambda s: s.name == name and _inst(s, writer).freshness.stale, after=mark)
            detected = clock()
            assert any(r.instance == writer for r in down.activity)  # the rows it had are kept
            # the reader is live beside it (waited for: on a loaded machine one of its rounds may be late too)
            await seen.wait(
                functools.partial(_writer_down_reader_up, name=name, writer=writer, reader=reader), after=mark
            )
            await _other_keeps_updating(seen, other)
        finally:
            await asyncio.to_thread(sandbox.restart_instance, writer)
        clock = Stopwatch()
        mark = seen.mark()
        await seen.wait(lambda s: s.name == name and s.status == "ok" and not s.stale, after=mark)
        record_figure("server killed, restarted", detected_s=detected, recovered_s=clock())


async def test_monitoring_backend_terminated_repeatedly(sandbox: Sandbox, tmp_path: Path) -> None:
    name, writer, _, other = _aurora(sandbox)
    async with watching(sandbox, tmp_path, [name, other]) as (monitor, seen):
        admin = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(name, writer), autocommit=True)
        clock = Stopwatch()
        try:
            for _ in range(10):
                before = monitor.connection_status(name)[writer]
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE usename = 'pgmonitor' AND application_name = 'pgiam-tui'"
                )
                mark = seen.mark()
                # the next round reconnects with a fresh token and reads again
                await seen.wait(
                    lambda s: (
                        s.name == name and s.status == "ok" and any(r.instance == writer for r in s.activity)
                    ),
                    after=mark,
                )
                assert before is not None
        finally:
            await admin.close()
        # every snapshot meanwhile kept the writer's rows (terminations cost no data)
        assert all(any(r.instance == writer for r in s.activity) for s in seen.of(name))
        mark = seen.mark()
        await seen.wait(lambda s: s.name == name and s.status == "ok" and not s.stale, after=mark)
        await _other_keeps_updating(seen, other)
        record_figure("monitoring backend terminated 10 times", total_s=clock())


def _writer_down_reader_up(snap: ClusterSnapshot, name: str, writer: str, reader: str) -> bool:
    """Writer stale, reader live, and the cluster ok (not an error: one of its instances answers)."""
    return (
        snap.name == name
        and snap.status == "ok"
        and _inst(snap, writer).freshness.stale
        and not _inst(snap, reader).freshness.stale
    )


def _names_the_reset(snap: ClusterSnapshot, name: str, writer: str) -> bool:
    reason = (_inst(snap, writer).freshness.reason or "").lower() if snap.name == name else ""
    return "closed the connection" in reason or "reset" in reason


async def test_socket_reset_mid_query(sandbox: Sandbox, tmp_path: Path) -> None:
    """The writer's front door resets (TCP RST) every session of the writer when its client sends a query
    (the stand-in's `reset_mid_query` switch): logins work, reads never get an answer. The writer is stale
    and says the connection was lost, keeping its rows; the reader and the other cluster go on; switched
    off, the next round reconnects with a fresh token and reads again."""
    name, writer, reader, other = _aurora(sandbox)
    async with watching(sandbox, tmp_path, [name, other]) as (monitor, seen):
        connects = monitor.connection_status(name)[writer]
        assert connects is not None and connects.state == "connected"
        mark = seen.mark()
        clock = Stopwatch()
        sandbox.switches.reset_mid_query = {writer}
        try:
            await seen.wait(lambda s: s.name == name and _inst(s, writer).freshness.stale, after=mark)
            detected = clock()
            # A round may first run over its budget (a reconnect on a loaded machine): then it says timeout.
            # Once a round ends within it, the reason names the lost connection, never a permission.
            said = await seen.wait(functools.partial(_names_the_reset, name=name, writer=writer), after=mark)
            reason = (_inst(said, writer).freshness.reason or "").lower()
            assert "permission" not in reason
            # the reader is live beside it (waited for: on a loaded machine one of its rounds may be late too)
            await seen.wait(
                functools.partial(_writer_down_reader_up, name=name, writer=writer, reader=reader), after=mark
            )
            await _other_keeps_updating(seen, other)
            # it keeps trying (each round a fresh login whose query is reset) and keeps saying so
            again = seen.mark()
            await seen.wait(lambda s: s.name == name and _inst(s, writer).freshness.stale, after=again)
        finally:
            sandbox.switches.reset_mid_query = set()
        during = [s for s in seen.all[mark:] if s.name == name]
        clock = Stopwatch()
        mark = seen.mark()
        await seen.wait(lambda s: s.name == name and s.status == "ok" and not s.stale, after=mark)
        recovered = clock()
        # no data lost: every snapshot during the fault still had the writer's rows
        assert during and all(any(r.instance == writer for r in s.activity) for s in during)
        record_figure(
            "socket reset mid-query (every query of the writer)", detected_s=detected, recovered_s=recovered
        )


@pytest.mark.parametrize("skew_s", [960.0])
async def test_clock_skew_past_token_expiry(sandbox: Sandbox, tmp_path: Path, skew_s: float) -> None:
    """The front door's clock runs 16 min ahead: every token looks expired at login, so a reconnect fails
    (as after a 15-minute token expiry); open sessions go on. Back to normal, the next reconnect works."""
    name, writer, _, other = _aurora(sandbox)
    async with watching(sandbox, tmp_path, [name, other]) as (monitor, seen):
        admin = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(name, writer), autocommit=True)
        sandbox.switches.clock_skew_seconds = skew_s
        try:
            mark = seen.mark()
            clock = Stopwatch()
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE usename = 'pgmonitor' AND application_name = 'pgiam-tui'"
            )
            down = await seen.wait(lambda s: s.name == name and _inst(s, writer).freshness.stale, after=mark)
            detected = clock()
            assert _inst(down, writer).status in ("reconnecting", "failed")
            assert any(r.instance == writer for r in down.activity)
            await _other_keeps_updating(seen, other)
        finally:
            sandbox.switches.clock_skew_seconds = 0
            await admin.close()
        clock = Stopwatch()
        await monitor.refresh(name)  # `r`: retry at once, without waiting out the backoff
        mark = seen.mark()
        await seen.wait(lambda s: s.name == name and s.status == "ok" and not s.stale, after=mark)
        record_figure("token expired at login (clock skew 960 s)", detected_s=detected, recovered_s=clock())
