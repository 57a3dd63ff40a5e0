"""`check` against the sandbox: healthy clusters pass; AWS-side and database faults are named correctly.

Faults go into the shared sandbox with ordinary tools (moto's API for IAM and RDS, SQL as the sandbox's
superuser) and are undone in `finally`; faults of the client side (wrong CA, wrong port, wrong host, wrong
region, skewed clock) are made with configs and patches that touch nothing shared.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from helpers.check_support import (  # noqa: F401 (fixtures: sessions, config)
    ADMIN,
    MONITOR_POLICY,
    RefusedPort,
    WrongMonitorPolicy,
    admin_sql,
    aurora,
    check,
    direct,
    failed,
    private_sessions,
    sandbox_config,
    set_cluster_iam_flag,
)
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


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
    with RefusedPort() as port:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}/")
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
    # the role is quoted as an identifier (issue 10: a hint never carries injectable SQL)
    assert result.fix is not None and 'GRANT rds_iam TO "pgmonitor";' in result.fix
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
    assert result.fix == 'GRANT pg_monitor TO "pgmonitor";'
    assert any("<insufficient privilege>" in e for e in result.evidence)
