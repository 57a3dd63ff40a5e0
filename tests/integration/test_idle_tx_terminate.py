"""`X` on a real PostgreSQL: the console (real Monitor, Pilot) terminates the sessions idle in transaction it
listed once the DBA says yes, leaves them alone on no, and leaves alone a session that moved on meanwhile.

The sessions are real: psycopg connections of an application role, each left idle in an open transaction.
The monitoring role has only pg_monitor and pg_signal_backend, as on RDS (no superuser).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres
from psycopg import sql

from helpers.aws_env import only_these_aws_files
from helpers.local_pg import password_cluster, running_postgres
from helpers.memory_keyring import MemoryKeyring, installed_keyring
from helpers.pilot import wait_for
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.idle_tx import IdleTxScreen
from pgiam_tui.ui.source import MonitorSource

pytestmark = pytest.mark.timeout(300)
MON_USER, MON_PASSWORD = "dba_watch", "watch-Secret-42"
APP_USER = "app_writer"
CLUSTER = "local-pg"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with running_postgres(tmp_path_factory.mktemp("idle-tx")) as pg:
        with psycopg.connect(pg.admin_dsn, autocommit=True) as c:
            c.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor, pg_signal_backend").format(
                    sql.Identifier(MON_USER), sql.Literal(MON_PASSWORD)
                )
            )
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_USER)))
        yield pg


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS around this server: no instance metadata to wait for, no profiles of the machine's user."""
    (tmp_path / "aws-config").write_text("")
    only_these_aws_files(monkeypatch, tmp_path / "aws-config", tmp_path / "aws-config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _app(server: LocalPostgres, tmp_path: Path) -> PgiamApp:
    cfg = password_cluster(CLUSTER, server.port, MON_USER, allow_actions=True, refresh_s=0.5)
    source = MonitorSource(
        Config(path=None, clusters=(cfg,)),
        SessionFactory(cache_dir=tmp_path / "cache"),
        monitor_options={"collect_events": False, "collect_iam": False},
    )
    app = PgiamApp(source, (cfg,))
    app.idle_tx_threshold_s = 0.0  # every session idle in transaction (the ages here are seconds)
    return app


def _idle_in_transaction(server: LocalPostgres, count: int) -> list[psycopg.Connection[tuple[object, ...]]]:
    conns = []
    for _ in range(count):
        conn = psycopg.connect(server.dsn(user=APP_USER), application_name="idle-tx-test")
        conn.execute("SELECT 1")  # opens a transaction and leaves it open: idle in transaction
        conns.append(conn)
    return conns


def _pid(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    return conn.info.backend_pid


def _states(server: LocalPostgres) -> dict[int, str]:
    """State of every backend of APP_USER, as the server sees it now."""
    with psycopg.connect(server.admin_dsn, autocommit=True) as c:
        rows = c.execute("SELECT pid, state FROM pg_stat_activity WHERE usename = %s", (APP_USER,)).fetchall()
    return {int(pid): str(state) for pid, state in rows}


async def test_x_terminates_the_listed_sessions_on_yes_and_none_on_no(
    server: LocalPostgres, tmp_path: Path
) -> None:
    stuck = _idle_in_transaction(server, 3)
    idle = psycopg.connect(server.dsn(user=APP_USER), autocommit=True)
    idle.execute("SELECT 1")  # plain idle: no transaction
    pids = [_pid(c) for c in stuck]
    app = _app(server, tmp_path)
    try:
        with installed_keyring(MemoryKeyring()) as ring:
            ring.set_password("pgiam-tui", CLUSTER, MON_PASSWORD)
            async with app.run_test(size=(120, 40)) as pilot:

                def listed_idle_tx() -> set[int]:
                    snap = app.latest.get(CLUSTER)
                    rows = snap.activity if snap else ()
                    return {
                        r.pid for r in rows if r.state == "idle in transaction" and (r.duration_s or 0) > 0
                    }

                await wait_for(
                    pilot, "the three sessions idle in transaction", lambda: set(pids) <= listed_idle_tx()
                )

                # no: nothing happens to them
                await pilot.press("X")
                await wait_for(pilot, "the confirmation", lambda: isinstance(app.screen, IdleTxScreen))
                screen = app.screen
                assert isinstance(screen, IdleTxScreen)
                assert {r.pid for r in screen.sessions} == set(pids)  # not the plain idle one
                assert _pid(idle) not in {r.pid for r in screen.sessions}
                await pilot.press("n")
                await pilot.pause()
                await app.workers.wait_for_complete()
                states = _states(server)
                assert all(states.get(p) == "idle in transaction" for p in pids), states
                for conn in stuck:
                    conn.execute("SELECT 1")  # each still answers, in its same transaction

                # yes: those listed go -- except one that committed while the question was on screen
                await pilot.press("X")
                await wait_for(pilot, "the confirmation", lambda: isinstance(app.screen, IdleTxScreen))
                assert {r.pid for r in app.screen.sessions} == set(pids)  # type: ignore[attr-defined]
                moved_on = stuck[2]
                moved_on.commit()
                await pilot.press("y")
                await pilot.pause()
                await app.workers.wait_for_complete()

                def gone() -> bool:
                    states = _states(server)
                    return pids[0] not in states and pids[1] not in states

                await wait_for(pilot, "the two idle-in-transaction sessions gone", gone)
                states = _states(server)
                assert states.get(pids[2]) == "idle" and states.get(_pid(idle)) == "idle"
                notes = [str(n.message) for n in app._notifications]
                assert any(
                    f"{CLUSTER}: 2 idle-in-transaction sessions terminated, 1 left alone" in n for n in notes
                ), notes
                for conn in stuck[:2]:
                    with pytest.raises(psycopg.OperationalError):
                        conn.execute("SELECT 1")
                moved_on.execute("SELECT 1")  # untouched

                def recorded() -> bool:
                    snap = app.latest.get(CLUSTER)
                    messages = [e.message for e in snap.events] if snap else []
                    return sum(1 for m in messages if m.endswith(": done")) == 2 and any(
                        f"terminate backend {pids[2]}" in m and "left alone" in m for m in messages
                    )

                await wait_for(pilot, "the outcomes recorded as events of the cluster", recorded)
                await pilot.press("q")
    finally:
        for conn in [*stuck, idle]:
            conn.close()
