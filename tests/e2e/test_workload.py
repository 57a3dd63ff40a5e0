"""The sandbox workload: its SQL sessions on real PostgreSQL servers, and its IAM path through the sandbox.

The first tests connect straight to LocalPostgres unix sockets (``connect`` override), so they need no front
door; the last ones use the session sandbox (tests/conftest.py), whose own Workload logs in with IAM tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres
from pgiam_sandbox.workload import Workload
from pgiam_sandbox.workload_targets import WorkloadTarget, garble_token, targets_from_sandbox

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

# Generous: the suite shares 2 cores with many PostgreSQL servers. Waiting ends as soon as the state is seen.
WAIT = 60.0


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last probe: {last!r}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalPostgres]]:
    root = tmp_path_factory.mktemp("workload")
    template = LocalPostgres.init_template(root / "_template")
    made = {
        "writer": LocalPostgres.clone(template, root / "w"),
        "reader": LocalPostgres.clone(template, root / "r", read_only=True),
    }
    try:
        for server in made.values():
            server.start()
        yield made
    finally:
        for server in made.values():
            server.cleanup()
        template.cleanup()


def _targets() -> list[WorkloadTarget]:
    common: dict[str, Any] = {"cluster": "c1", "kind": "aurora", "port": 5432, "region": "us-east-1"}
    common.update(listen_host="127.0.0.1", listen_port=0, ca_path="/nonexistent")
    return [
        WorkloadTarget(role="writer", instance_id="c1-writer", endpoint="c1.cluster-x", **common),
        WorkloadTarget(role="reader", instance_id="c1-reader", endpoint="c1.cluster-ro-x", **common),
    ]


def _activity(server: LocalPostgres) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        return conn.execute(
            """SELECT pid, usename, application_name, state, query, pg_blocking_pids(pid)
                 FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""
        ).fetchall()


def _blocked_behind(rows: list[tuple[Any, ...]], holder: int, blockers_col: int) -> list[int]:
    """Pids waiting on ``holder`` directly or through another waiter (the second UPDATE queues behind the
    first one's tuple lock, so pg_blocking_pids names the first waiter, not the holder)."""
    waiting_on = {r[0]: set(r[blockers_col]) for r in rows}
    chain, grew = {holder}, True
    while grew:
        grew = False
        for pid, blockers in waiting_on.items():
            if pid not in chain and blockers & chain:
                chain.add(pid)
                grew = True
    return sorted(chain - {holder})


def _lock_picture(server: LocalPostgres) -> tuple[int, list[int]] | None:
    """(lock holder pid, pids blocked behind it) once the holder is idle in transaction with two waiters."""
    rows = _activity(server)
    holders = [r for r in rows if r[2] == "lock-holder" and r[3] == "idle in transaction"]
    if len(holders) != 1:
        return None
    blocked = _blocked_behind(rows, holders[0][0], 5)
    return (holders[0][0], blocked) if len(blocked) == 2 else None


@pytest.fixture()
def direct_workload(servers: dict[str, LocalPostgres]) -> Iterator[Workload]:
    def connect(target: WorkloadTarget, user: str, app: str) -> psycopg.Connection[Any]:
        server = servers["reader" if target.role == "reader" else "writer"]
        return psycopg.connect(server.dsn(user=user), application_name=app)

    workload = Workload(_targets(), connect=connect, failed_logins=False, oltp_interval=0.2)
    workload.start()
    try:
        yield workload
    finally:
        workload.stop()


def test_sessions_locks_and_long_query(direct_workload: Workload, servers: dict[str, LocalPostgres]) -> None:
    writer, reader = servers["writer"], servers["reader"]
    holder, blocked = wait_for("a lock holder with two blocked sessions", lambda: _lock_picture(writer))
    rows = {r[0]: r for r in _activity(writer)}
    assert rows[holder][1] == "oltp_rw_user"
    assert rows[holder][4] == "UPDATE pgdemo.products SET price = price WHERE product_no = 1"
    assert all(rows[p][3] == "active" and rows[p][4].startswith("UPDATE pgdemo.products") for p in blocked)

    report = wait_for(
        "the report job on the reader",
        lambda: [r for r in _activity(reader) if r[2] == "report-job" and r[3] == "active"],
    )
    assert report[0][1] == "oltp_ro_user" and "pg_sleep(600" in report[0][4]
    wait_for("OLTP commits and reads", lambda: direct_workload.stats().get("oltp_commits", 0) >= 2
             and direct_workload.stats().get("reads", 0) >= 2)  # fmt: skip

    # Killed sessions come back: the lock holder (its waiters then block behind the new one) and the report.
    with psycopg.connect(writer.admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (holder,))
    new_holder, _ = wait_for(
        "a new lock holder", lambda: (p := _lock_picture(writer)) is not None and p[0] != holder and p
    )
    assert new_holder != holder
    with psycopg.connect(reader.admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (report[0][0],))
    wait_for(
        "a new report job",
        lambda: [
            r for r in _activity(reader) if r[2] == "report-job" and r[3] == "active" and r[0] != report[0][0]
        ],
    )
    assert direct_workload.stats()["lock_acquired"] >= 2


def test_stop_is_prompt_and_leaves_the_seed_intact(servers: dict[str, LocalPostgres]) -> None:
    def connect(target: WorkloadTarget, user: str, app: str) -> psycopg.Connection[Any]:
        server = servers["reader" if target.role == "reader" else "writer"]
        return psycopg.connect(server.dsn(user=user), application_name=app)

    workload = Workload(_targets(), connect=connect, failed_logins=False, oltp_interval=0.1)
    workload.start()
    try:
        wait_for("the lock picture", lambda: _lock_picture(servers["writer"]))
        wait_for("a long query", lambda: workload.stats().get("long_queries", 0) >= 1)
        wait_for("some commits", lambda: workload.stats().get("oltp_commits", 0) >= 3)
    finally:
        workload.stop()
    # stop() waits at most stop_timeout (1.8 s): any session still running then would be listed here.
    assert workload.alive_threads() == []
    assert workload.recent_errors() == []
    wait_for(
        "the workload's sessions to leave",
        lambda: not _activity(servers["writer"]) and not _activity(servers["reader"]),
    )
    with psycopg.connect(servers["writer"].admin_dsn) as conn:
        assert conn.execute("SELECT count(*), max(order_id) FROM pgdemo.orders").fetchone() == (20, 20)
        prices = conn.execute("SELECT product_no, price FROM pgdemo.products ORDER BY 1").fetchall()
        assert [(p, int(v)) for p, v in prices] == [(1, 1000), (2, 800), (3, 500), (4, 800), (5, 300)]


def test_connection_errors_back_off_and_are_recorded(tmp_path: Path) -> None:
    calls: list[float] = []

    def connect(target: WorkloadTarget, user: str, app: str) -> psycopg.Connection[Any]:
        calls.append(time.monotonic())
        raise psycopg.OperationalError("connection refused (cluster stopped)")

    workload = Workload(_targets()[:1], connect=connect, failed_logins=False)
    workload.start()
    try:
        wait_for("recorded errors", lambda: len(workload.recent_errors()) >= 4)
    finally:
        workload.stop()
    assert workload.alive_threads() == []
    assert all("connection refused" in e for e in workload.recent_errors())


def test_garbled_token_stays_a_url_with_another_signature() -> None:
    token = "host:5432/?Action=connect&DBUser=u&X-Amz-Signature=abc123"
    bad = garble_token(token)
    assert bad != token and bad[:-1] == token[:-1] and len(bad) == len(token)


def test_needs_sessions_unless_told_how_to_connect() -> None:
    with pytest.raises(ValueError, match="session_for"):
        Workload(_targets())


# ------------------------------------------------------------------------------ through the sandbox


def test_sandbox_workload_over_iam(sandbox: Sandbox) -> None:
    """The sandbox's own workload logs in with IAM tokens through the front doors and fails on purpose."""
    workload = sandbox._workload  # the instance Sandbox.start() made
    assert isinstance(workload, Workload)
    names = {t.cluster for t in workload.targets}
    assert names == {c.name for c in sandbox.clusters}
    aurora = next(c for c in sandbox.clusters if c.kind == "aurora")

    def picture() -> Any:
        with psycopg.connect(sandbox.admin_dsn(aurora.name), autocommit=True) as conn:
            rows = conn.execute(
                """SELECT pid, usename, application_name, state, pg_blocking_pids(pid)
                     FROM pg_stat_activity WHERE backend_type = 'client backend'"""
            ).fetchall()
        holders = [r[0] for r in rows if r[2] == "lock-holder" and r[3] == "idle in transaction"]
        blocked = _blocked_behind(rows, holders[0], 4) if holders else []
        users = {r[1] for r in rows}
        return len(holders) == 1 and len(blocked) == 2 and "oltp_rw_user" in users and rows

    rows = wait_for("IAM sessions and the lock picture on the writer", picture)
    holder = next(r[0] for r in rows if r[2] == "lock-holder")
    # Killed through the front door's relay: the workload logs in again with a fresh token.
    with psycopg.connect(sandbox.admin_dsn(aurora.name), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (holder,))
    wait_for(
        "a new lock holder after the kill",
        lambda: (rows := picture()) and any(r[2] == "lock-holder" and r[0] != holder for r in rows),
    )
    wait_for("failed IAM logins", lambda: workload.stats().get("failed_logins", 0) >= 2, timeout=90)
    wait_for(
        "OLTP over IAM",
        lambda: workload.stats().get("oltp_commits", 0) >= 1 and workload.stats().get("reads", 0) >= 1,
    )
    stats = workload.stats()
    assert stats.get("failed_login_unexpected_success", 0) == 0
    # Both kinds of mistake reach the front door and are refused there for their own reason.
    assert stats.get("failed_logins_wrong-role", 0) >= 1
    wait_for(
        "a garbled-token login", lambda: workload.stats().get("failed_logins_garbled", 0) >= 1, timeout=90
    )
    diagnostics = sandbox.diagnostic_log.read_text()
    assert "code=NotAuthorized" in diagnostics and "pgdemo-oltp-ro-role" in diagnostics
    assert "code=InvalidToken" in diagnostics
    log_text = Path(aurora.log_file).read_text()
    assert 'PAM authentication failed for user "oltp_rw_user"' in log_text


def test_targets_from_sandbox_use_cluster_and_reader_endpoints(sandbox: Sandbox) -> None:
    targets = targets_from_sandbox(sandbox)
    assert {c.kind for c in sandbox.clusters} == {"aurora", "instance"}  # else the loop checks too little
    assert len(targets) == sum(2 if c.kind == "aurora" else 1 for c in sandbox.clusters)
    for c in sandbox.clusters:
        mine = [t for t in targets if t.cluster == c.name]
        writer = next(t for t in mine if t.role in ("writer", "instance"))
        assert (writer.endpoint, writer.listen_port, writer.port) == (c.endpoint, c.listen_port, 5432)
        if c.kind == "aurora":
            reader = next(t for t in mine if t.role == "reader")
            assert (reader.endpoint, reader.listen_port) == (c.reader_endpoint, c.reader_listen_port)
