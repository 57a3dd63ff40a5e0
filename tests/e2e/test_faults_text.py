"""Fault matrix, text side (issue 10 item 3): what other sessions put in pg_stat_activity never stops a round.

On the stand-in's writer: a session of a SQL_ASCII database whose query holds bytes that are not UTF-8, a
1 MB query, and hostile text (terminal escapes, markup, bidi overrides) in the query and application_name.
Every session of the instance stays, that text arrives decodable, and JSON output carries it escaped.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
from pgiam_sandbox import Sandbox

from helpers.faults import Snapshots
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config, load_config
from pgiam_tui.jsonout import snapshot_to_json
from pgiam_tui.monitor import Monitor

NON_UTF8 = b"select pg_sleep(300) /* caf\xe9 \xff */"
HOSTILE_QUERY = "SELECT pg_sleep(300) /* \x1b]0;owned\x07 \x1b[31mred [bold]x[/] \u202eevil */"
HOSTILE_APP = "app\x1b[2J[red]"


async def _sleeper(dsn: str, query: Any, app: str | None = None) -> tuple[psycopg.AsyncConnection[Any], Any]:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    if app is not None:
        await conn.execute("SELECT set_config('application_name', %s, false)", (app,))
    return conn, asyncio.create_task(conn.execute(query))


async def test_undecodable_huge_and_hostile_text_keep_every_session(sandbox: Sandbox, tmp_path: Path) -> None:
    cluster = next(c for c in sandbox.clusters if c.kind == "aurora")
    writer = cluster.writer
    assert writer is not None
    admin_dsn = sandbox.admin_dsn(cluster.name, writer.id)
    admin = await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True)
    cur = await admin.execute("SELECT count(*) FROM pg_database WHERE datname = 'legacy_ascii'")
    if (await cur.fetchone()) == (0,):
        await admin.execute(
            "CREATE DATABASE legacy_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    legacy_dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname="legacy_ascii")
    huge = "SELECT pg_sleep(300) /* " + "x" * 1_000_000 + " */"
    sessions = [
        await _sleeper(legacy_dsn, NON_UTF8),
        await _sleeper(admin_dsn, huge, "huge-query"),
        await _sleeper(admin_dsn, HOSTILE_QUERY, HOSTILE_APP),
    ]
    pids = [c.info.backend_pid for c, _ in sessions]
    config = load_config(sandbox.profiles_toml)
    chosen = Config(path=config.path, clusters=(config.cluster(cluster.name),))
    seen = Snapshots()
    monitor = Monitor(chosen, SessionFactory(cache_dir=tmp_path / "cli-cache"), seen, collect_iam=False)
    monitor.set_interval(cluster.name, 0.5)
    await monitor.start()
    try:
        snap = await seen.wait(lambda s: s.status == "ok" and set(pids) <= {r.pid for r in s.activity})
        rows = {r.pid: r for r in snap.activity}
        assert rows[pids[0]].query == "select pg_sleep(300) /* caf\ufffd \ufffd */"
        assert rows[pids[1]].query_truncated and rows[pids[1]].query is not None
        assert str(rows[pids[1]].query).startswith("SELECT pg_sleep(300) /* xxx")
        assert rows[pids[2]].query == HOSTILE_QUERY  # the model keeps what the server said
        assert any(r.usename == "oltp_rw_user" for r in snap.activity)  # the workload's sessions stay
        text = json.dumps(snapshot_to_json([snap]), ensure_ascii=True)
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        # and it keeps going: two more rounds with the same sessions
        mark = seen.mark()
        for _ in range(2):
            await seen.wait(lambda s: s.status == "ok" and pids[0] in {r.pid for r in s.activity}, after=mark)
            mark = seen.mark()
    finally:
        await monitor.stop()
        for pid in pids:
            await admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        for conn, task in sessions:
            await asyncio.gather(task, return_exceptions=True)
            await conn.close()
        await admin.close()
