"""Monitor on real PostgreSQL servers (LocalPostgres), clusters configured as direct endpoints.

Password auth (the keyring's own in-memory backend, set with keyring.set_keyring) over TCP/scram through a
"tunnel" (hostaddr + local_port) keeps these tests independent of the AWS side; the IAM path is covered with
the sandbox in test_snapshot_cli.py and test_connection.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres

from helpers import faults
from helpers.local_pg import password_cluster
from helpers.memory_keyring import MemoryKeyring, installed_keyring
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import ClusterConfig, Config, ConfigError
from pgiam_tui.db.connection import Backoff
from pgiam_tui.jsonout import snapshot_to_json
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.monitor import Monitor
from pgiam_tui.monitor.cluster import ClusterRuntime

MON_USER = "monitor_pw"
MON_PASSWORD = "monitor-pw-Secret-42"
FAST = Backoff(base_s=0.05, factor=2.0, cap_s=0.3)
GUARD_S = 90.0  # hang guard for waits (not an assertion on timing)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalPostgres]]:
    """Two seeded servers ("alpha", "beta") with a password login in pg_monitor and pg_signal_backend."""
    root = tmp_path_factory.mktemp("monitor")
    template = LocalPostgres.init_template(root / "template")
    made: dict[str, LocalPostgres] = {}
    try:
        for name in ("alpha", "beta"):
            pg = LocalPostgres.clone(template, root / name)
            made[name] = pg
            pg.start()
            with psycopg.connect(pg.admin_dsn, autocommit=True) as c:
                c.execute(
                    psycopg.sql.SQL(
                        "CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor, pg_signal_backend"
                    ).format(psycopg.sql.Identifier(MON_USER), psycopg.sql.Literal(MON_PASSWORD))
                )
        yield made
    finally:
        for pg in made.values():
            pg.cleanup()
        template.cleanup()


@pytest.fixture
def passwords() -> Iterator[MemoryKeyring]:
    """Passwords for the test clusters in an in-memory keyring; the previous keyring is put back."""
    with installed_keyring(MemoryKeyring()) as ring:
        yield ring


def _cluster(name: str, port: int | None, **over: Any) -> ClusterConfig:
    quick = {"connect_timeout_s": 2.0, "statement_timeout_ms": 2000, "refresh_s": 0.5}
    return password_cluster(name, port, MON_USER, **{**quick, **over})


def _config(*clusters: ClusterConfig) -> Config:
    return Config(path=None, clusters=clusters)


def _monitor(
    config: Config, tmp_path: Path, sink: Callable[[ClusterSnapshot], None] | None = None
) -> Monitor:
    return Monitor(
        config, SessionFactory(cache_dir=tmp_path / "cli-cache"), sink, backoff=FAST, aws_read_budget_s=1.0
    )


class Snapshots:
    """Collects on_snapshot calls and lets a test wait for one that matches."""

    def __init__(self) -> None:
        self.all: list[ClusterSnapshot] = []
        self._changed = asyncio.Event()

    def __call__(self, snap: ClusterSnapshot) -> None:
        self.all.append(snap)
        self._changed.set()

    def of(self, name: str) -> list[ClusterSnapshot]:
        return [s for s in self.all if s.name == name]

    async def wait(self, pred: Callable[[ClusterSnapshot], bool], after: int = 0) -> ClusterSnapshot:
        async with asyncio.timeout(GUARD_S):
            while True:
                for s in self.all[after:]:
                    if pred(s):
                        return s
                self._changed.clear()
                await self._changed.wait()


async def _session(pg: LocalPostgres, app: str) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(pg.admin_dsn, autocommit=True)
    await conn.execute("SELECT set_config('application_name', %s, false)", (app,))
    return conn


async def test_collect_once_and_json(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    for name in servers:
        passwords.set_password("pgiam-tui", name, MON_PASSWORD)
    probe = await _session(servers["alpha"], "probe-app")
    config = _config(*(_cluster(n, pg.port) for n, pg in servers.items()))
    seen = Snapshots()
    monitor = _monitor(config, tmp_path, seen)
    try:
        snaps = await monitor.collect_once()
    finally:
        await monitor.stop()
        await probe.close()
    assert [s.name for s in snaps] == ["alpha", "beta"]  # config order
    for snap in snaps:  # the activity snapshot went out first; the returned one has the side parts merged
        mine = seen.of(snap.name)
        assert mine[-1] is snap and mine[0].activity == snap.activity
        # before the IAM cadence ran, the pane showed discovery's flag; the returned one has the mapping read
        assert mine[0].iam_freshness.collected_at is None and snap.iam_freshness.collected_at is not None
        assert snap.iam is not None and snap.events_freshness.collected_at is not None
    alpha = snaps[0]
    assert alpha.status == "ok" and alpha.error is None and not alpha.stale
    assert alpha.server_version is not None and alpha.server_version.startswith("15.")
    assert [(i.status, i.role) for i in alpha.instances] == [("connected", "instance")]
    probe_rows = [r for r in alpha.activity if r.application_name == "probe-app"]
    assert len(probe_rows) == 1 and probe_rows[0].query is not None
    assert alpha.findings == ()  # pg_monitor: nothing hidden
    assert any(e.kind == "client_connect" and e.source == "client" for e in alpha.events)
    assert alpha.round_ms is not None and alpha.round_ms > 0

    doc = snapshot_to_json(snaps)
    text = json.dumps(doc)
    assert MON_PASSWORD not in text
    c0 = doc["clusters"][0]
    for key in ("name", "status", "error", "identity_arn", "endpoint", "server_version", "token_expires_at",
                "instances", "activity", "events", "iam"):  # fmt: skip
        assert key in c0
    row = next(r for r in c0["activity"] if r["application_name"] == "probe-app")
    for key in ("instance", "pid", "datname", "usename", "application_name", "client_addr", "client_hostname",
                "client_port", "backend_start", "xact_start", "query_start", "state", "wait_event_type",
                "wait_event", "blocked_by", "query"):  # fmt: skip
        assert key in row
    assert row["backend_start"].endswith("+00:00") or row["backend_start"][-6] in "+-"
    assert c0["iam"]["resource_id"] is None and c0["iam"]["iam_auth_enabled"] is False


async def test_stopped_cluster_is_stale_while_others_keep_going(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    for name in servers:
        passwords.set_password("pgiam-tui", name, MON_PASSWORD)
    beta_pg = servers["beta"]
    marker = await _session(beta_pg, "beta-marker")
    config = _config(*(_cluster(n, pg.port) for n, pg in servers.items()))
    seen = Snapshots()
    monitor = _monitor(config, tmp_path, seen)
    await monitor.start()
    try:
        await seen.wait(lambda s: s.name == "beta" and s.status == "ok" and
                        any(r.application_name == "beta-marker" for r in s.activity))  # fmt: skip
        await marker.close()
        await asyncio.to_thread(beta_pg.stop)
        mark = len(seen.all)
        down = await seen.wait(lambda s: s.name == "beta" and s.status == "error", after=mark)
        assert down.stale and down.data_age_s is not None and down.data_age_s >= 0
        assert down.error is not None and down.error.message and down.error.step in ("session", "connect")
        assert any(r.application_name == "beta-marker" for r in down.activity)  # last good data kept
        assert down.instances[0].status in ("reconnecting", "failed")
        # alpha keeps answering while beta is down
        after_down = len(seen.all)
        for _ in range(2):
            await seen.wait(lambda s: s.name == "alpha" and s.status == "ok", after=after_down)
            after_down = len(seen.all)
        await asyncio.to_thread(beta_pg.start)
        mark = len(seen.all)
        back = await seen.wait(lambda s: s.name == "beta" and s.status == "ok", after=mark)
        assert not back.stale and back.data_age_s is None
        assert not any(r.application_name == "beta-marker" for r in back.activity)
        assert back.instances[0].status == "connected"
        assert [s.status for s in seen.of("alpha")].count("error") == 0
    finally:
        await monitor.stop()
        if not beta_pg.is_running:
            await asyncio.to_thread(beta_pg.start)


class _Blackhole:
    """A TCP listener that accepts and never answers: a connect hangs until connect_timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


async def test_slow_cluster_delays_no_other(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    passwords.set_password("pgiam-tui", "alpha", MON_PASSWORD)
    passwords.set_password("pgiam-tui", "slow", MON_PASSWORD)
    hole = _Blackhole()
    config = _config(_cluster("alpha", servers["alpha"].port), _cluster("slow", hole.port))
    seen = Snapshots()
    monitor = _monitor(config, tmp_path, seen)
    await monitor.start()
    try:
        slow = await seen.wait(lambda s: s.name == "slow")
        assert slow.status == "error" and slow.error is not None
        # while the slow cluster's first round waited for its connect timeout, alpha finished several rounds
        before = [s for s in seen.all[: seen.all.index(slow)] if s.name == "alpha"]
        assert len(before) >= 2 and all(s.status == "ok" for s in before)
    finally:
        await monitor.stop()
        hole.close()


class CountingMonitor(Monitor):
    """Records how many rounds of each cluster run at the same time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}

    async def _round(self, rt: ClusterRuntime) -> None:
        name = rt.cfg.name
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        self.max_in_flight[name] = max(self.max_in_flight.get(name, 0), self.in_flight[name])
        try:
            await asyncio.sleep(0.01)  # give a would-be overlapping round the chance to start
            await super()._round(rt)
        finally:
            self.in_flight[name] -= 1


async def test_rounds_never_overlap_and_controls(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    passwords.set_password("pgiam-tui", "alpha", MON_PASSWORD)
    seen = Snapshots()
    monitor = CountingMonitor(
        _config(_cluster("alpha", servers["alpha"].port, refresh_s=0.2)),
        SessionFactory(cache_dir=tmp_path / "cache"),
        seen,
        backoff=FAST,
    )
    await monitor.start()
    try:
        await seen.wait(lambda s: s.name == "alpha")
        # hammer it: refreshes and one-off rounds while the loop polls
        hammer = [*(monitor.refresh_now("alpha") for _ in range(5)), monitor.collect_once(["alpha"])]
        await asyncio.gather(*hammer, monitor.collect_once(), monitor.refresh_now())
        mark = len(seen.all)
        await seen.wait(lambda s: True, after=mark)
        assert monitor.max_in_flight == {"alpha": 1}
        monitor.set_interval("alpha", 30)
        assert monitor.interval("alpha") == 30
        monitor.pause()
        assert monitor.paused
        await monitor.refresh_now("alpha")  # paused: refresh_now runs one round itself
        mark = len(seen.all)
        monitor.set_interval("alpha", 0.2)
        monitor.resume()
        await seen.wait(lambda s: True, after=mark)
        assert monitor.latest("alpha") is not None
        assert monitor.connection_status("alpha")["alpha"].state == "connected"
        with pytest.raises(ConfigError):
            monitor.set_interval("nope", 1)
    finally:
        await monitor.stop()
    assert monitor.max_in_flight == {"alpha": 1}


async def test_discovery_error_and_missing_password(
    servers: dict[str, LocalPostgres],
    passwords: MemoryKeyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an AWS setup without any region (a sandbox of an earlier test may have exported one)
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty-aws-config"))
    passwords.set_password("pgiam-tui", "alpha", MON_PASSWORD)
    config = _config(
        _cluster("alpha", servers["alpha"].port),
        _cluster("noregion", servers["alpha"].port, region=None, profile=None),
        _cluster("nopass", servers["alpha"].port),
    )
    monitor = _monitor(config, tmp_path)
    try:
        alpha, noregion, nopass = await monitor.collect_once()
    finally:
        await monitor.stop()
    assert alpha.status == "ok"
    assert noregion.status == "error" and noregion.error is not None
    assert noregion.error.step == "discovery" and "region" in noregion.error.message and noregion.error.hint
    assert nopass.status == "error" and nopass.error is not None
    assert nopass.error.step == "password" and "pgiam-tui password set nopass" in nopass.error.hint


async def test_signal_backend_needs_allow_actions(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    passwords.set_password("pgiam-tui", "alpha", MON_PASSWORD)
    pg = servers["alpha"]
    victim = await psycopg.AsyncConnection.connect(
        host="127.0.0.1", port=pg.port, dbname="demo", user=MON_USER, password=MON_PASSWORD, autocommit=True
    )
    config = _config(_cluster("alpha", pg.port, allow_actions=True), _cluster("ro", pg.port))
    passwords.set_password("pgiam-tui", "ro", MON_PASSWORD)
    monitor = _monitor(config, tmp_path)
    try:
        await monitor.collect_once()
        with pytest.raises(PermissionError):
            await monitor.signal_backend("ro", "ro", victim.info.backend_pid, terminate=True)
        outcome = await monitor.signal_backend("alpha", "alpha", victim.info.backend_pid, terminate=True)
        assert "done" in outcome
        for _ in range(100):  # the signalled backend exits asynchronously
            (snap,) = await monitor.collect_once(["alpha"])
            if not any(r.pid == victim.info.backend_pid for r in snap.activity):
                break
            await asyncio.sleep(0.05)
        assert not any(r.pid == victim.info.backend_pid for r in snap.activity)
        assert any(e.kind == "action" and str(victim.info.backend_pid) in e.message for e in snap.events)
    finally:
        await monitor.stop()
        await victim.close()


class _SilentAws:
    """An "AWS endpoint" that takes HTTP requests and holds them without an answer until `release()`:
    every boto3 call to it hangs (up to its read timeout), so the test decides when the call ends."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if await reader.read(1):  # a request began to arrive
            self.called.set()

    async def release(self) -> None:
        """Drop every held request (the callers see the connection closed) and stop listening."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def test_slow_iam_never_delays_activity(
    servers: dict[str, LocalPostgres],
    passwords: MemoryKeyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IAM reads through an iam_profile whose endpoint never answers: the activity snapshot goes out first,
    later rounds keep coming while IAM still waits, and IAM's outcome arrives afterwards as an update."""
    passwords.set_password("pgiam-tui", "alpha", MON_PASSWORD)
    aws = _SilentAws()
    await aws.start()
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(
        "[profile iam-reader]\nregion = us-east-1\naws_access_key_id = AKIDEXAMPLE\n"
        f"aws_secret_access_key = not-a-secret\nendpoint_url = http://127.0.0.1:{aws.port}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    probe = await _session(servers["alpha"], "probe-slow-iam")
    config = _config(_cluster("alpha", servers["alpha"].port, iam_profile="iam-reader"))
    seen = Snapshots()
    monitor = _monitor(config, tmp_path, seen)
    await monitor.start()
    try:
        async with asyncio.timeout(GUARD_S):
            await aws.called.wait()  # the IAM part is now waiting on the silent endpoint
        # ORDER: snapshots with this session's activity went out while the IAM part was not done
        first = await seen.wait(lambda s: any(r.application_name == "probe-slow-iam" for r in s.activity))
        assert first.status == "ok" and first.iam_freshness.collected_at is None
        # and later rounds are not held up by it either: more activity rounds, IAM still pending and,
        # once past its budget, marked stale as a timeout (not as a permissions problem)
        mark = len(seen.all)
        await seen.wait(lambda s: s.status == "ok", after=mark)
        overdue = await seen.wait(lambda s: s.status == "ok" and s.iam_freshness.stale, after=len(seen.all))
        assert overdue.iam_freshness.reason is not None and "timeout" in overdue.iam_freshness.reason
        assert all(s.iam_freshness.collected_at is None for s in seen.all), "IAM finished without an answer"
        await aws.release()
        # the IAM part ends (unreadable: the endpoint hung up) and is merged into an updated snapshot
        done = await seen.wait(lambda s: s.iam_freshness.collected_at is not None, after=mark)
        assert done.iam is not None
        assert done.activity and not done.iam.iam_readable
        assert any(f.code == "iam_unreadable" for f in done.findings + done.iam.findings)
    finally:
        await monitor.stop()
        await aws.release()
        await probe.close()


async def test_stalled_server_is_stale_at_once_and_recovers(
    servers: dict[str, LocalPostgres], passwords: MemoryKeyring, tmp_path: Path
) -> None:
    """Issue 10: SIGSTOP of a server (postmaster and backends, by pid). The instance is stale as soon as its
    read runs over its budget (statement_timeout + 1 s here), not after the driver's own cancel; its last
    rows stay, marked stale; the other cluster keeps answering; SIGCONT brings it back."""
    for name in servers:
        passwords.set_password("pgiam-tui", name, MON_PASSWORD)
    beta_pg = servers["beta"]
    marker = await _session(beta_pg, "beta-stall-marker")
    config = _config(*(_cluster(n, pg.port, statement_timeout_ms=1000) for n, pg in servers.items()))
    seen = faults.Snapshots()
    monitor = _monitor(config, tmp_path, seen)
    await monitor.start()
    try:
        await seen.wait(lambda s: s.name == "beta" and s.status == "ok" and
                        any(r.application_name == "beta-stall-marker" for r in s.activity))  # fmt: skip
        assert beta_pg.pid is not None
        mark = seen.mark()
        with faults.paused(beta_pg.pid):
            down = await seen.wait(lambda s: s.name == "beta" and s.instances[0].freshness.stale, after=mark)
            inst = down.instances[0]
            assert inst.freshness.reason is not None and "no answer" in inst.freshness.reason
            assert down.status == "error" and down.error is not None and down.error.step == "timeout"
            assert down.error.message.count("beta") == 1  # the instance is named once
            assert "permission" not in (down.error.message + down.error.hint).lower()
            assert down.stale and any(r.application_name == "beta-stall-marker" for r in down.activity)
            after_down = seen.mark()
            for _ in range(2):  # alpha keeps answering while beta is stopped
                await seen.wait(lambda s: s.name == "alpha" and s.status == "ok", after=after_down)
                after_down = seen.mark()
        mark = seen.mark()
        back = await seen.wait(
            lambda s: s.name == "beta" and s.status == "ok" and not s.instances[0].freshness.stale, after=mark
        )
        assert not back.stale and any(r.application_name == "beta-stall-marker" for r in back.activity)
        assert [s.status for s in seen.of("alpha")].count("error") == 0
    finally:
        await monitor.stop()
        await marker.close()
