"""`check` against the sandbox: healthy clusters pass, and each injected cause is named at the right step.

Faults go into the shared sandbox with ordinary tools (moto's API for IAM and RDS, SQL as the sandbox's
superuser) and are undone in `finally`; faults of the client side (wrong CA, wrong port, wrong host, wrong
region, skewed clock) are made with configs and patches that touch nothing shared.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keyring
import keyring.backend
import pytest

from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import ClusterConfig, Config, load_config
from pgiam_tui.diagnose import CheckResult, result_to_json, run_check

if TYPE_CHECKING:
    from pgiam_tui.sandbox import Sandbox, SandboxCluster

pytestmark = pytest.mark.timeout(120)

ADMIN = "sandbox-db-admin"
MONITOR_POLICY = "pg-db-monitor-policy"


@pytest.fixture(scope="module")
def config(sandbox: Sandbox) -> Config:
    return load_config(sandbox.profiles_toml)


@pytest.fixture
def sessions(tmp_path: Path) -> SessionFactory:
    # A private CLI cache per test: a fault in one test never leaves cached credentials for the next.
    return SessionFactory(cache_dir=tmp_path / "aws-cli-cache")


def aurora(
    sandbox: Sandbox, config: Config, region: str = "us-east-1"
) -> tuple[ClusterConfig, SandboxCluster]:
    """An Aurora cluster of the sandbox in REGION with its config entry."""
    for c in sandbox.clusters:
        if c.kind == "aurora" and c.region == region:
            return config.cluster(c.name), c
    raise AssertionError(f"no aurora cluster in {region}")


def direct(cfg: ClusterConfig, sb: SandboxCluster, **changes: Any) -> ClusterConfig:
    """CFG as a directly given endpoint (no discovery), through the cluster endpoint's front door."""
    base = replace(
        cfg,
        cluster_id=None,
        instance_id=None,
        endpoint=sb.endpoint,
        port=5432,
        resource_id=sb.resource_id,
        account_id=sb.account_id,
        tunnels=(),
        hostaddr="127.0.0.1",
        local_port=sb.listen_port,
    )
    return replace(base, **changes)


async def check(cfg: ClusterConfig, sessions: SessionFactory, **kwargs: Any) -> CheckResult:
    # A generous cap on waiting for AWS's log line: the check stops waiting as soon as the line is there,
    # and a loaded test machine must not turn "AWS's log decided" into "inference".
    kwargs.setdefault("log_wait_s", 15.0)
    result = await run_check(cfg, sessions, **kwargs)
    assert result.steps[0].name == "config"
    return result


def failed(result: CheckResult) -> str:
    """Name of the first failed step (for readable asserts)."""
    step = result.failed_step
    return step.name if step else "none"


# ------------------------------------------------------------------------------------------------ healthy


async def test_every_cluster_passes_through_the_cross_account_profile(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    assert {c.name for c in config.clusters} == {c.name for c in sandbox.clusters}
    for cfg in config.clusters:
        assert cfg.profile == "instancecrossaccount"
        result = await check(cfg, sessions)
        assert result.ok, (cfg.name, failed(result), result.cause_text, result.evidence)
        assert result.connected and result.cause is None
        assert "assumed-role/pg-monitor-role/" in result.step("credentials").detail
        assert (
            result.step("discovery").status == "ok" and "IAM auth enabled" in result.step("discovery").detail
        )
        assert "tunnel" in result.step("address").detail  # DNS skipped and said so
        assert result.step("tls").status == "ok" and "verified against" in result.step("tls").detail
        assert "pg_monitor" in result.step("session").detail and "rds_iam" in result.step("session").detail
        assert all(s.status in ("ok", "skipped") for s in result.steps)
        members = result.step("members")
        if cfg.cluster_id:  # Aurora: writer and reader logged in one by one, as the console will
            assert members.status == "ok" and "writer" in members.detail and "reader" in members.detail


async def test_tunnel_with_hostaddr_and_local_port_works(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    # The config's own hostaddr/local_port (instead of a per-endpoint tunnels table), and a direct endpoint.
    via_hostaddr = replace(
        cfg, tunnels=(), hostaddr="127.0.0.1", local_port=sb.listen_port, watch_members=False
    )
    for variant in (via_hostaddr, direct(cfg, sb)):
        result = await check(variant, sessions)
        assert result.ok, (failed(result), result.cause_text)
        token = result.step("token").detail
        assert f"signed for {sb.endpoint}:5432" in token
        assert f"127.0.0.1:{sb.listen_port}" in result.step("tcp").detail
        assert result.step("members").status == "skipped"  # only the endpoint itself is watched
    # Watching the members needs a tunnel for each: hostaddr/local_port cover the cluster endpoint only.
    members_too = await check(replace(via_hostaddr, watch_members=True), sessions)
    assert members_too.connected and failed(members_too) == "members"
    assert members_too.fix is not None and "[clusters.tunnels]" in members_too.fix


# ---------------------------------------------------------------------------------------- AWS-side faults


def set_cluster_iam_flag(sandbox: Sandbox, sb: SandboxCluster, enabled: bool) -> None:
    """modify_db_cluster(EnableIAMDatabaseAuthentication=...) through moto's API, as an operator would.

    moto 5.2 stores the new flag but keeps reporting the old one in describe_db_clusters (its `iam_auth`
    attribute is not updated); the sandbox's front door reads the stored flag. Until the sandbox patches
    describe, mirror the value into `iam_auth` so describe tells the truth, as RDS's does.
    """
    from moto.rds.models import rds_backends

    rds = sandbox.boto_session(ADMIN).client("rds", region_name=sb.region)
    rds.modify_db_cluster(
        DBClusterIdentifier=sb.cluster_id, EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=True
    )
    assert sb.cluster_id is not None
    rds_backends[sb.account_id][sb.region].clusters[sb.cluster_id].iam_auth = enabled


def admin_sql(sandbox: Sandbox, sb: SandboxCluster, sql: str) -> None:
    """SQL as the sandbox superuser; the front doors' rds_iam membership cache (~1 s) is dropped after it."""
    sandbox.admin_sql(sb.name, sql)
    forget = getattr(sandbox, "forget_memberships", None)
    if callable(forget):
        forget()
    else:
        time.sleep(1.1)  # the front door's MEMBERSHIP_TTL: let a cached answer from before the change expire


async def test_iam_auth_disabled_on_the_cluster(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    set_cluster_iam_flag(sandbox, sb, False)
    try:
        result = await check(cfg, sessions)
    finally:
        set_cluster_iam_flag(sandbox, sb, True)
    assert not result.ok and not result.connected
    assert result.cause == "iam_auth_disabled", (result.cause_text, result.evidence)
    assert (
        result.step("discovery").status == "failed" and result.step("discovery").cause == "iam_auth_disabled"
    )
    assert result.step("authentication").status == "failed"  # the refusal confirms it
    assert result.fix is not None and "--enable-iam-database-authentication" in result.fix
    assert result.evidence_source == "inference"  # RDS writes no iam-db-auth-error line when IAM is off


async def test_policy_naming_the_cluster_identifier_is_named_with_iam_read(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    assert cfg.iam_profile
    with WrongMonitorPolicy(sandbox, sb, f"dbuser:{sb.cluster_id}/pgmonitor"):
        result = await check(cfg, sessions)
    assert result.cause == "no_policy", (result.cause_text, result.evidence)
    assert failed(result) == "authentication"
    assert result.evidence_source == "aws_log"  # NotAuthorized from the iam-db-auth-error log decided it
    assert any("NotAuthorized" in e for e in result.evidence)
    assert result.cause_text is not None
    assert MONITOR_POLICY in result.cause_text
    assert (
        f"cluster identifier '{sb.cluster_id}'" in result.cause_text and sb.resource_id in result.cause_text
    )
    assert result.fix is not None and MONITOR_POLICY in result.fix and sb.resource_id in result.fix


async def test_policy_mismatch_without_iam_read_or_log_gives_ranked_candidates(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    # A directly given endpoint has no log group and no IAM profile: only inference is left.
    blind = direct(cfg, sb, iam_profile=None)
    with WrongMonitorPolicy(sandbox, sb, f"dbuser:{sb.cluster_id}/pgmonitor"):
        result = await check(blind, sessions)
    assert failed(result) == "authentication"
    assert result.evidence_source == "inference"
    assert result.cause == "no_policy"
    assert result.cause_text is not None and result.cause_text.startswith("most likely")
    assert len(result.candidates) >= 3 and result.candidates[0].startswith("no_policy")


class WrongMonitorPolicy:
    """Make pg-db-monitor-policy's default version name RESOURCE (restored on exit)."""

    def __init__(self, sandbox: Sandbox, sb: SandboxCluster, resource: str) -> None:
        self.iam = sandbox.boto_session(ADMIN).client("iam")
        self.arn = f"arn:aws:iam::{sandbox.db_account_id}:policy/{MONITOR_POLICY}"
        self.document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "rds-db:connect",
                    "Resource": f"arn:aws:rds-db:{sb.region}:{sb.account_id}:{resource}",
                }
            ],
        }

    def __enter__(self) -> None:
        self.old = self.iam.get_policy(PolicyArn=self.arn)["Policy"]["DefaultVersionId"]
        new = self.iam.create_policy_version(
            PolicyArn=self.arn, PolicyDocument=json.dumps(self.document), SetAsDefault=True
        )
        self.new = new["PolicyVersion"]["VersionId"]

    def __exit__(self, *exc: object) -> None:
        self.iam.set_default_policy_version(PolicyArn=self.arn, VersionId=self.old)
        self.iam.delete_policy_version(PolicyArn=self.arn, VersionId=self.new)


async def test_assume_role_denied_by_trust_policy(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, _sb = aurora(sandbox, config)
    iam = sandbox.boto_session(ADMIN).client("iam")
    original = iam.get_role(RoleName="pg-monitor-role")["Role"]["AssumeRolePolicyDocument"]
    nobody = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{sandbox.db_account_id}:role/someone-else"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.update_assume_role_policy(RoleName="pg-monitor-role", PolicyDocument=json.dumps(nobody))
    try:
        result = await check(cfg, sessions)
    finally:
        iam.update_assume_role_policy(
            RoleName="pg-monitor-role",
            PolicyDocument=original if isinstance(original, str) else json.dumps(original),
        )
    assert failed(result) == "credentials" and result.cause == "assume_role_denied"
    assert result.fix and "trust policy" in result.fix
    assert all(s.status == "skipped" for s in result.steps[2:])


async def test_expired_credentials(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, _sb = aurora(sandbox, config)
    first = await check(cfg, sessions)
    assert first.ok
    # Only this test's assumed-role session: other tests' cached pg-monitor-role sessions stay valid.
    credentials = sessions.session(cfg.profile).get_credentials()
    assert credentials is not None
    assert sandbox.expire_sessions("pg-monitor-role", access_key_id=credentials.access_key) == 1
    try:
        sessions.clear()  # boto3 sessions go; the AWS CLI cache keeps the (now expired-to-AWS) credentials
        result = await check(cfg, sessions)
    finally:
        sandbox.renew_credentials()
    assert failed(result) == "credentials", (result.cause, result.cause_text)
    assert result.cause == "credentials_expired"


async def test_unknown_profile(config: Config, sandbox: Sandbox, sessions: SessionFactory) -> None:
    cfg, _sb = aurora(sandbox, config)
    result = await check(replace(cfg, profile="no-such-profile"), sessions)
    assert failed(result) == "credentials" and result.cause == "unknown_profile"
    assert "no-such-profile" in result.step("credentials").detail


async def test_imds_unreachable(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, _sb = aurora(sandbox, config)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "1")
    result = await check(cfg, sessions)
    assert failed(result) == "credentials" and result.cause == "imds_unreachable", result.cause_text


async def test_cluster_in_another_region(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, _sb = aurora(sandbox, config)
    result = await check(replace(cfg, region="eu-west-1"), sessions)
    assert failed(result) == "discovery" and result.cause == "cluster_not_found"
    assert "eu-west-1" in result.step("discovery").detail


# ----------------------------------------------------------------------------------------- database faults


async def test_user_not_in_rds_iam_fails_password_auth(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    admin_sql(sandbox, sb, "REVOKE rds_iam FROM pgmonitor")
    try:
        result = await check(cfg, sessions)
    finally:
        admin_sql(sandbox, sb, "GRANT rds_iam TO pgmonitor")
    assert failed(result) == "authentication" and result.cause == "not_in_rds_iam"
    assert result.fix is not None and "GRANT rds_iam TO pgmonitor" in result.fix
    assert any("28P01" in e or "password authentication failed" in e for e in result.evidence)


async def test_database_does_not_exist(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, _sb = aurora(sandbox, config)
    result = await check(replace(cfg, database="no_such_db"), sessions)
    assert failed(result) == "authentication" and result.cause == "database_missing"
    assert "no_such_db" in (result.cause_text or "")


async def test_connected_but_not_in_pg_monitor(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    admin_sql(sandbox, sb, "REVOKE pg_monitor FROM pgmonitor")
    try:
        result = await check(cfg, sessions)
    finally:
        admin_sql(sandbox, sb, "GRANT pg_monitor TO pgmonitor")
    assert result.connected and not result.ok
    assert failed(result) == "session" and result.cause == "pg_monitor_missing"
    assert result.fix == "GRANT pg_monitor TO pgmonitor;"
    assert any("<insufficient privilege>" in e for e in result.evidence)


# -------------------------------------------------------------------------------------- client-side faults


async def test_token_signed_for_127_0_0_1_is_a_misconfigured_tunnel(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    # The classic mistake: the tunnel's address put where the endpoint belongs.
    wrong = direct(cfg, sb, endpoint="127.0.0.1", port=sb.listen_port, hostaddr=None, local_port=None)
    result = await check(wrong, sessions)
    assert result.step("token").status == "failed" and result.step("token").cause == "token_host_mismatch"
    assert failed(result) == "token"
    assert result.step("tls").status == "failed"  # verify-full: the certificate is not for 127.0.0.1
    assert result.cause == "token_host_mismatch"
    assert result.fix is not None and "hostaddr" in result.fix and str(sb.listen_port) in result.fix
    # Without verify-full TLS passes and RDS refuses the token itself.
    lax = await check(replace(wrong, sslmode="require"), sessions)
    assert lax.step("tls").status == "ok" and lax.step("authentication").status == "failed"
    assert lax.cause == "token_host_mismatch"


async def test_token_signed_for_the_tunnel_port(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    cfg, sb = aurora(sandbox, config)
    wrong = direct(cfg, sb, port=sb.listen_port, local_port=None)  # local port used as the endpoint's port
    result = await check(wrong, sessions)
    assert f"signed for {sb.endpoint}:{sb.listen_port}" in result.step("token").detail
    assert result.step("authentication").status == "failed"
    assert result.cause == "token_host_mismatch"


async def test_region_mismatch(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, sb = aurora(sandbox, config)
    result = await check(direct(cfg, sb, region="us-east-2"), sessions)
    assert result.step("token").cause == "region_mismatch"
    assert result.step("authentication").status == "failed"
    assert result.cause == "region_mismatch"
    assert result.fix is not None and sb.region in result.fix


async def test_clock_skew_from_the_aws_date_header(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client clock 20 minutes slow: its tokens carry an X-Amz-Date RDS finds expired."""
    import botocore.auth

    cfg, _sb = aurora(sandbox, config)
    offset = dt.timedelta(minutes=-20)
    real = botocore.auth.get_current_datetime

    def slow_naive_utc(*args: Any, **kwargs: Any) -> dt.datetime:
        return real(*args, **kwargs) + offset

    monkeypatch.setattr(botocore.auth, "get_current_datetime", slow_naive_utc)
    result = await check(cfg, sessions, clock=lambda: dt.datetime.now(dt.UTC) + offset)
    behind = re.search(r"local clock (\d+) s behind AWS", result.step("credentials").detail)
    assert behind is not None and abs(int(behind.group(1)) - 1200) <= 2  # the Date header has 1 s resolution
    assert result.step("token").cause == "clock_skew"
    assert result.step("authentication").status == "failed"
    assert result.cause == "clock_skew"
    assert result.evidence_source == "aws_log" and any("ExpiredToken" in e for e in result.evidence)


async def test_expired_token_seen_by_a_server_clock_ahead(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    """The sandbox's skew switch: RDS's "now" is 20 minutes ahead; our clock agrees with AWS's Date header."""
    cfg, _sb = aurora(sandbox, config)
    sandbox.switches.clock_skew_seconds = 1200
    try:
        result = await check(cfg, sessions)
    finally:
        sandbox.switches.clock_skew_seconds = 0
    assert result.step("authentication").status == "failed"
    assert result.evidence_source == "aws_log"
    assert result.cause == "token_expired"


async def test_throttled_by_rds(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    """The sandbox's throttle switch at zero new IAM connections per second: AWS's code decides."""
    cfg, _sb = aurora(sandbox, config)
    sandbox.switches.throttle_per_second = 0
    try:
        result = await check(cfg, sessions)
    finally:
        sandbox.switches.throttle_per_second = None
    assert failed(result) == "authentication"
    assert result.evidence_source == "aws_log" and result.cause == "throttled"
    assert any("ThrottlingException" in e for e in result.evidence)


async def test_untrusted_certificate(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, tmp_path: Path
) -> None:
    import trustme

    cfg, _sb = aurora(sandbox, config)
    other = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="not the RDS CA").cert_pem.write_to_path(str(other))
    result = await check(replace(cfg, sslrootcert=str(other)), sessions)
    assert failed(result) == "tls" and result.cause == "untrusted_ca"
    assert any("not the RDS CA" in e for e in result.evidence)
    assert result.fix is not None and "global-bundle.pem" in result.fix


async def test_hostname_mismatch(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, sb = aurora(sandbox, config)
    result = await check(direct(cfg, sb, endpoint="db.example.internal"), sessions)
    assert failed(result) == "tls" and result.cause == "hostname_mismatch"
    assert any(sb.endpoint in e for e in result.evidence)  # names what the certificate does cover


async def test_tcp_refused(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, sb = aurora(sandbox, config)
    result = await check(direct(cfg, sb, local_port=closed_port()), sessions)
    assert failed(result) == "tcp" and result.cause == "tcp_refused"
    assert result.fix is not None and "tunnel" in result.fix


async def test_tcp_timeout(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, sb = aurora(sandbox, config)
    with UnansweringPort() as port:
        result = await check(direct(cfg, sb, local_port=port, connect_timeout_s=0.5), sessions)
    assert failed(result) == "tcp" and result.cause == "tcp_timeout", result.step("tcp").detail


async def test_broken_tunnel_of_one_member(
    sandbox: Sandbox, config: Config, sessions: SessionFactory
) -> None:
    """The cluster endpoint works, but the reader's tunnel is down: the members step names the reader."""
    cfg, sb = aurora(sandbox, config)
    reader = next(i for i in sb.instances if i.role == "reader")
    tunnels = tuple(
        (host, f"127.0.0.1:{closed_port()}" if host == reader.endpoint else target)
        for host, target in cfg.tunnels
    )
    result = await check(replace(cfg, tunnels=tunnels), sessions)
    assert result.connected and not result.ok
    assert failed(result) == "members" and result.cause == "tcp_refused"
    assert reader.id in (result.cause_text or "") and "tunnel" in (result.fix or "")


async def test_dns_failure(sandbox: Sandbox, config: Config, sessions: SessionFactory) -> None:
    cfg, _sb = aurora(sandbox, config)
    # No tunnel: the moto endpoint name has to resolve, and it does not (as a private endpoint from outside).
    result = await check(replace(cfg, tunnels=(), hostaddr=None, local_port=None), sessions)
    assert failed(result) == "address" and result.cause == "dns_failure"
    assert result.fix is not None and "hostaddr" in result.fix


# ----------------------------------------------------------------------------------------------- helpers


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class UnansweringPort:
    """A port whose accept queue is full, so a new connect() hangs until its timeout (SYNs are dropped)."""

    def __enter__(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(4):  # backlog 0 still admits one or two; fill it
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            self.fillers.append(c)
        return port

    def __exit__(self, *exc: object) -> None:
        for c in self.fillers:
            c.close()
        self.listener.close()


# ------------------------------------------------------------------------------------------ password auth


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory OS keyring stand-in (the check reads passwords through the keyring API)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


async def test_password_auth_from_the_keyring(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, _sb = aurora(sandbox, config)
    pw_cfg = replace(cfg, name="pw-user", auth="password", user="app_password_user")
    previous = keyring.get_keyring()
    store = MemoryKeyring()
    keyring.set_keyring(store)
    try:
        missing = await check(pw_cfg, sessions)
        store.set_password("pgiam-tui", "pw-user", "app-password")
        right = await check(pw_cfg, sessions)
        store.set_password("pgiam-tui", "pw-user", "wrong-password")
        wrong = await check(pw_cfg, sessions)
    finally:
        keyring.set_keyring(previous)
    assert failed(missing) == "authentication" and missing.cause == "config_invalid"
    assert missing.fix == "pgiam-tui password set pw-user"
    assert right.step("token").status == "skipped" and right.connected
    # app_password_user is not in pg_monitor: connected, but the console would see no query text.
    assert right.cause == "pg_monitor_missing"
    assert failed(wrong) == "authentication" and wrong.cause == "auth_failed"
    for result in (missing, right, wrong):
        text = repr(result) + json.dumps(result_to_json(result))
        assert "app-password" not in text and "wrong-password" not in text
    assert not any("password" in r.getMessage() and "app-password" in r.getMessage() for r in caplog.records)


async def test_corrupted_token_is_invalid_token_from_the_aws_log(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token damaged on its way (one signature digit changed): RDS says InvalidToken, and that decides."""
    import dataclasses

    import pgiam_tui.aws.tokens as tokens

    cfg, _sb = aurora(sandbox, config)
    real = tokens.make_token

    def corrupted(*args: Any, **kwargs: Any) -> tokens.Token:
        token = real(*args, **kwargs)
        last = token.value[-1]
        return dataclasses.replace(token, value=token.value[:-1] + ("0" if last != "0" else "1"))

    monkeypatch.setattr(tokens, "make_token", corrupted)
    result = await check(cfg, sessions)
    assert result.step("token").status == "ok"  # nothing about its binding is wrong
    assert failed(result) == "authentication"
    assert result.evidence_source == "aws_log" and result.cause == "invalid_token"
    assert any("InvalidToken" in e for e in result.evidence)
