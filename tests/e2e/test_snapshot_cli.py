"""`pgiam-tui snapshot`: the real console script in a subprocess, and the Monitor against the sandbox.

- config problems: exit 2 with one line, no traceback;
- direct endpoints with keyring passwords (LocalPostgres; the keyring's own PYTHON_KEYRING_BACKEND hook points
  the subprocess at a file-backed backend written here): exit 0 when all answer, 1 when one does not;
- the sandbox (IAM tokens through the front doors, workload on): oltp_rw_user sessions, blocked sessions with
  their blocker's pid; a cluster stopped mid-run is error + stale while the others stay ok, and recovers.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pgiam_sandbox.postgres import LocalPostgres

from helpers.check_support import RefusedPort
from helpers.local_pg import running_postgres
from helpers.memory_keyring import FileKeyring

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

    from pgiam_tui.model import ClusterSnapshot

PGIAM = str(Path(sys.executable).with_name("pgiam-tui"))
TESTS = Path(__file__).resolve().parents[1]
APP_USER = "app_password_user"
APP_PASSWORD = "app-password"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PGIAM, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """The current environment without AWS/config overrides, HOME in tmp (no ~/.aws of the machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGIAM_"))}
    env["HOME"] = str(tmp_path / "home")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


# ------------------------------------------------------------------------------------------ config errors


def test_config_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[clusters]]\nname = "a"\nendpoint = "a.example"\nbogus_key = 1\n')
    for args in (
        ["--config", str(bad), "snapshot"],
        ["--config", str(tmp_path / "missing.toml"), "snapshot", "--json"],
    ):
        done = _run(args, env)
        assert done.returncode == 2, done
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pgiam-tui: ") and "Traceback" not in done.stderr
    assert "bogus_key" in _run(["--config", str(bad), "snapshot"], env).stderr


# ------------------------------------------------------------------ direct endpoints, keyring passwords


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with running_postgres(tmp_path_factory.mktemp("snapcli")) as server:
        yield server


def _direct_setup(tmp_path: Path, pg: LocalPostgres, extra: str = "") -> tuple[Path, dict[str, str]]:
    config = tmp_path / "profiles.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [defaults]
            region = "us-east-1"
            database = "demo"
            user = "{APP_USER}"
            auth = "password"
            sslmode = "disable"
            connect_timeout_s = 2

            [[clusters]]
            name = "local-a"
            endpoint = "local-a.db.internal"
            hostaddr = "127.0.0.1"
            local_port = {pg.port}
            """
        )
        + extra
    )
    env = _clean_env(tmp_path)
    env["PYTHONPATH"] = str(TESTS)  # helpers.memory_keyring
    env["PYTHON_KEYRING_BACKEND"] = "helpers.memory_keyring.FileKeyring"
    env[FileKeyring.ENV] = str(tmp_path / "keyring.json")
    (tmp_path / "keyring.json").write_text(
        json.dumps({"pgiam-tui\0local-a": APP_PASSWORD, "pgiam-tui\0local-down": APP_PASSWORD})
    )
    return config, env


def test_snapshot_direct_ok_json_and_text(tmp_path: Path, pg: LocalPostgres) -> None:
    config, env = _direct_setup(tmp_path, pg)
    done = _run(["--config", str(config), "snapshot", "--json"], env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    (cluster,) = doc["clusters"]
    assert cluster["name"] == "local-a" and cluster["status"] == "ok" and cluster["error"] is None
    assert cluster["instances"][0]["status"] == "connected"
    assert cluster["server_version"].startswith("15.")
    assert APP_PASSWORD not in done.stdout and APP_PASSWORD not in done.stderr
    # app_password_user lacks pg_monitor: the hidden sessions are reported as a finding
    assert "insufficient_privilege" in {f["code"] for f in cluster["findings"]}

    text = _run(["--config", str(config), "snapshot"], env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("local-a: OK")
    assert "insufficient_privilege" in text.stdout


def test_snapshot_exit_1_when_one_cluster_does_not_answer(tmp_path: Path, pg: LocalPostgres) -> None:
    with RefusedPort() as port:
        down = f"""
[[clusters]]
name = "local-down"
endpoint = "local-down.db.internal"
hostaddr = "127.0.0.1"
local_port = {port}
"""
        config, env = _direct_setup(tmp_path, pg, down)
        done = _run(["--config", str(config), "snapshot", "--json"], env)
    assert done.returncode == 1, done.stderr
    by_name = {c["name"]: c for c in json.loads(done.stdout)["clusters"]}
    assert by_name["local-a"]["status"] == "ok"
    bad = by_name["local-down"]
    assert bad["status"] == "error" and bad["error"]["step"] == "connect"
    assert bad["error"]["message"] and bad["error"]["hint"]
    assert bad["instances"][0]["status"] == "failed"
    # --cluster limits the round to the named cluster
    only = _run(["--config", str(config), "snapshot", "--json", "--cluster", "local-a"], env)
    assert only.returncode == 0 and [c["name"] for c in json.loads(only.stdout)["clusters"]] == ["local-a"]
    unknown = _run(["--config", str(config), "snapshot", "--cluster", "nope"], env)
    assert unknown.returncode == 2 and "nope" in unknown.stderr


# ---------------------------------------------------------------------------------------------- sandbox


def _blocked_seen(cluster: dict[str, Any]) -> bool:
    rows = cluster["activity"]
    holders = {r["pid"] for r in rows if r["application_name"] == "lock-holder"}
    blocked = [r for r in rows if r["wait_event_type"] == "Lock"]
    return (
        bool(holders)
        and len(blocked) >= 2
        and all(r["blocked_by"] for r in blocked)
        and any(set(r["blocked_by"]) & holders for r in blocked)
    )


def test_snapshot_json_on_the_sandbox(sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(sandbox_env)
    env["HOME"] = str(tmp_path)  # the AWS CLI cache of assumed roles goes to this test's home
    aurora = [c.name for c in sandbox.clusters if c.kind == "aurora"]
    doc: dict[str, Any] = {}
    for _ in range(20):  # the workload sets its sessions up in the background: ask again until they show
        done = _run(["snapshot", "--json"], env)
        assert done.returncode in (0, 1), done.stderr
        doc = json.loads(done.stdout)
        by_name = {c["name"]: c for c in doc["clusters"]}
        if all(by_name[n]["status"] == "ok" and _blocked_seen(by_name[n]) for n in aurora):
            break
    by_name = {c["name"]: c for c in doc["clusters"]}
    assert done.returncode == 0, json.dumps([c["error"] for c in doc["clusters"]])
    for name in aurora:
        c = by_name[name]
        assert c["status"] == "ok"
        assert c["identity_arn"] and ":assumed-role/pg-monitor-role/" in c["identity_arn"]
        assert c["token_expires_at"] and c["token_expires_at"][-6] in "+-"
        roles = sorted(i["role"] for i in c["instances"])
        assert roles == ["reader", "writer"] and all(i["status"] == "connected" for i in c["instances"])
        assert {r["instance"] for r in c["activity"]} == {i["id"] for i in c["instances"]}
        assert any(r["usename"] == "oltp_rw_user" for r in c["activity"])
        assert _blocked_seen(c), json.dumps([r for r in c["activity"] if r["usename"] == "oltp_rw_user"])
        holders = {r["pid"]: r for r in c["activity"] if r["application_name"] == "lock-holder"}
        for r in c["activity"]:
            if r["wait_event_type"] == "Lock":
                assert r["blocked_by"]
            else:
                assert r["blocked_by"] == []
        assert all(h["state"] == "idle in transaction" for h in holders.values())
        # the snapshot's own monitoring sessions (one per instance) are left out
        assert not any(r["application_name"] == "pgiam-tui" for r in c["activity"])
    assert "X-Amz-Signature" not in done.stdout and "X-Amz-Signature" not in done.stderr


async def test_monitor_cluster_stopped_mid_run(sandbox: Sandbox, tmp_path: Path) -> None:
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.config import load_config
    from pgiam_tui.db.connection import Backoff
    from pgiam_tui.monitor import Monitor

    config = load_config(sandbox.profiles_toml)
    names = [c.name for c in config.clusters]
    victim = next(c.name for c in sandbox.clusters if c.kind == "aurora")
    seen: list[ClusterSnapshot] = []
    changed = asyncio.Event()

    def sink(snap: ClusterSnapshot) -> None:
        seen.append(snap)
        changed.set()

    async def wait_for(pred: Any, after: int) -> ClusterSnapshot:
        async with asyncio.timeout(120):  # hang guard
            while True:
                for s in seen[after:]:
                    if pred(s):
                        return s
                changed.clear()
                await changed.wait()

    monitor = Monitor(
        config,
        SessionFactory(cache_dir=tmp_path / "cli-cache"),
        sink,
        backoff=Backoff(base_s=0.2, cap_s=1.0),
        collect_iam=False,
    )
    for name in names:
        monitor.set_interval(name, 0.5)
    await monitor.start()
    try:
        for name in names:
            await wait_for(lambda s, n=name: s.name == n and s.status == "ok" and s.activity, 0)
        mark = len(seen)
        await asyncio.to_thread(sandbox.stop_cluster, victim)
        down = await wait_for(lambda s: s.name == victim and s.status == "error", mark)
        assert down.stale and down.data_age_s is not None and down.activity
        assert down.error is not None and down.error.message
        # the others keep answering while it is down
        later = len(seen)
        for name in (n for n in names if n != victim):
            ok = await wait_for(lambda s, n=name: s.name == n, later)
            assert ok.status == "ok" and not ok.stale
        mark = len(seen)
        await asyncio.to_thread(sandbox.start_cluster, victim)
        # the writer may answer before the reader reconnects: "ok" with the reader still marked stale
        # is a truthful step on the way; the cluster is back when every instance is live again
        back = await wait_for(lambda s: s.name == victim and s.status == "ok" and not s.stale, mark)
        assert all(i.status == "connected" and not i.freshness.stale for i in back.instances)
    finally:
        await monitor.stop()
        await asyncio.to_thread(sandbox.start_cluster, victim)


async def _sandbox_monitor(sandbox: Sandbox, tmp_path: Path, names: list[str]) -> Any:
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.config import Config, load_config
    from pgiam_tui.db.connection import Backoff
    from pgiam_tui.monitor import Monitor

    config = load_config(sandbox.profiles_toml)
    chosen = Config(path=config.path, clusters=tuple(c for c in config.clusters if c.name in names))
    return Monitor(
        chosen,
        SessionFactory(cache_dir=tmp_path / "cli-cache"),
        backoff=Backoff(base_s=0.1, cap_s=0.5),
        collect_events=False,
        collect_iam=False,
    )


async def test_one_instance_down_keeps_its_rows_stale(sandbox: Sandbox, tmp_path: Path) -> None:
    """The reader refuses the monitor (connection limit 0): writer rows stay fresh, the reader's go stale."""
    import psycopg

    cluster = next(c for c in sandbox.clusters if c.kind == "aurora")
    reader = cluster.reader
    assert reader is not None
    monitor = await _sandbox_monitor(sandbox, tmp_path, [cluster.name])
    admin = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(cluster.name, reader.id), autocommit=True)
    try:
        (first,) = await monitor.collect_once()
        assert first.status == "ok" and {r.instance for r in first.activity} == {
            i.id for i in first.instances
        }
        await admin.execute("ALTER ROLE pgmonitor CONNECTION LIMIT 0")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = 'pgmonitor' AND application_name = 'pgiam-tui'"
        )
        snap = first
        for _ in range(50):  # the termination is noticed by the next round
            (snap,) = await monitor.collect_once()
            if snap.stale:
                break
        # the writer answers: the cluster is "ok" (no cluster-wide ✖ over live rows), the reader says
        # itself that its rows are stale and why
        assert snap.status == "ok" and snap.error is None and snap.stale and snap.data_age_s is not None
        by_id = {i.id: i for i in snap.instances}
        assert by_id[reader.id].status in ("reconnecting", "failed") and by_id[reader.id].error
        assert by_id[reader.id].freshness.stale and by_id[reader.id].freshness.reason
        assert by_id[cluster.writer.id].status == "connected" and not by_id[cluster.writer.id].freshness.stale
        assert {r.instance for r in snap.activity} == {reader.id, cluster.writer.id}  # reader's rows kept
        await admin.execute("ALTER ROLE pgmonitor CONNECTION LIMIT -1")
        for _ in range(100):
            (snap,) = await monitor.collect_once()
            if snap.status == "ok" and not snap.stale:
                break
            await asyncio.sleep(0.1)
        assert snap.status == "ok" and not snap.stale
    finally:
        await admin.execute("ALTER ROLE pgmonitor CONNECTION LIMIT -1")
        await admin.close()
        await monitor.stop()


async def test_missing_pg_monitor_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    """REVOKE pg_monitor: other users' sessions turn <insufficient privilege>, reported with the fix.

    The other user's session is the test's own: the workload's come and go, one may be absent at that instant.
    """
    import psycopg

    cluster = next(c for c in sandbox.clusters if c.kind == "aurora")
    monitor = await _sandbox_monitor(sandbox, tmp_path, [cluster.name])
    other = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(cluster.name), autocommit=True)
    try:
        row = await (await other.execute("SELECT pg_backend_pid(), current_user")).fetchone()
        assert row is not None
        other_pid, other_user = row
        (before,) = await monitor.collect_once()
        assert before.status == "ok" and "insufficient_privilege" not in {f.code for f in before.findings}
        assert any(r.pid == other_pid and r.query != "<insufficient privilege>" for r in before.activity)
        await asyncio.to_thread(sandbox.admin_sql, cluster.name, "REVOKE pg_monitor FROM pgmonitor")
        (after,) = await monitor.collect_once()
        codes = [f.code for f in after.findings]
        assert "insufficient_privilege" in codes
        finding = after.findings[codes.index("insufficient_privilege")]
        assert 'GRANT pg_monitor TO "pgmonitor"' in finding.fix
        hidden = {r.pid: r for r in after.activity if r.query == "<insufficient privilege>"}
        assert other_pid in hidden and hidden[other_pid].usename == other_user
    finally:
        await other.close()
        await asyncio.to_thread(sandbox.admin_sql, cluster.name, "GRANT pg_monitor TO pgmonitor")
        await monitor.stop()


HOSTILE = "SELECT 1 /* \x1b]0;owned\x07 \x1b[31mred \x9b2J [bold]x[/] \u202eevil */"


def test_untrusted_text_never_reaches_the_terminal_raw(tmp_path: Path, pg: LocalPostgres) -> None:
    """Query text with ESC/OSC/C1/bidi characters: JSON escapes them, the text summary shows them."""
    import psycopg

    config, env = _direct_setup(tmp_path, pg)
    # as the monitoring user itself: its own sessions are visible without pg_monitor
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, dbname="demo", user=APP_USER, password=APP_PASSWORD, autocommit=True
    ) as hostile:
        hostile.execute("SET application_name = 'hostile-app'")
        hostile.execute(HOSTILE.encode())  # stays as this idle session's last query
        done = _run(["--config", str(config), "snapshot", "--json"], env)
        text_out = _run(["--config", str(config), "snapshot"], env)
    assert done.returncode == 0, done.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in done.stdout and raw not in text_out.stdout
    rows = json.loads(done.stdout)["clusters"][0]["activity"]
    assert [r["query"] for r in rows if r["application_name"] == "hostile-app"] == [HOSTILE]


def test_render_text_escapes_untrusted_strings() -> None:
    from datetime import UTC, datetime

    from pgiam_tui.commands.snapshot import _field, render_text
    from pgiam_tui.model import ClusterSnapshot, ErrorInfo, SessionRow

    now = datetime.now(UTC)
    row = SessionRow("i-1", 42, "demo", "u\x1b[2J", None, None, None, None, now, None, None, None, "active",
                     "Lock", "tuple", "client backend", None, HOSTILE, blocked_by=(7,))  # fmt: skip
    snap = ClusterSnapshot("c\x1b1", "error", now, error=ErrorInfo("connect", "bad \x9b thing", "fix\x07"),
                           activity=(row,))  # fmt: skip
    out = render_text([snap])
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    assert "blocked: pid 42" in out and "by 7" in out and "\\x1b" in out and "\\u202e" in _field(HOSTILE, 200)
    assert _field("a\tb\nc") == "a b c" and _field("x" * 100, 10) == "x" * 9 + "…"


async def test_failed_rediscovery_keeps_watching(sandbox: Sandbox, tmp_path: Path) -> None:
    """The monitoring role's credentials expire (moto says ExpiredToken): rediscovery fails, but the open
    sessions keep answering, so the cluster stays ok with a `discovery_failed` finding."""
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.config import Config, load_config
    from pgiam_tui.monitor import Monitor

    cluster = next(c for c in sandbox.clusters if c.kind == "aurora")
    config = load_config(sandbox.profiles_toml)
    chosen = Config(path=config.path, clusters=(config.cluster(cluster.name),))
    sessions = SessionFactory(cache_dir=tmp_path / "cli-cache")
    monitor = Monitor(chosen, sessions, collect_events=False, collect_iam=False, discovery_refresh_s=0)
    try:
        (first,) = await monitor.collect_once()
        assert first.status == "ok" and not any(f.code == "discovery_failed" for f in first.findings)
        profile = chosen.clusters[0].profile
        found = await asyncio.to_thread(lambda: sessions.session(profile).get_credentials())
        assert found is not None
        creds = found.get_frozen_credentials()
        assert await asyncio.to_thread(sandbox.expire_sessions, None, creds.access_key) == 1
        (later,) = await monitor.collect_once()
        assert later.status == "ok" and later.activity and not later.stale
        codes = {f.code for f in later.findings}
        assert "discovery_failed" in codes
    finally:
        await monitor.stop()


def test_snapshot_exit_1_for_a_stopped_sandbox_cluster(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(sandbox_env)
    env["HOME"] = str(tmp_path)
    names = [c.name for c in sandbox.clusters]
    victim, other = names[0], names[1]
    sandbox.stop_cluster(victim)
    try:
        done = _run(["snapshot", "--json", "--cluster", victim, "--cluster", other], env)
    finally:
        sandbox.start_cluster(victim)
    assert done.returncode == 1, done.stderr
    by_name = {c["name"]: c for c in json.loads(done.stdout)["clusters"]}
    assert by_name[other]["status"] == "ok"
    bad = by_name[victim]
    assert bad["status"] == "error" and bad["error"]["step"] == "connect" and bad["error"]["message"]
    assert all(i["status"] == "failed" for i in bad["instances"])
    assert "Traceback" not in done.stderr


def test_render_text_shows_iam_users_and_counters() -> None:
    from datetime import UTC, datetime

    from pgiam_tui.commands.snapshot import render_text
    from pgiam_tui.model import ClusterSnapshot, DbUser, Grant, IamMetrics, IamSnapshot

    role = "arn:aws:iam::111111111111:role/pg-monitor-role"
    grant = Grant(role, "pg-db-monitor-policy", "dbuser:*/pgmonitor")
    iam = IamSnapshot(
        iam_auth_enabled=False,
        resource_id="cluster-ABC",
        users=(
            DbUser("pgmonitor", True, ("rds_iam", "pg_monitor"), True, iam_principals=(grant,)),
            DbUser("orphan\x1b[31m", True, ("rds_iam",), True),
            DbUser("app_password_user", False, (), True),
        ),
        metrics=(
            IamMetrics("w", totals={"requests": 3.0, "success": 2.0, "failure": 1.0}),
            IamMetrics("r", totals={"requests": 1.0, "success": 1.0}),
        ),
    )
    out = render_text([ClusterSnapshot("c", "ok", datetime.now(UTC), iam=iam)])
    assert "iam auth: DISABLED, resource id cluster-ABC" in out
    assert "iam user pgmonitor (roles: pg_monitor); may connect: role/pg-monitor-role" in out
    assert "iam user orphan\\x1b[31m (roles: -); may connect: nobody" in out and "\x1b" not in out
    assert "app_password_user" not in out  # not an IAM user
    assert "iam auth connections, last hour: requests 4, success 3, failure 1" in out
