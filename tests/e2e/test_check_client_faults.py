"""`check` against the sandbox, client-side faults: token binding, clock, TLS, TCP, DNS, members, passwords.

Client-side faults (wrong CA, wrong port, wrong host, wrong region, skewed clock, a corrupted token, a dead
tunnel) are made with configs and patches that touch nothing shared; the sandbox's own switches (server clock,
throttling) are set back in `finally`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers.check_support import (  # noqa: F401 (fixtures: sessions, config)
    RefusedPort,
    UnansweringPort,
    aurora,
    check,
    direct,
    failed,
    private_sessions,
    sandbox_config,
)
from helpers.memory_keyring import MemoryKeyring, installed_keyring
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config
from pgiam_tui.diagnose import result_to_json

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)


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
    assert f'endpoint = "{sb.endpoint}"' in result.fix  # read from the certificate's names
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
    """A config region the endpoint contradicts is refused at discovery, naming both regions: no token is
    signed for a region RDS would refuse, so nothing reaches the server."""
    result = await check(direct(cfg, sb, region="us-east-2"), sessions)
    assert failed(result) == "discovery" and result.step("discovery").cause == "region_mismatch"
    assert sb.region in result.step("discovery").detail and "us-east-2" in result.step("discovery").detail
    assert result.step("token").status == "skipped"
    assert result.step("authentication").status == "skipped"
    assert result.cause == "region_mismatch"
    assert result.fix is not None and sb.region in result.fix


async def test_clock_skew_from_the_aws_date_header(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client clock 20 minutes slow: its tokens carry an X-Amz-Date RDS finds expired."""
    import botocore.auth

    cfg, _sb = aurora(sandbox, config)
    offset = dt.timedelta(minutes=-20)
    real = botocore.auth.get_current_datetime  # type: ignore[attr-defined]  # imported from botocore.compat

    def slow_naive_utc(*args: Any, **kwargs: Any) -> dt.datetime:
        now: dt.datetime = real(*args, **kwargs)
        return now + offset

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
    with RefusedPort() as port:
        result = await check(direct(cfg, sb, local_port=port), sessions)
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
    with RefusedPort() as port:
        tunnels = tuple(
            (host, f"127.0.0.1:{port}" if host == reader.endpoint else target) for host, target in cfg.tunnels
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


async def test_password_auth_from_the_keyring(
    sandbox: Sandbox, config: Config, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, _sb = aurora(sandbox, config)
    pw_cfg = replace(cfg, name="pw-user", auth="password", user="app_password_user")
    with installed_keyring(MemoryKeyring()) as store:
        missing = await check(pw_cfg, sessions)
        store.set_password("pgiam-tui", "pw-user", "app-password")
        right = await check(pw_cfg, sessions)
        store.set_password("pgiam-tui", "pw-user", "wrong-password")
        wrong = await check(pw_cfg, sessions)
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
