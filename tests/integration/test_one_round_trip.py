"""A refresh reads an instance's sessions AND its server health in one network round trip (issue 12).

Checked on the wire: libpq's own protocol trace of the monitoring session (PQtrace) shows, per round, every
message the client sends (the activity and health statements, then one Sync) before the first message the
server sends back, and one ReadyForQuery at the end. Real PostgreSQL, real InstanceWatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres
from psycopg import pq

from helpers.local_pg import monitor_connection, running_postgres
from pgiam_tui.db.connection import InstanceConnection, QueryError, Statement
from pgiam_tui.monitor.instances import InstanceWatch
from pgiam_tui.monitor.parts import InstanceReading

pytestmark = pytest.mark.skipif(pq.version() < 140000, reason="libpq trace flags need libpq 14")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with running_postgres(tmp_path_factory.mktemp("round-trip")) as pg:
        yield pg


def _directions(trace: str) -> list[tuple[str, str]]:
    """(F or B, message type) of each protocol message in a libpq trace."""
    out = []
    for line in trace.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] in ("F", "B"):
            out.append((parts[0], parts[2].split(" ")[0]))
    return out


async def _traced_read(
    watch: InstanceWatch, conn: InstanceConnection, trace_path: Path
) -> tuple[InstanceReading, list[tuple[str, str]]]:
    """One `watch.read()` on CONN's open session, with libpq's protocol trace of it: (reading, messages)."""
    session = conn._conn  # the psycopg connection under the watch (to trace its protocol)
    assert session is not None
    with trace_path.open("w") as trace_file:
        session.pgconn.trace(trace_file.fileno())
        session.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            reading = await watch.read()
        finally:
            session.pgconn.untrace()
    assert conn._conn is session, "the round reconnected"
    return reading, _directions(trace_path.read_text())


def _assert_one_round_trip(messages: list[tuple[str, str]], statements: int, where: object) -> None:
    """MESSAGES: the client sent STATEMENTS Executes and one Sync before the server's first reply, nothing
    after it, and the server ended with one ReadyForQuery."""
    sent = [m for d, m in messages if d == "F"]
    assert sent.count("Execute") == statements and sent.count("Sync") == 1, (where, messages)
    first_reply = next(i for i, (d, _) in enumerate(messages) if d == "B")
    assert all(d == "B" for d, _ in messages[first_reply:]), (where, messages)  # nothing sent after
    assert [m for d, m in messages if d == "B"].count("ReadyForQuery") == 1, (where, messages)


async def test_sessions_and_health_in_one_round_trip(server: LocalPostgres, tmp_path: Path) -> None:
    conn = monitor_connection(server)
    watch = InstanceWatch(conn, "pgmonitor")
    try:
        first = await watch.read()  # connects (its own exchanges), then reads
        assert first.error is None and first.rows and first.health is not None
        for n in range(3):
            before = conn.round_trips
            reading, messages = await _traced_read(watch, conn, tmp_path / "libpq.trace")
            assert reading.error is None, reading.error
            assert any(r.usename for r in reading.rows)  # sessions
            health = reading.health
            assert health is not None and health.max_connections and health.connections  # and health
            _assert_one_round_trip(messages, statements=2, where=n)
            assert conn.round_trips == before + 1
    finally:
        await watch.close()


async def test_a_failing_statement_leaves_the_ones_before_it(server: LocalPostgres) -> None:
    conn = monitor_connection(server)
    try:
        results = await conn.fetch_pipelined(
            [
                Statement("SELECT 41 + 1"),
                Statement("SELECT 1 / 0"),
                Statement("SELECT 7"),
            ]
        )
        assert results[0] == [(42,)]
        assert isinstance(results[1], QueryError) and "division by zero" in str(results[1])
        assert isinstance(results[2], QueryError)  # the same implicit transaction: aborted with it
        # the session is fine afterwards
        assert await conn.fetch("SELECT 1") == [(1,)]
    finally:
        await conn.close()


async def test_aurora_replica_lag_rides_in_the_same_round_trip(server: LocalPostgres, tmp_path: Path) -> None:
    # aurora_replica_status() as Aurora PostgreSQL documents it (server_id, replica_lag_in_msec, ...):
    # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora_replica_status.html
    # Stood in by a SQL function of the same name and columns, so the real server takes the Aurora path.
    admin = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    await admin.execute(
        "CREATE FUNCTION public.aurora_replica_status()"
        " RETURNS TABLE (server_id text, replica_lag_in_msec real)"
        " LANGUAGE sql AS $$ VALUES ('local-writer', 1250::real), ('another-reader', 9::real) $$"
    )
    conn = monitor_connection(server)
    watch = InstanceWatch(conn, "pgmonitor")
    try:
        first = await watch.read()
        assert first.health is not None and first.health.replica_lag_s == 1.25
        for n in range(2):
            before = conn.round_trips
            reading, messages = await _traced_read(watch, conn, tmp_path / "libpq.trace")
            assert reading.health is not None and reading.health.replica_lag_s == 1.25
            _assert_one_round_trip(messages, statements=3, where=n)  # activity, health and lag
            assert conn.round_trips == before + 1  # activity, health and lag: one pipeline
    finally:
        await watch.close()
        await admin.execute("DROP FUNCTION public.aurora_replica_status()")
        await admin.close()
