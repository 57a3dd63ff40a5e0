"""Activity collector on real PostgreSQL: the system's 15 and pgserver's 16 (both via LocalPostgres).

Sessions are made with real connections (a lock holder, two sessions blocked behind it, a long query with
text longer than track_activity_query_size) and read back through InstanceConnection + InstanceRound (the
monitor's own read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres, server_version

from helpers.local_pg import local_target, monitor_connection, password, running_postgres
from pgiam_tui.collect.activity import (
    COLUMNS,
    INSUFFICIENT_PRIVILEGE,
    parse_rows,
    privilege_findings,
)
from pgiam_tui.collect.instance_round import InstanceRound
from pgiam_tui.db.connection import InstanceConnection
from pgiam_tui.db.queries import UnsupportedServerError, get_query, query_file

SYSTEM_BINDIR = Path("/usr/lib/postgresql/15/bin")


def _pgserver_bindir() -> Path | None:
    try:
        import pgserver
    except ImportError:
        return None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def _bindirs() -> list[Any]:
    params = []
    for label, bindir in (("pg15-system", SYSTEM_BINDIR), ("pg16-pgserver", _pgserver_bindir())):
        marks = [] if bindir is not None and (bindir / "postgres").exists() else [pytest.mark.skip("missing")]
        params.append(pytest.param(bindir, id=label, marks=marks))
    return params


@pytest.fixture(scope="module", params=_bindirs())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPostgres]:
    """A seeded LocalPostgres of the parametrised version, running for this module."""
    bindir: Path = request.param
    with running_postgres(tmp_path_factory.mktemp("activity"), bindir=bindir) as pg:
        yield pg


async def _wait_for(conn: psycopg.AsyncConnection[Any], sql: Any, params: Any, want: int) -> None:
    """Poll pg_stat_activity until SQL returns WANT as count (bounded number of polls, no time assertion)."""
    for _ in range(200):
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        if row is not None and row[0] >= want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {want} rows for {sql!r}")


async def test_activity_rows_blocking_and_truncation(server: LocalPostgres) -> None:
    admin = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    holder = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=False)
    blocked = [await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True) for _ in range(2)]
    long_q = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    tasks: list[asyncio.Task[Any]] = []
    monitor = monitor_connection(server)
    try:
        await holder.execute("SET application_name = 'lock-holder'")
        await holder.execute("UPDATE pgdemo.products SET price = price WHERE product_no = 1")
        for b in blocked:
            await b.execute("SET application_name = 'blocked-writer'")
            update = "UPDATE pgdemo.products SET price = price + 0 WHERE product_no = 1"
            tasks.append(asyncio.create_task(b.execute(update)))
        padding = "x" * 5000  # > track_activity_query_size (4096): the server clips the text
        await long_q.execute("SET application_name = 'report-job'")
        tasks.append(asyncio.create_task(long_q.execute(f"SELECT pg_sleep(60) /* {padding} */")))
        await _wait_for(
            admin,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            ("blocked-writer",),
            2,
        )
        await _wait_for(
            admin,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
            ("report-job",),
            1,
        )

        result = await InstanceRound("local-writer", "pgmonitor").read(monitor)
        rows = {r.pid: r for r in result.rows}
        assert result.findings == ()
        assert all(r.instance == "local-writer" for r in result.rows)
        assert monitor.backend_pid is not None and monitor.backend_pid not in rows  # own session left out

        holder_pid = holder.info.backend_pid
        assert rows[holder_pid].state == "idle in transaction"
        assert rows[holder_pid].blocked_by == ()
        assert rows[holder_pid].application_name == "lock-holder"
        xact_s = rows[holder_pid].xact_duration_s
        assert xact_s is not None and xact_s >= 0
        waiting = [rows[b.info.backend_pid] for b in blocked]
        for w in waiting:
            assert w.wait_event_type == "Lock"
            assert w.state == "active"
            assert w.usename == "sandbox_admin" and w.datname == "demo"
            assert w.backend_type == "client backend"
            assert isinstance(w.backend_start, datetime) and w.backend_start.tzinfo is not None
            assert w.duration_s is not None and w.duration_s >= 0
        # the first waiter waits for the holder; the second queues behind the first (tuple lock) and/or holder
        waiter_pids = {w.pid for w in waiting}
        first = [w for w in waiting if w.blocked_by == (holder_pid,)]
        assert len(first) >= 1
        for w in waiting:
            assert w.blocked_by and set(w.blocked_by) <= {holder_pid} | (waiter_pids - {w.pid})
        # pg_blocking_pids only runs for lock waiters
        assert all(r.blocked_by == () for r in result.rows if r.wait_event_type != "Lock")

        report = rows[long_q.info.backend_pid]
        assert report.query_truncated is True
        assert report.query is not None and report.query.startswith("SELECT pg_sleep(60)")
        assert len(report.query.encode()) < 4096
        assert rows[holder_pid].query_truncated is False
        cur = await admin.execute("SHOW compute_query_id")
        compute = (await cur.fetchone() or ("off",))[0]
        if compute == "on":
            assert isinstance(report.query_id, int)
        # background processes are there too, with their backend_type
        assert any(r.backend_type not in (None, "client backend") for r in result.rows)
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'report-job'"
        )
        await holder.rollback()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in (holder, *blocked, long_q, admin):
            await c.close()
        await monitor.close()


async def test_sql_for_older_servers_runs_too(server: LocalPostgres) -> None:
    """The 12–13 shape (no query_id) is valid SQL with the same columns, run on this newer server."""
    conn = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    try:
        cur = await conn.execute(get_query("activity", 120000))
        assert cur.description is not None
        assert tuple(d.name for d in cur.description) == COLUMNS
        rows = await cur.fetchall()
        assert rows and all(r[COLUMNS.index("query_id")] is None for r in rows)
        version = conn.info.server_version
        cur = await conn.execute(get_query("activity", version))
        assert cur.description is not None
        assert tuple(d.name for d in cur.description) == COLUMNS
    finally:
        await conn.close()


async def test_insufficient_privilege_is_a_finding(server: LocalPostgres) -> None:
    """Without pg_monitor, other users' sessions are hidden: reported once with the fix."""
    other = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    # app_password_user: password auth over TCP (scram), not a member of pg_monitor
    target = local_target(server, "app_password_user", tcp=True)
    weak = InstanceConnection(target, password("app-password"))
    strong = monitor_connection(server)
    try:
        hidden = await InstanceRound("local-writer", "app_password_user").read(weak)
        other_row = next(r for r in hidden.rows if r.pid == other.info.backend_pid)
        assert other_row.query == INSUFFICIENT_PRIVILEGE
        assert [f.code for f in hidden.findings] == ["insufficient_privilege"]
        assert "pg_monitor" in hidden.findings[0].fix
        seen = await InstanceRound("local-writer", "pgmonitor").read(strong)
        assert seen.findings == ()
        assert next(r for r in seen.rows if r.pid == other.info.backend_pid).query != INSUFFICIENT_PRIVILEGE
    finally:
        await other.close()
        await weak.close()
        await strong.close()


def test_server_version_reported(server: LocalPostgres) -> None:
    major, _ = server_version(server.bindir)
    assert query_file("activity", major * 10000) == (
        "activity_post_140000.sql" if major >= 14 else "activity_post_120000.sql"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (120000, "activity_post_120000.sql"),
        (130012, "activity_post_120000.sql"),
        (140000, "activity_post_140000.sql"),
        (150004, "activity_post_140000.sql"),
        (170002, "activity_post_140000.sql"),
        (110000, "activity_post_120000.sql"),
    ],
)
def test_query_file_by_version(version: int, expected: str) -> None:
    assert query_file("activity", version) == expected


def test_too_old_server_is_refused() -> None:
    with pytest.raises(UnsupportedServerError):
        query_file("activity", 90600)


def test_parse_rows_and_privilege_findings() -> None:
    now = datetime.now().astimezone()
    row = (
        7,
        "demo",
        "u",
        "app",
        "10.0.0.1",
        None,
        5432,
        now,
        None,
        now,
        now,
        "active",
        "Lock",
        "tuple",
        "client backend",
        123,
        "select 1",
        [3, 4],
        True,
        1.5,
        None,
    )
    hidden = (8, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None,
              INSUFFICIENT_PRIVILEGE, None, False, None, None)  # fmt: skip
    parsed = parse_rows("i-1", [row, hidden])
    assert parsed[0].blocked_by == (3, 4) and parsed[0].query_truncated and parsed[0].query_id == 123
    assert parsed[0].key.startswith("i-1:7:")
    assert parsed[1].blocked_by == () and parsed[1].query_truncated is False
    findings = privilege_findings("i-1", "mon", parsed)
    assert len(findings) == 1 and "1 of 2" in findings[0].message and findings[0].user == "mon"
    assert privilege_findings("i-1", "mon", parsed[:1]) == ()


def test_sql_is_sent_compact() -> None:
    """Comment lines and indentation are dropped (the text shows in pg_stat_activity); literals are kept."""
    from pgiam_tui.db.queries import compact

    sql = get_query("activity", 150000)
    assert "--" not in sql and "\n " not in sql and len(sql) < 1200
    assert "'client backend'" in sql and "'Lock'" in sql and "'track_activity_query_size'" in sql
    assert compact("-- c\n  SELECT '--x'  \n\n  -- d\nFROM t") == "SELECT '--x'\nFROM t"


NON_UTF8_QUERY = b"select pg_sleep(300) /* caf\xe9 \xff */"


@pytest.mark.parametrize("monitor_db", ["demo", "legacy_ascii"])
async def test_text_the_server_cannot_decode_blanks_nothing(server: LocalPostgres, monitor_db: str) -> None:
    """Issue 10: a session of a SQL_ASCII database runs a query holding bytes that are not UTF-8.

    pg_stat_activity hands those bytes to every monitor unconverted: read from a UTF8 database (the usual
    monitoring database) they cannot be decoded, read from the SQL_ASCII database itself psycopg would
    return bytes. Either way every session of the instance stays, that one with its text made decodable.
    """
    admin = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    cur = await admin.execute("SELECT count(*) FROM pg_database WHERE datname = 'legacy_ascii'")
    if (await cur.fetchone()) == (0,):  # once per module server (both parameters use it)
        await admin.execute(
            "CREATE DATABASE legacy_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    legacy = await psycopg.AsyncConnection.connect(server.dsn("legacy_ascii"), autocommit=True)
    other = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    await other.execute("SET application_name = 'ordinary-neighbour'")
    target = replace(local_target(server, "pgmonitor"), database=monitor_db)
    monitor = InstanceConnection(target, password("unused-over-trust"))
    sleeper = asyncio.create_task(legacy.execute(NON_UTF8_QUERY))
    try:
        await _wait_for(
            admin, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s", ("%pg_sleep(300)%",), 1
        )
        result = await InstanceRound("local-writer", "pgmonitor").read(monitor)
        rows = {r.pid: r for r in result.rows}
        legacy_row = rows[legacy.info.backend_pid]
        assert legacy_row.datname == "legacy_ascii"
        assert legacy_row.query == "select pg_sleep(300) /* caf\ufffd \ufffd */"
        assert rows[other.info.backend_pid].application_name == "ordinary-neighbour"
        assert all(isinstance(r.query, str | None) and isinstance(r.usename, str | None) for r in result.rows)
    finally:
        await admin.execute("SELECT pg_cancel_backend(%s)", (legacy.info.backend_pid,))
        await asyncio.gather(sleeper, return_exceptions=True)
        for c in (legacy, other, admin):
            await c.close()
        await monitor.close()
