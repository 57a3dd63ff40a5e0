"""LocalPostgres and seed.sql against real PostgreSQL servers (system binaries and the pgserver wheel's)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox import pg_host, postgres
from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.postgres import LocalPostgres, find_pg_bindir, seed_statements

IS_ROOT = os.geteuid() == 0


def _proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def _wait_until(condition: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Wait for CONDITION (polled), failing after a generous deadline: a condition, never a fixed sleep."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    tpl = LocalPostgres.init_template(tmp_path_factory.mktemp("pgtpl") / "_template")
    yield tpl
    tpl.cleanup()


@pytest.fixture(scope="module")
def writer(template: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    server = LocalPostgres.clone(template, tmp_path_factory.mktemp("pgw") / "writer")
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def reader(template: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    server = LocalPostgres.clone(template, tmp_path_factory.mktemp("pgr") / "reader", read_only=True)
    server.start()
    yield server
    server.cleanup()


# ------------------------------------------------------------------------------------------ binaries


def test_find_pg_bindir_prefers_explicit_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = find_pg_bindir()
    assert (system / "initdb").exists()
    monkeypatch.setenv("PGIAM_PG_BINDIR", str(system))
    assert find_pg_bindir() == system
    with pytest.raises(SandboxError, match="PGIAM_PG_BINDIR") as err:
        monkeypatch.setenv("PGIAM_PG_BINDIR", str(tmp_path))
        find_pg_bindir()
    assert "\n" not in str(err.value)
    with pytest.raises(SandboxError, match="--pg-bindir"):
        find_pg_bindir(str(tmp_path))


def test_find_pg_bindir_falls_back_to_pgserver_then_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PGIAM_PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_config
    monkeypatch.setattr(pg_host, "SYSTEM_PG_ROOT", tmp_path)  # no /usr/lib/postgresql/*/bin
    wheel = find_pg_bindir()
    assert wheel.parts[-3:] == ("pgserver", "pginstall", "bin")
    monkeypatch.setattr(pg_host, "pgserver_bindir", lambda: None)
    with pytest.raises(SandboxError) as err:
        find_pg_bindir()
    assert str(err.value) == "no PostgreSQL binaries found: set PGIAM_PG_BINDIR or install postgresql"


def test_newest_system_version_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "10"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for prog in ("initdb", "postgres"):
            (bindir / prog).write_text("#!/bin/sh\n")
            (bindir / prog).chmod(0o755)
    monkeypatch.delenv("PGIAM_PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(pg_host, "SYSTEM_PG_ROOT", tmp_path)
    assert find_pg_bindir() == tmp_path / "15" / "bin"


def test_seed_statements_split_on_statements_dollar_blocks_and_connect() -> None:
    script = textwrap.dedent(
        """\
        -- comment
        CREATE ROLE a;
        CREATE TABLE t (
            x int
        );
        \\connect demo
        DO $$
        BEGIN
            PERFORM 1;
        END
        $$;
        SELECT 1;
        """
    )
    parts = seed_statements(script)
    assert [db for db, _ in parts] == [None, None, "demo", "demo"]
    assert parts[1][1].startswith("CREATE TABLE t (") and parts[1][1].endswith(");")
    assert "PERFORM 1;" in parts[2][1] and parts[2][1].endswith("$$;")


# ---------------------------------------------------------------------------------------- the scenario


def test_seeded_scenario(writer: LocalPostgres) -> None:
    with psycopg.connect(writer.admin_dsn) as conn:
        products = conn.execute("SELECT product_no, name, price FROM pgdemo.products ORDER BY 1").fetchall()
        assert [(p, n, int(v)) for p, n, v in products] == [
            (1, "Apple", 1000),
            (2, "Samsung", 800),
            (3, "Lenovo", 500),
            (4, "Oneplus", 800),
            (5, "Xiaomi", 300),
        ]
        orders = conn.execute("SELECT count(*), min(order_id), max(order_id) FROM pgdemo.orders").fetchone()
        assert orders == (20, 1, 20)
        members: dict[str, list[str]] = dict(
            conn.execute(
                """SELECT r.rolname, array_agg(g.rolname ORDER BY g.rolname)
                     FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid
                     JOIN pg_roles g ON g.oid = m.roleid
                    WHERE r.rolname IN ('oltp_ro_user', 'oltp_rw_user', 'pgmonitor', 'app_password_user')
                    GROUP BY r.rolname"""
            ).fetchall()
        )
        assert members == {
            "oltp_ro_user": ["oltp_ro_role", "rds_iam"],
            "oltp_rw_user": ["oltp_rw_role", "rds_iam"],
            "pgmonitor": ["pg_monitor", "pg_signal_backend", "rds_iam"],  # signal: the demo may cancel
            "app_password_user": ["oltp_ro_role"],
        }
        names = ["rds_iam", "oltp_%", "pgmonitor", "sandbox_admin"]
        login: dict[str, bool] = dict(
            conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE ANY(%s)", (names,)
            ).fetchall()
        )
        assert login == {
            "rds_iam": False,
            "oltp_ro_role": False,
            "oltp_rw_role": False,
            "oltp_ro_user": True,
            "oltp_rw_user": True,
            "pgmonitor": True,
            "sandbox_admin": True,
        }
        for user in ("oltp_ro_user", "oltp_rw_user", "pgmonitor", "app_password_user"):
            row = conn.execute("SELECT has_database_privilege(%s, 'demo', 'CONNECT')", (user,)).fetchone()
            assert row == (True,), user


def test_settings_and_pg_stat_statements(writer: LocalPostgres) -> None:
    with psycopg.connect(writer.admin_dsn) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (["listen_addresses", "log_connections", "log_disconnections", "log_line_prefix",
                  "password_encryption", "compute_query_id", "track_activity_query_size",
                  "default_transaction_read_only", "logging_collector", "max_connections"],),
            ).fetchall()
        )  # fmt: skip
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "log_connections": "on",
            "log_disconnections": "on",
            "log_line_prefix": "%t:%r:%u@%d:[%p]:",
            "password_encryption": "scram-sha-256",
            "compute_query_id": "on",
            "track_activity_query_size": "4096",
            "default_transaction_read_only": "off",
            "logging_collector": "off",
            "max_connections": "60",
        }
        assert postgres.has_pg_stat_statements(writer.bindir)  # Debian's PostgreSQL ships it
        conn.execute("SELECT 42 AS pgss_probe")
        row = conn.execute("SELECT count(*) FROM pg_stat_statements WHERE query LIKE %s", ("%pgss_probe%",))
        assert row.fetchone() == (1,)


def test_privileges_of_scenario_users(writer: LocalPostgres) -> None:
    # Over the unix socket (trust), as the front door connects after verifying a token.
    with psycopg.connect(writer.dsn(user="oltp_rw_user"), autocommit=True) as conn:
        conn.execute("BEGIN")
        row = conn.execute(
            "INSERT INTO pgdemo.orders (product_no, quantity, order_date) VALUES (2, 1, now())"
            " RETURNING order_id"
        ).fetchone()
        assert row is not None and row[0] > 20  # the sequence starts after the seeded ids
        conn.execute("ROLLBACK")
    with psycopg.connect(writer.dsn(user="oltp_ro_user")) as conn:
        assert conn.execute("SELECT count(*) FROM pgdemo.products").fetchone() == (5,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO pgdemo.products VALUES (7, 'x', 1)")
    with psycopg.connect(writer.dsn(user="pgmonitor")) as conn:
        texts = conn.execute("SELECT query FROM pg_stat_activity WHERE backend_type = 'client backend'")
        assert all(q != "<insufficient privilege>" for (q,) in texts.fetchall())


def test_tcp_requires_scram_password(writer: LocalPostgres) -> None:
    with psycopg.connect(writer.tcp_dsn()) as conn:
        assert conn.execute("SELECT current_user, inet_server_port()").fetchone() == (
            "sandbox_admin",
            writer.port,
        )
    dsn = writer.tcp_dsn(user="app_password_user", password="app-password")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pgdemo.orders").fetchone() == (20,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(writer.tcp_dsn(password="wrong"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(writer.tcp_dsn(user="pgmonitor", password="a-token?"))


def test_reader_is_read_only_but_admin_can_write(reader: LocalPostgres) -> None:
    with psycopg.connect(reader.dsn(user="oltp_rw_user")) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE pgdemo.products SET price = price WHERE product_no = 2")
    # Admin SQL is applied to every instance (Aurora shares its catalog): the admin DSN lifts read-only.
    with psycopg.connect(reader.admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader_probe_role")
        conn.execute("DROP ROLE reader_probe_role")


def test_log_has_rds_prefix_and_connection_lines(writer: LocalPostgres) -> None:
    with psycopg.connect(writer.dsn(user="pgmonitor")) as conn:
        pid = conn.info.backend_pid
    text = writer.log_file.read_text()
    assert (
        f"UTC:[local]:pgmonitor@demo:[{pid}]:LOG:  connection authorized: user=pgmonitor database=demo"
        in text
    )
    assert f":pgmonitor@demo:[{pid}]:LOG:  disconnection: session time:" in text or _eventually_logged(
        writer, pid
    )


def _eventually_logged(server: LocalPostgres, pid: int) -> bool:
    # The backend writes its disconnection line while exiting, just after the client has gone.
    import time

    for _ in range(200):
        if f"[{pid}]:LOG:  disconnection:" in server.log_file.read_text():
            return True
        time.sleep(0.02)
    return False


# ------------------------------------------------------------------------------------------ lifecycle


def test_server_never_runs_as_root(writer: LocalPostgres) -> None:
    assert writer.pid is not None
    uid = _proc_uid(writer.pid)
    assert uid != 0
    assert uid == os.geteuid() or IS_ROOT


def test_restart_keeps_port_and_data_and_stop_leaves_nothing(template: LocalPostgres, tmp_path: Path) -> None:
    server = LocalPostgres.clone(template, tmp_path / "restart")
    try:
        server.start()
        port, pid = server.port, server.pid
        assert pid is not None
        with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO pgdemo.products VALUES (6, 'Nokia', 600)")
        server.stop()
        assert not server.is_running and server.pid is None and not _alive(pid)
        assert not (server.socket_dir / f".s.PGSQL.{port}").exists()
        server.start()
        assert server.port == port and server.pid != pid
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT name FROM pgdemo.products WHERE product_no = 6").fetchone() == (
                "Nokia",
            )
        server.stop()
        server.stop()  # idempotent
    finally:
        server.cleanup()
    if server.data_dir != server.requested_dir:
        # The data lived in memory or /tmp: cleanup removed it and the symlink pointing at it.
        assert not server.data_dir.parent.exists()
        assert not server.requested_dir.is_symlink()


def test_data_placement(template: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_memory = pg_host.memory_base()
    server = LocalPostgres.clone(template, tmp_path / "placed")
    try:
        if in_memory is not None:
            assert server.data_dir.is_relative_to(in_memory)
            assert (tmp_path / "placed").resolve() == server.data_dir
    finally:
        server.cleanup()
    monkeypatch.setenv("PGIAM_SANDBOX_PG_ON_DISK", "1")
    assert pg_host.memory_base() is None
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = LocalPostgres.clone(template, private / "srv")
    try:
        if IS_ROOT:  # the unprivileged server user cannot enter a 0700 root-owned dir: data goes to /tmp
            assert (private / "srv").is_symlink()
            assert server.data_dir.parent.name.startswith("pgiam-pg-")
            assert server.data_dir.stat().st_uid != 0
        else:
            assert server.data_dir == private / "srv"
        server.start()
        assert server.is_running
    finally:
        server.cleanup()
    assert not (private / "srv").is_symlink()


def test_stop_kills_a_server_that_ignores_shutdown(template: LocalPostgres, tmp_path: Path) -> None:
    server = LocalPostgres.clone(template, tmp_path / "frozen")
    try:
        server.start()
        pid = server.pid
        assert pid is not None
        segments = pg_host.posix_shm_segments(pid)
        assert segments  # dynamic shared memory (posix): what a SIGKILL would leak
        os.kill(pid, signal.SIGSTOP)  # a hung postmaster: SIGINT stays pending
        server.stop(timeout=0.5)
        assert not _alive(pid)
        assert not any(seg.exists() for seg in segments)
        server.start()  # the stale postmaster.pid and socket must not get in the way
        assert server.is_running
    finally:
        server.cleanup()


def test_busy_port_is_a_one_line_error(template: LocalPostgres, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        server = LocalPostgres.clone(template, tmp_path / "busy", port=busy)
        try:
            with pytest.raises(SandboxError) as err:
                server.start()
            assert "address already in use" in str(err.value) and "\n" not in str(err.value)
            assert not server.is_running
        finally:
            server.cleanup()


def test_refuses_second_postmaster_on_same_data(template: LocalPostgres, writer: LocalPostgres) -> None:
    intruder = LocalPostgres(writer.data_dir, bindir=writer.bindir)
    with pytest.raises(SandboxError, match="already running"):
        intruder.start()
    with pytest.raises(SandboxError, match="still running"):
        LocalPostgres.clone(template, writer.requested_dir)  # would replace a live server's data
    assert writer.is_running


def test_long_paths_get_a_short_socket_dir(template: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGIAM_SANDBOX_PG_ON_DISK", "1")
    # A world-searchable base, so the data really lives at the long path even when root.
    base = Path(tempfile.mkdtemp(prefix="pgiam-test-long-"))
    base.chmod(0o755)
    deep = base / ("d" * 50) / ("e" * 50) / "srv"
    try:
        server = LocalPostgres.clone(template, deep)
        try:
            assert server.data_dir == deep and len(str(deep)) > 100
            server.start()
            assert len(str(server.socket_dir)) < 40
            with psycopg.connect(server.admin_dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            socket_dir = server.socket_dir
        finally:
            server.cleanup()
        assert not socket_dir.exists()
    finally:
        shutil.rmtree(base)


def test_pgserver_binaries_work(tmp_path: Path) -> None:
    wheel = pg_host.pgserver_bindir()
    assert wheel is not None
    tpl = LocalPostgres.init_template(tmp_path / "tpl16", bindir=wheel)
    server = LocalPostgres.clone(tpl, tmp_path / "srv16")
    try:
        server.start()
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM pgdemo.orders").fetchone() == (20,)
            assert conn.info.server_version >= 160000
            # The wheel has no pg_stat_statements: seeding skipped it instead of failing.
            ext = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")
            assert ext.fetchone() == (0,)
    finally:
        server.cleanup()
        tpl.cleanup()


def _interpreter_for(user: pg_host.RunAs, home: Path) -> tuple[str, dict[str, str]]:
    """A Python the unprivileged user can run, with this venv's packages and our sources importable.

    The venv's interpreter may live under /root (pyenv), which that user cannot reach: then use the system
    Python of the same version with the venv's site-packages on PYTHONPATH.
    """
    import sysconfig

    import pgiam_sandbox

    import pgiam_tui

    paths = [
        str(Path(pgiam_tui.__file__).parent.parent),
        str(Path(pgiam_sandbox.__file__).parent.parent),
        sysconfig.get_paths()["purelib"],
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": os.pathsep.join(paths)}
    env["PGIAM_SANDBOX_PG_ON_DISK"] = "1"  # exercise in-place data dirs (memory placement is tested above)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and pg_host.traversable_by(Path(candidate).parent, user):
            return candidate, env
    pytest.skip(f"no {version} interpreter reachable by {user.name}")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to switch to the unprivileged user")
def test_works_as_an_ordinary_user(tmp_path: Path) -> None:
    user = postgres.run_as()
    assert user is not None and user.uid != 0
    workdir = Path(pg_host.public_tmp_base()) / f"pgiam-test-nonroot-{os.getpid()}"
    workdir.mkdir()
    os.chown(workdir, user.uid, user.gid)
    script = textwrap.dedent(
        f"""\
        import os, psycopg
        from pathlib import Path
        from pgiam_sandbox.postgres import LocalPostgres, run_as
        assert os.geteuid() != 0 and run_as() is None
        root = Path({str(workdir)!r})
        tpl = LocalPostgres.init_template(root / "tpl")
        srv = LocalPostgres.clone(tpl, root / "srv", read_only=True)
        assert srv.data_dir == root / "srv"  # on disk (env), in place: this user owns root
        srv.start()
        with psycopg.connect(srv.dsn(user="oltp_ro_user")) as conn:
            print(conn.execute("select count(*) from pgdemo.products").fetchone()[0], srv.pid)
        srv.cleanup(); tpl.cleanup()
        print("ok", not srv.is_running)
        """
    )
    interpreter, env = _interpreter_for(user, workdir)
    try:
        done = subprocess.run(
            [interpreter, "-c", script],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        count, pid = done.stdout.splitlines()[0].split()
        assert count == "5" and not _alive(int(pid))
        assert done.stdout.splitlines()[1] == "ok True"
    finally:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the server to another user")
def test_binaries_in_a_private_dir_are_a_clear_error(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    for prog in ("initdb", "postgres"):
        (private / "bin" / prog).symlink_to(find_pg_bindir() / prog)
    with pytest.raises(SandboxError, match="not reachable by") as err:
        LocalPostgres.init_template(tmp_path / "tpl", bindir=private / "bin")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "tpl").exists()


def test_orphans_of_a_dead_sandbox_are_reaped(tmp_path: Path) -> None:
    # A process that starts a server and dies without cleanup (kill -9, CI timeout) ...
    script = textwrap.dedent(
        f"""\
        import os
        from pathlib import Path
        from pgiam_sandbox.postgres import LocalPostgres
        tpl = LocalPostgres.init_template(Path({str(tmp_path)!r}) / "tpl")
        srv = LocalPostgres.clone(tpl, Path({str(tmp_path)!r}) / "srv")
        srv.start()
        print(srv.pid, srv.data_dir, tpl.data_dir, flush=True)
        os._exit(0)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    pid_text, data_dir, template_dir = done.stdout.split()
    pid = int(pid_text)
    assert _alive(pid)
    bases = {Path(data_dir).parent, Path(template_dir).parent}
    try:
        # ... leaves a running server; the next sandbox's reaper stops it and frees its directories. That next
        # sandbox may be ours or one of another test run on this machine (a second `make test`, whose every
        # template reaps first): either way it is this same code, and the outcome is what counts.
        postgres.reap_orphans()
        _wait_until(lambda: not _alive(pid) and not any(b.exists() for b in bases), "the orphan reaped")
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    # A live owner's directories are left alone.
    server = LocalPostgres.init_template(tmp_path / "mine")
    try:
        if server.data_dir != server.requested_dir:
            assert server.data_dir.parent not in postgres.reap_orphans()
            assert server.data_dir.exists()
    finally:
        server.cleanup()


def test_a_killed_server_is_collected_and_starts_again(template: LocalPostgres, tmp_path: Path) -> None:
    """Issue 10: a killed postmaster stayed a zombie, its children held its shared memory and its stale
    postmaster.pid blocked a restart. reap() collects it and clears all that; start() then works at once."""
    server = LocalPostgres.clone(template, tmp_path / "killed")
    try:
        server.start()
        port, postmaster = server.port, server.pid
        assert postmaster is not None
        client = psycopg.connect(server.admin_dsn, autocommit=True)  # a backend that outlives its postmaster
        backend = int(client.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        pids = server.processes()
        assert pids[0] == postmaster and backend in pids
        os.kill(backend, signal.SIGSTOP)  # stalled: it cannot notice its postmaster's death by itself
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not server.reap():
            assert time.monotonic() < deadline, "reap() never saw the dead postmaster"
            time.sleep(0.05)
        client.close()
        assert not _alive(postmaster) and not _alive(backend)
        assert not Path(f"/proc/{postmaster}").exists()  # collected: no zombie left
        assert server.processes() == []
        assert not (server.data_dir / "postmaster.pid").exists()
        assert not server.reap()  # nothing more to collect
        server.start()
        assert server.port == port
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.cleanup()
