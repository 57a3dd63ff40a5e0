"""The RDS front door end to end: real PostgreSQL, moto's server in-process, real TLS (trustme CA), psycopg.

A module-scoped fixture builds one endpoint by hand (LocalPostgres + ThreadedMotoServer + FrontDoor +
RdsLogSink) so these tests do not depend on the whole sandbox. Resources live in moto's default account with
unique names, so a session-wide sandbox in the same process is not disturbed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from pgiam_sandbox import Switches
from pgiam_sandbox.frontdoor import FrontDoor
from pgiam_sandbox.postgres import LocalPostgres
from pgiam_sandbox.rds_logs import DiagnosticLog, RdsLogSink, iam_error_line, rds_prefix
from pgiam_sandbox.token_check import TokenTarget, TokenVerifier, Verdict

from helpers.moto_server import create_aurora_cluster
from helpers.moto_server import policy_document as _policy
from helpers.sockets import listening_here

REGION = "us-east-1"
STARTING = "the database system is starting up"
ACCOUNT = "123456789012"  # moto's default account: requests with unknown keys land there


@dataclass
class Env:
    pg: LocalPostgres
    moto_url: str
    cluster_id: str
    cluster_rid: str
    endpoint: str  # cluster endpoint (token host)
    writer_endpoint: str
    writer_id: str
    door: FrontDoor
    sink: RdsLogSink
    diag: DiagnosticLog
    switches: Switches
    ca_path: Path
    monitor: Credentials  # IAM user allowed dbuser:*/pgmonitor
    by_name: Credentials  # IAM user whose policy names the cluster identifier instead of the resource id
    monitor_user: str
    monitor_policy_arn: str

    def client(self, service: str, creds: Credentials | None = None) -> Any:
        key = creds or Credentials("testing", "testing")
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id=key.access_key,
            aws_secret_access_key=key.secret_key,
            aws_session_token=key.token,
        )

    def token(
        self,
        user: str = "pgmonitor",
        *,
        host: str | None = None,
        port: int = 5432,
        region: str = REGION,
        creds: Credentials | None = None,
    ) -> str:
        c = creds or self.monitor
        rds = boto3.client(
            "rds", region_name=region, aws_access_key_id=c.access_key, aws_secret_access_key=c.secret_key
        )
        return str(rds.generate_db_auth_token(host or self.endpoint, port, user, Region=region))

    def connect(
        self, user: str, password: str, *, host: str | None = None, **kw: Any
    ) -> psycopg.Connection[Any]:
        params: dict[str, Any] = {
            "host": host or self.endpoint,
            "hostaddr": "127.0.0.1",
            "port": self.door.port,
            "user": user,
            "password": password,
            "dbname": "demo",
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca_path),
            "connect_timeout": 10,
            "application_name": "fd-test",
        }
        params.update(kw)
        return psycopg.connect(**params)

    def log_lines(self) -> list[str]:
        return self.sink.read_file()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    import trustme
    from moto.server import ThreadedMotoServer

    root = tmp_path_factory.mktemp("frontdoor")
    pg = LocalPostgres.init_template(root / "pg")
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    door: FrontDoor | None = None
    sink: RdsLogSink | None = None
    try:
        pg.start()
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        admin = Credentials("testing", "testing")
        sfx = uuid.uuid4().hex[:8]

        def client(service: str) -> Any:
            return boto3.client(  # type: ignore[call-overload]
                service,
                region_name=REGION,
                endpoint_url=url,
                aws_access_key_id=admin.access_key,
                aws_secret_access_key=admin.secret_key,
            )

        rds, iam = client("rds"), client("iam")
        cluster_id = f"fd-{sfx}"
        cl, writer = create_aurora_cluster(rds, cluster_id)
        writer_id = writer["DBInstanceIdentifier"]
        log_group = f"/aws/rds/cluster/{cluster_id}/postgresql"
        iam_group = f"/aws/rds/cluster/{cluster_id}/iam-db-auth-error"
        logs = client("logs")
        logs.create_log_group(logGroupName=log_group)
        logs.create_log_group(logGroupName=iam_group)

        def user_with(name: str, resource: str) -> tuple[Credentials, str]:
            pol = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=_policy(resource))["Policy"]
            iam.create_user(UserName=name)
            iam.attach_user_policy(UserName=name, PolicyArn=pol["Arn"])
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return Credentials(key["AccessKeyId"], key["SecretAccessKey"]), pol["Arn"]

        monitor_user = f"monitor-{sfx}"
        monitor, monitor_policy = user_with(
            monitor_user, f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/pgmonitor"
        )
        by_name, _ = user_with(
            f"byname-{sfx}", f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{cluster_id}/pgmonitor"
        )

        endpoint, writer_ep = cl["Endpoint"], writer["Endpoint"]["Address"]
        ca = trustme.CA()
        ca_path = root / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(endpoint, writer_ep).configure_cert(ctx)

        switches = Switches()
        sink = RdsLogSink(
            log_file=root / "logs" / f"{cluster_id}.log",
            log_group=log_group,
            iam_log_group=iam_group,
            client_factory=client,
            flush_interval=0.2,
        )
        diag = DiagnosticLog(root / "frontdoor-diagnostics.log")
        target = TokenTarget(ACCOUNT, REGION, cluster_id, writer_id, (endpoint, writer_ep))
        door = FrontDoor(
            endpoint,
            [endpoint, writer_ep],
            instance_id=writer_id,
            backend_socket_dir=str(pg.socket_dir),
            backend_port=int(pg.port or 0),
            verifier=TokenVerifier(switches).for_target(target),
            ssl_context=ctx,
            log_sink=sink,
            switches=switches,
            diagnostics=diag,
        )
        door.start()
        yield Env(
            pg,
            url,
            cluster_id,
            cl["DbClusterResourceId"],
            endpoint,
            writer_ep,
            writer_id,
            door,
            sink,
            diag,
            switches,
            ca_path,
            monitor,
            by_name,
            monitor_user,
            monitor_policy,
        )
    finally:
        if door is not None:
            door.stop()
        if sink is not None:
            sink.close()
        server.stop()
        pg.cleanup()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll until predicate() holds (a liveness wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def refused(env: Env, user: str, password: str, **kw: Any) -> str:
    with pytest.raises(psycopg.OperationalError) as info:
        env.connect(user, password, **kw).close()
    return str(info.value)


def test_iam_login_verify_full_and_log_lines(env: Env) -> None:
    with env.connect("pgmonitor", env.token()) as conn:
        user, pid = conn.execute("select current_user, pg_backend_pid()").fetchone()  # type: ignore[misc]
        assert user == "pgmonitor"
        assert conn.info.parameter_status("application_name") == "fd-test"
    wait_for(
        lambda: any(f"[{pid}]:LOG:  disconnection" in line for line in env.log_lines()), "disconnection line"
    )
    mine = [line for line in env.log_lines() if f":[{pid}]:" in line]
    assert "LOG:  connection received: host=127.0.0.1 port=" in mine[0]
    assert mine[0].split(":")[4].startswith("[unknown]@[unknown]") or "[unknown]@[unknown]" in mine[0]
    assert ":pgmonitor@demo:" in mine[1]
    assert (
        "LOG:  connection authorized: user=pgmonitor database=demo application_name=fd-test SSL enabled ("
        in mine[1]
    )
    assert "protocol=TLSv1.3" in mine[1] and "bits=256" in mine[1]
    assert (
        "disconnection: session time: 0:00:" in mine[2]
        and "user=pgmonitor database=demo host=127.0.0.1" in mine[2]
    )
    # RDS prefix: "YYYY-MM-DD HH:MM:SS UTC:host(port):user@db:[pid]:"
    assert mine[1][19:24] == " UTC:" and "127.0.0.1(" in mine[1]
    # and the same lines reach CloudWatch Logs, stream named after the instance
    assert env.sink.flush()
    events = env.client("logs").get_log_events(
        logGroupName=env.sink.log_group, logStreamName=env.writer_id, startFromHead=True
    )["events"]
    assert set(mine) <= {e["message"] for e in events}


def test_writer_endpoint_name_and_plain_connection(env: Env) -> None:
    tok = env.token(host=env.writer_endpoint)
    with env.connect("pgmonitor", tok, host=env.writer_endpoint) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    # RDS allows non-TLS unless rds.force_ssl: the line then has no SSL part
    with env.connect("pgmonitor", env.token(), sslmode="disable") as conn:
        pid = conn.info.backend_pid
    wait_for(lambda: any(f"[{pid}]:LOG:  connection authorized" in line for line in env.log_lines()), "line")
    line = next(x for x in env.log_lines() if f"[{pid}]:LOG:  connection authorized" in x)
    assert line.endswith("application_name=fd-test")


def _diag_tail(env: Env, before: int) -> str:
    return env.diag.path.read_text()[before:] if env.diag.path.exists() else ""


def _diag_size(env: Env) -> int:
    return len(env.diag.path.read_text()) if env.diag.path.exists() else 0


REFUSALS: list[tuple[str, Callable[[Env], tuple[str, str]], str, str]] = [
    ("expired", lambda e: ("pgmonitor", "SKEW"), "ExpiredToken", "token expired"),
    ("other-host", lambda e: ("pgmonitor", e.token(host="127.0.0.1")), "InvalidToken", "host '127.0.0.1'"),
    ("other-port", lambda e: ("pgmonitor", e.token(port=5433)), "InvalidToken", "port 5433"),
    ("other-region", lambda e: ("pgmonitor", e.token(region="us-east-2")), "InvalidToken", "'us-east-2'"),
    ("other-user", lambda e: ("oltp_rw_user", e.token()), "InvalidToken", "DBUser 'pgmonitor'"),
    ("garbage", lambda e: ("pgmonitor", "not-a-token"), "InvalidToken", "not a presigned URL"),
    ("unknown-key", lambda e: ("pgmonitor", e.token(creds=Credentials("AKIAUNKNOWN000000000", "s" * 40))),
     "InvalidToken", "unknown access key"),
    ("cluster-identifier", lambda e: ("pgmonitor", e.token(creds=e.by_name)), "NotAuthorized",
     "may not rds-db:connect"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "code", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refusals(env: Env, make: Callable[[Env], tuple[str, str]], code: str, reason: str) -> None:
    user, password = make(env)
    before = _diag_size(env)
    if password == "SKEW":
        password = env.token()
        env.switches.clock_skew_seconds = 1000
    try:
        message = refused(env, user, password)
    finally:
        env.switches.clock_skew_seconds = 0
    assert f'PAM authentication failed for user "{user}"' in message
    assert password not in message
    tail = _diag_tail(env, before)
    assert f"user={user}" in tail and f"code={code}" in tail and reason in tail, tail
    assert password not in env.diag.path.read_text()
    lines = env.log_lines()
    assert any(
        f":{user}@demo:" in x and x.endswith("LOG:  pam_authenticate failed: Permission denied")
        for x in lines
    )
    assert any(x.endswith(f'FATAL:  PAM authentication failed for user "{user}"') for x in lines)
    assert env.sink.flush()
    iam_lines = [
        e["message"]
        for e in env.client("logs").filter_log_events(logGroupName=env.sink.iam_log_group)["events"]
    ]
    assert any(f"user '{user}'" in m and f"Error Code: {code})" in m for m in iam_lines)


def test_not_authorized_names_caller_and_metrics(env: Env) -> None:
    iam = env.client("iam")
    iam.detach_user_policy(UserName=env.monitor_user, PolicyArn=env.monitor_policy_arn)
    try:
        message = refused(env, "pgmonitor", env.token())
    finally:
        iam.attach_user_policy(UserName=env.monitor_user, PolicyArn=env.monitor_policy_arn)
    assert 'PAM authentication failed for user "pgmonitor"' in message
    assert env.sink.flush()
    arn = f"arn:aws:iam::{ACCOUNT}:user/{env.monitor_user}"
    msgs = [
        e["message"]
        for e in env.client("logs").filter_log_events(logGroupName=env.sink.iam_log_group)["events"]
    ]
    line = next(m for m in msgs if arn in m)
    assert (
        f"the IAM policy assumed by the caller '{arn}' is not authorized to perform `rds-db:connect`" in line
    )
    assert line.endswith("(Status Code: 403, Error Code: NotAuthorized)")
    # counters: requests, failures by cause, successes — per instance in AWS/RDS
    cw = env.client("cloudwatch")
    names = {
        m["MetricName"]
        for m in cw.list_metrics(Namespace="AWS/RDS")["Metrics"]
        if {"Name": "DBInstanceIdentifier", "Value": env.writer_id} in m["Dimensions"]
    }
    assert {
        "IamDbAuthConnectionRequests",
        "IamDbAuthConnectionFailure",
        "IamDbAuthConnectionFailureInsufficientPermissions",
    } <= names
    now = datetime.now(UTC)
    stats = cw.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="IamDbAuthConnectionFailureInsufficientPermissions",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": env.writer_id}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=2),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert sum(p["Sum"] for p in stats) >= 1


def test_iam_disabled_only_pam_failure(env: Env) -> None:
    rds = env.client("rds")
    before = _diag_size(env)
    env.sink.flush()
    count = len(env.client("logs").filter_log_events(logGroupName=env.sink.iam_log_group)["events"])
    rds.modify_db_cluster(
        DBClusterIdentifier=env.cluster_id, EnableIAMDatabaseAuthentication=False, ApplyImmediately=True
    )
    try:
        message = refused(env, "pgmonitor", env.token())
    finally:
        rds.modify_db_cluster(
            DBClusterIdentifier=env.cluster_id, EnableIAMDatabaseAuthentication=True, ApplyImmediately=True
        )
    assert 'PAM authentication failed for user "pgmonitor"' in message
    assert "code=- reason=IAM database authentication is disabled" in _diag_tail(env, before)
    env.sink.flush()
    assert len(env.client("logs").filter_log_events(logGroupName=env.sink.iam_log_group)["events"]) == count


def test_throttled(env: Env) -> None:
    before = _diag_size(env)
    env.switches.throttle_per_second = 0  # every new IAM connection is over the limit
    try:
        message = refused(env, "pgmonitor", env.token())
    finally:
        env.switches.throttle_per_second = None
    assert 'PAM authentication failed for user "pgmonitor"' in message
    assert "code=ThrottlingException" in _diag_tail(env, before)


def test_sni_host_must_match_token_host(env: Env) -> None:
    message = refused(env, "pgmonitor", env.token(), host=env.writer_endpoint)
    assert 'PAM authentication failed for user "pgmonitor"' in message


def test_non_rds_iam_user_gets_password_auth(env: Env) -> None:
    message = refused(env, "app_password_user", env.token("app_password_user"))
    assert 'password authentication failed for user "app_password_user"' in message
    assert any(
        x.endswith('FATAL:  password authentication failed for user "app_password_user"')
        for x in env.log_lines()
    )
    with env.connect("app_password_user", "app-password") as conn:
        assert conn.execute("select current_user").fetchone() == ("app_password_user",)
        # relayed over TCP (scram), so the server sees a loopback client
        assert conn.execute(
            "select client_addr::text from pg_stat_activity where pid = pg_backend_pid()"
        ).fetchone() == ("127.0.0.1/32",)


def test_revoked_rds_iam_switches_to_password_auth(env: Env) -> None:
    admin = psycopg.connect(
        host=str(env.pg.socket_dir), port=env.pg.port, user="sandbox_admin", dbname="demo", autocommit=True
    )
    with admin:
        admin.execute("REVOKE rds_iam FROM pgmonitor")  # counts for the very next login, as on RDS
        try:
            message = refused(env, "pgmonitor", env.token())
        finally:
            admin.execute("GRANT rds_iam TO pgmonitor")
    assert 'password authentication failed for user "pgmonitor"' in message
    with env.connect("pgmonitor", env.token()) as conn:  # and the GRANT for the next one
        assert conn.execute("select current_user").fetchone() == ("pgmonitor",)


@pytest.mark.parametrize("sslmode", ["verify-full", "disable"])
def test_cancel_through_front_door(env: Env, sslmode: str) -> None:
    # cancel_safe() uses libpq's (17+) cancel API: over TLS it sends SSLRequest first and encrypts the
    # CancelRequest; without TLS it is plain. Both must reach the real server. (Not conn.cancel(): psycopg
    # keeps the GIL during libpq's blocking PQcancel, which would starve the front door in this process.)
    before = dict(env.door.stats)
    with env.connect("pgmonitor", env.token(), sslmode=sslmode) as conn:
        pid = conn.info.backend_pid
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                conn.execute("select pg_sleep(60)")
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        with psycopg.connect(
            host=str(env.pg.socket_dir),
            port=env.pg.port,
            user="sandbox_admin",
            dbname="demo",
            autocommit=True,
        ) as admin:
            wait_for(
                lambda: (
                    admin.execute("select wait_event from pg_stat_activity where pid = %s", (pid,)).fetchone()
                    == ("PgSleep",)
                ),
                "pg_sleep to run",
            )
        conn.cancel_safe(timeout=20)
        worker.join(30)
        assert not worker.is_alive()
        assert isinstance(outcome[0], psycopg.errors.QueryCanceled)
    after = env.door.stats
    assert after["cancel"] == before["cancel"] + 1
    assert after["cancel_tls"] == before["cancel_tls"] + (sslmode != "disable")


def test_latency_switch_adds_delay(env: Env) -> None:
    def round_trip(conn: psycopg.Connection[Any]) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            conn.execute("select 1").fetchone()
            best = min(best, time.perf_counter() - t0)
        return best

    with env.connect("pgmonitor", env.token()) as conn:
        plain = round_trip(conn)
        env.switches.latency_ms = 50
        try:
            delayed = round_trip(conn)
        finally:
            env.switches.latency_ms = 0
    print(f"select 1 round trip: {plain * 1000:.1f} ms plain, {delayed * 1000:.1f} ms with 50 ms each way")
    assert delayed >= 0.1  # asyncio.sleep never returns early: 50 ms each way is the floor
    assert delayed > plain


def test_protocol_edges_on_a_raw_socket(env: Env) -> None:
    def raw() -> socket.socket:
        return socket.create_connection(("127.0.0.1", env.door.port), timeout=10)

    with raw() as s:  # GSSENCRequest refused, then SSLRequest accepted
        s.sendall(struct.pack("!ii", 8, 80877104))
        assert s.recv(1) == b"N"
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"S"
    with raw() as s:  # unknown protocol version -> FATAL 08P01, not a hang or a crash
        s.sendall(struct.pack("!ii", 8, 2 << 16))
        reply = s.recv(1000)
        assert reply[:1] == b"E" and b"C08P01" in reply and b"unsupported frontend protocol" in reply
    with raw() as s:  # absurd length
        s.sendall(struct.pack("!ii", 1 << 30, 196608))
        assert s.recv(1000)[:1] == b"E"
    with raw() as s:  # client goes away mid-startup
        s.sendall(b"\x00\x00")
    with env.connect("pgmonitor", env.token()) as conn:  # and the door still works
        assert conn.execute("select 1").fetchone() == (1,)


def test_backend_stopped_fails_promptly(env: Env) -> None:
    env.pg.stop()
    try:
        for user, password in (("pgmonitor", env.token()), ("app_password_user", "app-password")):
            message = refused(env, user, password)
            assert "the database system is starting up" in message
    finally:
        env.pg.start()
    with env.connect("pgmonitor", env.token()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_stop_is_idempotent_and_frees_the_port(env: Env) -> None:
    ctx = env.door.ssl_context
    extra = FrontDoor(
        env.endpoint,
        [env.endpoint],
        instance_id=env.writer_id,
        backend_socket_dir=str(env.pg.socket_dir),
        backend_port=int(env.pg.port or 0),
        verifier=env.door.verifier,
        ssl_context=ctx,
    )
    extra.start()
    port = extra.port
    assert port and port != env.door.port and listening_here(port)
    extra.stop()
    extra.stop()
    # Nothing of ours listens there any more. (Binding the port to prove it was free raced with any other
    # process that took the port the moment it was freed, such as a second test run on the machine.)
    assert not listening_here(port)


def test_force_ssl_refuses_plain_connections(env: Env) -> None:
    strict = FrontDoor(
        env.endpoint,
        [env.endpoint],
        instance_id=env.writer_id,
        backend_socket_dir=str(env.pg.socket_dir),
        backend_port=int(env.pg.port or 0),
        verifier=env.door.verifier,
        ssl_context=env.door.ssl_context,
        force_ssl=True,
    )
    with strict:
        kw: dict[str, Any] = {"port": strict.port}
        message = refused(env, "pgmonitor", env.token(), sslmode="disable", **kw)
        assert (
            'no pg_hba.conf entry for host "127.0.0.1", user "pgmonitor", database "demo", no encryption'
            in message
        )
        with env.connect("pgmonitor", env.token(), **kw) as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def test_relay_round_trip_against_direct(env: Env) -> None:
    """Prints what bench/ measures: `select 1` through the front door vs straight to PostgreSQL over TCP."""

    def best_of(conn: psycopg.Connection[Any], n: int = 50) -> float:
        best = float("inf")
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("select 1").fetchone()
            best = min(best, time.perf_counter() - t0)
        return best

    direct = psycopg.connect(
        host="127.0.0.1", port=env.pg.port, user="app_password_user", password="app-password", dbname="demo"
    )
    with (
        direct,
        env.connect("app_password_user", "app-password") as relayed,
        env.connect("app_password_user", "app-password", sslmode="disable") as clear,
    ):
        d, r, c = best_of(direct), best_of(relayed), best_of(clear)
    print(
        f"select 1: direct {d * 1e6:.0f} us; front door: TLS {r * 1e6:.0f} us ({r / d:.2f}x), "
        f"no TLS {c * 1e6:.0f} us ({c / d:.2f}x)"
    )
    assert r > 0 and d > 0 and c > 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_startup_params_parser_never_crashes(body: bytes) -> None:
    from pgiam_sandbox import pgwire

    try:
        params = pgwire.parse_params(body)
    except pgwire.ProtocolError:
        return
    assert "user" in params
    assert pgwire.parse_params(pgwire.startup_message(params)[8:]) == params


def test_rds_log_line_formats(tmp_path: Path) -> None:
    when = datetime(2025, 9, 22, 12, 2, 51, 954321, tzinfo=UTC)
    assert rds_prefix(when, "10.0.0.5", 35620, "pgmonitor", "demo", 29443) == (
        "2025-09-22 12:02:51 UTC:10.0.0.5(35620):pgmonitor@demo:[29443]:"
    )
    assert rds_prefix(when, "10.0.0.5", 1, None, None, 7).endswith(":[unknown]@[unknown]:[7]:")
    lines = {
        code: iam_error_line(when, "user_2", Verdict(False, code, "internal", "arn:aws:iam::1:user/x"))
        for code in ("InvalidToken", "ExpiredToken", "NotAuthorized", "ThrottlingException", "InternalError")
    }
    assert lines["InvalidToken"] == (
        "2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' "
        "because the provided token is malformed or otherwise invalid. "
        "(Status Code: 400, Error Code: InvalidToken)"
    )
    assert (
        "the IAM policy assumed by the caller 'arn:aws:iam::1:user/x' is not authorized to perform "
        in (lines["NotAuthorized"])
    )
    assert lines["NotAuthorized"].endswith("(Status Code: 403, Error Code: NotAuthorized)")
    assert lines["ExpiredToken"].endswith("(Status Code: 400, Error Code: ExpiredToken)")
    assert lines["ThrottlingException"].endswith("(Status Code: 429, Error Code: ThrottlingException)")
    assert lines["InternalError"].endswith("(Status Code: 500, Error Code: InternalError)")
    assert all(
        "internal" not in line.split("because", 1)[1] for line in lines.values() if "Internal" not in line
    )

    sink = RdsLogSink(log_file=tmp_path / "c.log", log_group="g", iam_log_group="i", now=lambda: when)
    sink.disconnection("inst-1", "127.0.0.1", 5000, 42, "u", "demo", 3723.5)
    sink.connection_authorized("inst-1", "127.0.0.1", 5000, 42, "u\nFAKE", "demo", "app\x1b[31m\u202e", None)
    sink.iam_result("inst-1", "u", Verdict(False, None, "IAM off", iam_enabled=False))
    sink.close()
    out = (tmp_path / "c.log").read_text().splitlines()
    assert out[0].endswith(
        "LOG:  disconnection: session time: 1:02:03.500 user=u database=demo host=127.0.0.1 port=5000"
    )
    # names are written as PostgreSQL writes them: unescaped in the prefix, a tab after each line break inside
    # the message (elog.c append_with_tabs); application_name is kept to printable ASCII, as PostgreSQL does
    assert len(out) == 4
    assert out[1].endswith(":u") and out[2].startswith("FAKE@demo:[42]:LOG:  connection authorized: user=u")
    assert out[3] == "\tFAKE database=demo application_name=app\\x1b[31m\\u202e"


def _other_sessions(env: Env) -> list[tuple[str, str]]:
    with psycopg.connect(env.pg.admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT usename, application_name FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
    return sorted((str(u), str(a)) for u, a in rows)


def _give_up_during_stall(env: Env, attempts: int = 3) -> None:
    """Clients that give up (2 s connect timeout) while the server is stopped, concurrently."""
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            env.connect("pgmonitor", env.token(), connect_timeout=2).close()
        except psycopg.OperationalError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == attempts  # nobody got in while the server was stopped
    # psycopg's connect timeout leaves the abandoned libpq connection (and its socket) in a reference cycle
    # with the exception: collect it, so these clients have really gone away, as a timed-out client has.
    errors.clear()
    gc.collect()


def test_a_stall_leaves_no_idle_sessions_behind(env: Env) -> None:
    """Issue 10: each stall leaked sessions: the front door's own admin session (rds_iam membership is asked
    at every login, so during the stall too) or the session it opened for a client that gave up. They must
    all go."""
    with env.connect("pgmonitor", env.token()) as conn:
        conn.execute("select 1")
    before = _other_sessions(env)
    pids = env.pg.processes()
    assert pids and pids[0] == env.pg.pid
    # A backend that was exiting when listed (the session just closed above) becomes a zombie the stopped
    # postmaster cannot reap; once the postmaster runs again it reaps it, so that pid may be gone by the time
    # it is resumed: a process that has exited has nothing to stop or resume.
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        start = len(env.log_lines())
        _give_up_during_stall(env)
        # wait for the front door to give up on its own membership query
        wait_for(
            lambda: sum(STARTING in line for line in env.log_lines()[start:]) >= 3,
            "the front door's refusals",
            timeout=60,
        )
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _other_sessions(env) == before, "no sessions left over from the stall", timeout=30)
    with env.connect("pgmonitor", env.token()) as conn:  # and the door still works
        assert conn.execute("select 1").fetchone() == (1,)


def test_reset_mid_query_switch(env: Env) -> None:
    """`reset_mid_query` (issue 10's "socket reset mid-query"): logins still work, but a query on a session of
    that instance gets the connection reset under the client (RST, not an orderly close), and the backend
    session behind it goes; other instances' ids leave it alone, and switched off the door is normal again."""
    before = _other_sessions(env)
    resets = env.door.stats["reset"]
    with env.connect("pgmonitor", env.token()) as conn:
        conn.execute("select 1")
        env.switches.reset_mid_query = {"some-other-instance"}
        assert conn.execute("select 2").fetchone() == (2,)
        env.switches.reset_mid_query = {env.writer_id}
        try:
            with pytest.raises(psycopg.OperationalError) as lost:
                conn.execute("select 3")
            assert conn.broken
            # a fresh login gets in (authentication is not what fails), then loses its first query too
            with env.connect("pgmonitor", env.token()) as fresh, pytest.raises(psycopg.OperationalError):
                fresh.execute("select 4")
        finally:
            env.switches.reset_mid_query = set()
    assert "reset" in str(lost.value).lower() or "closed" in str(lost.value).lower(), str(lost.value)
    assert env.door.stats["reset"] == resets + 2
    with env.connect("pgmonitor", env.token()) as conn:
        assert conn.execute("select 5").fetchone() == (5,)
    wait_for(lambda: _other_sessions(env) == before, "the reset sessions' backends to go", timeout=30)
