"""`pgiam-tui sandbox up` as a user runs it: `ready`, clean stop on SIGTERM, one-line errors, exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

CLI = [sys.executable, "-m", "pgiam_tui.cli"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "PGIAM_PG_BINDIR"):
        env.pop(name, None)
    return env


@contextlib.contextmanager
def _sandbox_up(directory: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run `sandbox up` (only the RDS for PostgreSQL instance: one server, quick) until `ready` or exit.

    Always stopped by the pid we hold.
    """
    # stderr to a file, not a pipe nobody reads (a full pipe would block the sandbox)
    errors = (directory.parent / f"{directory.name}.stderr").open("a")
    proc = subprocess.Popen(
        [*CLI, "sandbox", "up", "--dir", str(directory), "--clusters", "0", "--no-workload", *extra],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=_env(),
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line == "ready\n":
                break
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        errors.close()


def _stderr(directory: Path) -> str:
    return (directory.parent / f"{directory.name}.stderr").read_text()


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose (its parent may not have reaped it yet)
    with contextlib.suppress(FileNotFoundError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    return False


def _running_parts(directory: Path) -> tuple[list[int], list[int], list[Path]]:
    """(ports, postgres pids, real data dirs) of a running sandbox, read from what it wrote."""
    info = json.loads((directory / "sandbox.json").read_text())
    ports = [int(info["endpoint_url"].rsplit(":", 1)[1]), int(info["imds_url"].rsplit(":", 1)[1])]
    pids: list[int] = []
    data_dirs: list[Path] = []
    for c in info["clusters"]:
        ports.append(c["listen_port"])
        for inst in c["instances"]:
            ports += [inst["listen_port"], inst["pg_port"]]
            data_dir = (directory / "pg" / inst["id"]).resolve()
            data_dirs.append(data_dir)
            pids.append(int((data_dir / "postmaster.pid").read_text().split()[0]))
    return ports, pids, data_dirs


def test_sigterm_stops_everything_and_a_new_one_starts_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "sb"
    with _sandbox_up(directory) as (proc, lines):
        assert lines[-1:] == ["ready"], lines
        ports, pids, data_dirs = _running_parts(directory)
        assert all(_answers(p) for p in ports)
        assert all(_pid_alive(p) for p in pids)
        env_sh = (directory / "env.sh").read_text()
        assert "export AWS_ENDPOINT_URL=" in env_sh and (directory / "profiles.toml").is_file()
        aws_port, imds_port = ports[0], ports[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, _stderr(directory)
    assert not any(_answers(p) for p in ports)
    assert not any(_pid_alive(p) for p in pids)
    # data moved out of a private tmp dir for the unprivileged PostgreSQL user is removed at stop
    assert not any(d.exists() and not str(d).startswith(str(directory)) for d in data_dirs)

    # Same directory, same fixed ports: everything was released.
    with _sandbox_up(directory, "--aws-port", str(aws_port), "--imds-port", str(imds_port)) as (proc, lines):
        assert lines[-1:] == ["ready"], lines
        info = json.loads((directory / "sandbox.json").read_text())
        assert info["endpoint_url"] == f"http://127.0.0.1:{aws_port}"
        _, pids, _ = _running_parts(directory)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0, _stderr(directory)
    assert not any(_pid_alive(p) for p in pids)


def _run_bad(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run(
        [*CLI, "sandbox", "up", *args], capture_output=True, text=True, env=env or _env(), timeout=120
    )
    assert done.stdout.strip() == ""
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr.strip().splitlines()


def test_unwritable_dir_is_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, err = _run_bad(["--dir", str(blocker / "sub")])
    assert code == 2 and len(err) == 1
    assert str(blocker / "sub") in err[0]


def test_no_postgresql_binaries_is_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "no-bin"
    empty.mkdir()
    code, err = _run_bad(["--dir", str(tmp_path / "sb"), "--pg-bindir", str(empty)])
    assert code == 2 and len(err) == 1
    assert "PostgreSQL" in err[0]
    env = _env()
    env["PGIAM_PG_BINDIR"] = str(empty)
    code, err = _run_bad(["--dir", str(tmp_path / "sb")], env)
    assert code == 2 and len(err) == 1 and "PGIAM_PG_BINDIR" in err[0]


@pytest.mark.parametrize("flag", ["--aws-port", "--imds-port"])
def test_busy_port_is_one_line_exit_2_and_nothing_left(tmp_path: Path, flag: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = _run_bad(["--dir", str(tmp_path / "sb"), flag, str(port)])
    assert code == 2 and len(err) == 1
    assert f"127.0.0.1:{port}" in err[0] and "in use" in err[0]
    # it failed before starting PostgreSQL: no server data was made
    assert not (tmp_path / "sb" / "pg").exists() or not any((tmp_path / "sb" / "pg").iterdir())


@pytest.mark.parametrize(
    "args",
    [["--clusters", "-1"], ["--clusters", "x"], ["--latency-ms", "-5"], ["--aws-port", "70000"]],
)
def test_bad_numbers_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    code, err = _run_bad(["--dir", str(tmp_path / "sb"), *args])
    assert code == 2
    assert err[-1].startswith("pgiam-tui") and "error" in err[-1]


def test_runs_on_pgserver_binaries_and_logs_in_through_its_front_door(tmp_path: Path) -> None:
    import configparser

    import boto3
    import psycopg
    from pgiam_sandbox.postgres import _pgserver_bindir

    bindir = _pgserver_bindir()
    if bindir is None:
        pytest.skip("pgserver wheel not installed")
    directory = tmp_path / "sb"
    with _sandbox_up(directory, "--pg-bindir", str(bindir)) as (proc, lines):
        assert lines[-1:] == ["ready"], lines
        info = json.loads((directory / "sandbox.json").read_text())
        (inst,) = [c for c in info["clusters"] if c["name"] == "pgdemo-rds"]
        # Static keys need no AWS call to sign a token: independent of this process's AWS_* variables.
        creds = configparser.ConfigParser()
        creds.read(directory / "aws" / "credentials")
        admin = creds["sandbox-db-admin"]
        session = boto3.Session(
            aws_access_key_id=admin["aws_access_key_id"],
            aws_secret_access_key=admin["aws_secret_access_key"],
            region_name=inst["region"],
        )
        token = session.client("rds").generate_db_auth_token(
            DBHostname=inst["endpoint"], Port=5432, DBUsername="pgmonitor", Region=inst["region"]
        )
        with psycopg.connect(
            host=inst["endpoint"],
            hostaddr="127.0.0.1",
            port=inst["listen_port"],
            dbname="demo",
            user="pgmonitor",
            password=token,
            sslmode="verify-full",
            sslrootcert=str(directory / "ca.pem"),
            connect_timeout=10,
        ) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and version[0].startswith("16")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, _stderr(directory)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env=_env())


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_killed_instance_is_collected_and_restarted_from_the_cli(tmp_path: Path) -> None:
    """Issue 10: a killed postmaster stayed a zombie and nothing could start it again. The sandbox collects
    it; `sandbox pids` names its processes and `sandbox restart` brings it back, both from another process."""
    directory = tmp_path / "sb"
    with _sandbox_up(directory) as (proc, lines):
        assert lines[-1:] == ["ready"], _stderr(directory)
        info = json.loads((directory / "sandbox.json").read_text())
        inst = info["clusters"][0]["instances"][0]
        dsn = f"host={inst['pg_socket_dir']} port={inst['pg_port']} user=sandbox_admin dbname=demo"
        shown = _cli("sandbox", "pids", "--dir", str(directory), inst["id"])
        assert shown.returncode == 0, shown.stderr
        pids = json.loads(shown.stdout)
        postmaster = pids["postmaster"]
        assert _pid_alive(postmaster) and pids["children"]
        assert all(_pid_alive(p) for p in pids["children"])
        for pid in (postmaster, *pids["children"]):  # a stall, as fault tests make one
            os.kill(pid, signal.SIGSTOP)
        for pid in (postmaster, *pids["children"]):
            os.kill(pid, signal.SIGCONT)
        os.kill(postmaster, signal.SIGKILL)
        _wait(lambda: not _pid_alive(postmaster), "the killed postmaster to be collected (no zombie)")
        _wait(lambda: not any(_pid_alive(p) for p in pids["children"]), "its children to end")
        gone = _cli("sandbox", "pids", "--dir", str(directory), inst["id"])
        assert gone.returncode == 0 and json.loads(gone.stdout) == {"postmaster": None, "children": []}
        restarted = _cli("sandbox", "restart", "--dir", str(directory), inst["id"])
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout.strip() == f"restarted {inst['id']}"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM pgdemo.products").fetchone() == (5,)
        again = json.loads(_cli("sandbox", "pids", "--dir", str(directory), inst["id"]).stdout)
        assert again["postmaster"] not in (None, postmaster)
        wrong = _cli("sandbox", "restart", "--dir", str(directory), "no-such-instance")
        assert wrong.returncode == 1 and wrong.stdout == ""
        assert wrong.stderr.count("\n") == 1 and "no sandbox instance 'no-such-instance'" in wrong.stderr
        assert proc.poll() is None  # the sandbox kept running throughout
    assert "Traceback" not in _stderr(directory)
    nothing = _cli("sandbox", "restart", "--dir", str(directory), inst["id"])  # stopped: a clear line, exit 1
    assert nothing.returncode == 1 and nothing.stderr.count("\n") == 1 and "Traceback" not in nothing.stderr
    empty = _cli("sandbox", "restart", "--dir", str(tmp_path / "none"), "x")
    assert empty.returncode == 2 and "no running sandbox" in empty.stderr


def test_a_fleet_shares_servers_and_holds_idle_sessions(tmp_path: Path) -> None:
    """Issue 11: `--clusters 12 --sessions N --servers 4`: 25 instances on at most 4 servers (one of each
    kind at least), each server holding N idle sessions with max_connections raised to fit, every instance
    with its own front door and log group, and a login through the last cluster's front door works."""
    import configparser

    import boto3

    directory = tmp_path / "fleet"
    sessions = 30
    extra = ("--clusters", "12", "--sessions", str(sessions), "--servers", "4")
    with _sandbox_up(directory, *extra) as (proc, lines):
        assert lines[-1:] == ["ready"], _stderr(directory)
        info = json.loads((directory / "sandbox.json").read_text())
        clusters = info["clusters"]
        assert len(clusters) == 13  # 12 Aurora clusters and the RDS for PostgreSQL instance
        instances = [i for c in clusters for i in c["instances"]]
        assert len(instances) == 25
        assert len({i["listen_port"] for i in instances}) == 25  # a front door each
        assert len({c["log_group"] for c in clusters}) == 13
        servers = {(i["pg_socket_dir"], i["pg_port"]) for i in instances}
        assert 2 <= len(servers) <= 4
        for socket_dir, port in servers:
            with psycopg.connect(f"host={socket_dir} port={port} user=sandbox_admin dbname=demo") as conn:
                idle = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'idle-app' AND state = 'idle'"
                ).fetchone()
                limit = conn.execute("SHOW max_connections").fetchone()
            assert idle == (sessions,) and limit is not None and int(limit[0]) >= sessions + 50
        last = next(c for c in clusters if c["name"] == "pgdemo-12")
        creds = configparser.ConfigParser()
        creds.read(directory / "aws" / "credentials")
        admin = creds["sandbox-db-admin"]
        token = (
            boto3.Session(
                aws_access_key_id=admin["aws_access_key_id"],
                aws_secret_access_key=admin["aws_secret_access_key"],
                region_name=last["region"],
            )
            .client("rds")
            .generate_db_auth_token(
                DBHostname=last["endpoint"], Port=5432, DBUsername="pgmonitor", Region=last["region"]
            )
        )
        with psycopg.connect(
            host=last["endpoint"],
            hostaddr="127.0.0.1",
            port=last["listen_port"],
            dbname="demo",
            user="pgmonitor",
            password=token,
            sslmode="verify-full",
            sslrootcert=str(directory / "ca.pem"),
            connect_timeout=30,
        ) as conn:
            seen = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'idle-app'")
            assert seen.fetchone() == (sessions,)  # the sessions of the server it shares
        # AWS requests are counted per account, region and service; the sandbox's own (admin keys) are not
        reader = creds["iam-reader"]
        for _ in range(3):
            boto3.client(
                "sts",
                region_name="us-east-2",
                endpoint_url=info["endpoint_url"],
                aws_access_key_id=reader["aws_access_key_id"],
                aws_secret_access_key=reader["aws_secret_access_key"],
            ).get_caller_identity()
        counted = _cli("sandbox", "aws-requests", "--dir", str(directory))
        assert counted.returncode == 0, counted.stderr
        rows = json.loads(counted.stdout)
        assert {"account": "111111111111", "region": "us-east-2", "service": "sts", "requests": 3} in rows
        assert all(r["service"] != "logs" for r in rows)  # the log sinks' PutLogEvents are the sandbox's own
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, _stderr(directory)
    assert "Traceback" not in _stderr(directory)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--clusters", "51"], "--clusters must be between 0 and 50"), (["--servers", "0"], "must be >= 1")],
)
def test_fleet_limits_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    done = _cli("sandbox", "up", "--dir", str(tmp_path / "x"), *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
