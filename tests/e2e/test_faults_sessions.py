"""Fault matrix: 1,500 sessions on one server (issue 10 item 3), on the stand-in's PostgreSQL.

1,500 idle client sessions (the sandbox's own IdleSessions, as `sandbox up --sessions` opens them) on one
server watched with a short interval: every round has them all, the rounds keep coming, nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox.idle_sessions import IdleSessions, headroom
from pgiam_sandbox.postgres import LocalPostgres

from helpers.faults import Snapshots, record_figure
from helpers.local_pg import password_cluster
from helpers.memory_keyring import MemoryKeyring, installed_keyring
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.monitor import Monitor

SESSIONS = 1500
MON_USER = "monitor_fleet"
MON_PASSWORD = "fleet-Secret-77"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A server holding SESSIONS idle sessions, with a password login in pg_monitor."""
    root = tmp_path_factory.mktemp("crowded")
    template = LocalPostgres.init_template(root / "template")
    server = LocalPostgres.clone(template, root / "server")
    server.max_connections = headroom(SESSIONS)
    idle = IdleSessions()
    try:
        server.start()
        with psycopg.connect(server.admin_dsn, autocommit=True) as c:
            c.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor").format(
                    psycopg.sql.Identifier(MON_USER), psycopg.sql.Literal(MON_PASSWORD)
                )
            )
        idle.open(f"{server.socket_dir}/.s.PGSQL.{server.port}", SESSIONS)
        yield server
    finally:
        idle.close()
        server.cleanup()
        template.cleanup()


async def test_fifteen_hundred_sessions_on_one_server(crowded: LocalPostgres, tmp_path: Path) -> None:
    cfg = password_cluster("crowded", crowded.port, MON_USER)
    config = Config(path=None, clusters=(replace(cfg, refresh_s=0.5),))
    seen = Snapshots()
    with installed_keyring(MemoryKeyring()) as ring:
        ring.set_password("pgiam-tui", "crowded", MON_PASSWORD)
        monitor = Monitor(config, SessionFactory(cache_dir=tmp_path / "cache"), seen, collect_iam=False)
        await monitor.start()
        try:

            def full(snap: ClusterSnapshot) -> bool:
                idle = sum(1 for r in snap.activity if r.application_name == "idle-app")
                return snap.status == "ok" and idle >= SESSIONS

            mark = 0
            for _ in range(3):  # three rounds in a row with every session
                await seen.wait(full, after=mark)
                mark = seen.mark()
        finally:
            await monitor.stop()
    rounds = [s.round_ms for s in seen.all if s.round_ms is not None and s.status == "ok"]
    assert rounds and all(s.status == "ok" for s in seen.all)
    record_figure("1,500 sessions on one server", round_ms_max=round(max(rounds)), rounds=len(rounds))
