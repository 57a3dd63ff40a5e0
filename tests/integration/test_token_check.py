"""Token verification against moto's in-process backends (moto server in-process, real boto3 tokens)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from pgiam_sandbox.token_check import TokenTarget, TokenVerifier, Verdict, _parse, _Refused

from helpers.moto_server import create_aurora_cluster, running_moto
from helpers.moto_server import policy_document as _policy

REGION = "us-east-1"
DB = "123456789012"  # moto's default account: requests with unknown keys land there


@dataclass
class Switches:
    clock_skew_seconds: float = 0.0
    throttle_per_second: float | None = None


@dataclass
class World:
    iam: Any
    rds: Any
    cluster_id: str
    cluster_rid: str
    cluster_endpoint: str
    writer_endpoint: str
    instance_rid: str
    instance_endpoint: str
    alice: Credentials  # IAM user with pg-db-monitor-policy (dbuser:*/pgmonitor)
    alice_name: str
    rw: Credentials  # assumed pgdemo-oltp-rw-role (oltp_rw_user on the cluster's resource id)
    rw_arn: str
    rw_role: str
    grouped: Credentials  # IAM user granted through a group's inline policy
    aurora: TokenTarget
    instance: TokenTarget


def _creds(key: dict[str, Any]) -> Credentials:
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"], key.get("SessionToken"))


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server in this process, on a free loopback port (its backends are what token_check reads).

    Not mock_aws: that resets every moto backend of the process, which would wipe a session-wide sandbox.
    Each test makes its own uniquely named resources in moto's default account instead.
    """
    with running_moto() as url:
        yield url


def _client(service: str, url: str, creds: Credentials | None = None) -> Any:
    key = creds or Credentials("testing", "testing")
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=REGION, endpoint_url=url, aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret_key, aws_session_token=key.token,
    )  # fmt: skip


@pytest.fixture
def world(moto_url: str) -> World:
    sfx = uuid.uuid4().hex[:8]
    iam = _client("iam", moto_url)
    rds = _client("rds", moto_url)
    cluster_id = f"pgdemo-{sfx}"
    cl, writer = create_aurora_cluster(rds, cluster_id)
    inst = rds.create_db_instance(
        DBInstanceIdentifier=f"pgdemo-rds-{sfx}",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="postgres",
        MasterUserPassword="postgres-pw",
        AllocatedStorage=20,
        EnableIAMDatabaseAuthentication=True,
    )["DBInstance"]
    rid = cl["DbClusterResourceId"]
    mon = iam.create_policy(
        PolicyName=f"pg-db-monitor-policy-{sfx}",
        PolicyDocument=_policy(f"arn:aws:rds-db:{REGION}:{DB}:dbuser:*/pgmonitor"),
    )["Policy"]
    alice_name = f"alice-{sfx}"
    alice_arn = iam.create_user(UserName=alice_name)["User"]["Arn"]
    iam.attach_user_policy(UserName=alice_name, PolicyArn=mon["Arn"])
    alice = _creds(iam.create_access_key(UserName=alice_name)["AccessKey"])
    rw_role = f"pgdemo-oltp-rw-role-{sfx}"
    rwpol = iam.create_policy(
        PolicyName=f"pgdemo-oltp-rw-user-policy-{sfx}",
        PolicyDocument=_policy(f"arn:aws:rds-db:{REGION}:{DB}:dbuser:{rid}/oltp_rw_user"),
    )["Policy"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=rw_role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.attach_role_policy(RoleName=rw_role, PolicyArn=rwpol["Arn"])
    iam.put_user_policy(
        UserName=alice_name, PolicyName="assume", PolicyDocument=_policy(role["Arn"], action="sts:AssumeRole")
    )
    assumed = _client("sts", moto_url, alice).assume_role(RoleArn=role["Arn"], RoleSessionName="app-1")
    group = f"dbas-{sfx}"
    iam.create_group(GroupName=group)
    iam.put_group_policy(
        GroupName=group, PolicyName="connect-any", PolicyDocument=_policy(f"arn:aws:rds-db:*:{DB}:dbuser:*/*")
    )
    iam.create_user(UserName=f"grace-{sfx}")
    iam.add_user_to_group(GroupName=group, UserName=f"grace-{sfx}")
    grouped = _creds(iam.create_access_key(UserName=f"grace-{sfx}")["AccessKey"])
    writer_ep = writer["Endpoint"]["Address"]
    aurora = TokenTarget(DB, REGION, cluster_id, f"{cluster_id}-writer", (cl["Endpoint"], writer_ep))
    instance = TokenTarget(DB, REGION, None, f"pgdemo-rds-{sfx}", (inst["Endpoint"]["Address"],))
    return World(
        iam, rds, cluster_id, rid, cl["Endpoint"], writer_ep, inst["DbiResourceId"],
        inst["Endpoint"]["Address"], alice, alice_name, _creds(assumed["Credentials"]),
        assumed["AssumedRoleUser"]["Arn"], rw_role, grouped, aurora, instance,
    )  # fmt: skip


def token(creds: Credentials, host: str, user: str, port: int = 5432, region: str = REGION) -> str:
    client = boto3.client(
        "rds",
        region_name=region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region))


def presign(creds: Credentials, host: str, user: str, expires: int = 900) -> str:
    """A token made with botocore's signer directly (to vary what generate_db_auth_token fixes)."""
    req = AWSRequest(method="GET", url=f"https://{host}:5432/", data={"Action": "connect", "DBUser": user})
    SigV4QueryAuth(creds, "rds-db", REGION, expires=expires).add_auth(req)
    assert req.url is not None
    return req.url[len("https://") :]


def check(verdict: Verdict, code: str | None, fragment: str, *, tok: str | None = None) -> None:
    assert not verdict.ok
    assert verdict.error_code == code, verdict.reason
    assert fragment in verdict.reason, verdict.reason
    if tok:
        assert tok not in verdict.reason and tok.split("X-Amz-Signature=")[-1] not in verdict.reason


def test_user_key_token_is_accepted(world: World) -> None:
    v = TokenVerifier()
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = v.verify(tok, "pgmonitor", world.aurora)
    assert verdict.ok, verdict.reason
    assert verdict.caller_arn == f"arn:aws:iam::{DB}:user/{world.alice_name}"
    assert verdict.resource_arn == f"arn:aws:rds-db:{REGION}:{DB}:dbuser:{world.cluster_rid}/pgmonitor"
    assert verdict.error_code is None and verdict.status_code is None
    # the instance endpoint of the writer is the same listener's other name
    assert v.verify(token(world.alice, world.writer_endpoint, "pgmonitor"), "pgmonitor", world.aurora).ok


def test_assumed_role_token_is_accepted(world: World) -> None:
    tok = token(world.rw, world.cluster_endpoint, "oltp_rw_user")
    verdict = TokenVerifier().verify(tok, "oltp_rw_user", world.aurora)
    assert verdict.ok, verdict.reason
    assert verdict.caller_arn == world.rw_arn
    assert f":assumed-role/{world.rw_role}/app-1" in world.rw_arn


def test_group_policy_grants(world: World) -> None:
    tok = token(world.grouped, world.cluster_endpoint, "oltp_ro_user")
    assert TokenVerifier().verify(tok, "oltp_ro_user", world.aurora).ok


def test_rds_instance_uses_dbi_resource_id(world: World) -> None:
    v = TokenVerifier()
    tok = token(world.alice, world.instance_endpoint, "pgmonitor")
    verdict = v.verify(tok, "pgmonitor", world.instance)
    assert verdict.ok, verdict.reason
    assert verdict.resource_arn is not None and f"dbuser:{world.instance_rid}/" in verdict.resource_arn
    # the rw policy names the cluster's resource id, so it does not reach the instance
    tok = token(world.rw, world.instance_endpoint, "oltp_rw_user")
    check(v.verify(tok, "oltp_rw_user", world.instance), "NotAuthorized", world.rw_arn)


@pytest.mark.parametrize("skew", [901.0, 3600.0])
def test_expired_token_via_clock_skew(world: World, skew: float) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = TokenVerifier(Switches(clock_skew_seconds=skew)).verify(tok, "pgmonitor", world.aurora)
    check(verdict, "ExpiredToken", "token expired", tok=tok)
    assert verdict.status_code == 400


def test_skew_within_validity_is_fine(world: World) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    assert TokenVerifier(Switches(clock_skew_seconds=600)).verify(tok, "pgmonitor", world.aurora).ok


def test_token_from_the_future(world: World) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = TokenVerifier(now=lambda: time.time() - 400).verify(tok, "pgmonitor", world.aurora)
    check(verdict, "InvalidToken", "in the future", tok=tok)


def test_expires_longer_than_15_minutes(world: World) -> None:
    tok = presign(world.alice, world.cluster_endpoint, "pgmonitor", expires=3600)
    check(
        TokenVerifier().verify(tok, "pgmonitor", world.aurora), "InvalidToken", "X-Amz-Expires 3600", tok=tok
    )
    # the same signer with 900 s is accepted: presign() is a faithful token maker
    tok = presign(world.alice, world.cluster_endpoint, "pgmonitor")
    assert TokenVerifier().verify(tok, "pgmonitor", world.aurora).ok


@pytest.mark.parametrize(
    ("host", "port", "region", "fragment"),
    [
        ("127.0.0.1", 5432, REGION, "signed for host '127.0.0.1'"),
        (None, 5433, REGION, "port 5433"),
        (None, 5432, "us-east-2", "region 'us-east-2'"),
    ],
    ids=["other-host", "other-port", "other-region"],
)
def test_binding_mismatches(world: World, host: str | None, port: int, region: str, fragment: str) -> None:
    tok = token(world.alice, host or world.cluster_endpoint, "pgmonitor", port=port, region=region)
    check(TokenVerifier().verify(tok, "pgmonitor", world.aurora), "InvalidToken", fragment, tok=tok)


def test_sni_narrows_the_host(world: World) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = TokenVerifier().verify(tok, "pgmonitor", world.aurora, sni_host=world.writer_endpoint)
    check(verdict, "InvalidToken", "signed for host", tok=tok)
    assert TokenVerifier().verify(tok, "pgmonitor", world.aurora, sni_host=world.cluster_endpoint).ok


def test_other_user(world: World) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    check(
        TokenVerifier().verify(tok, "oltp_rw_user", world.aurora),
        "InvalidToken",
        "DBUser 'pgmonitor'",
        tok=tok,
    )


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hunter2",
        "host:5432/?Action=connect",
        "a" * 9000,
        "host:notaport/?Action=connect&DBUser=x",
        "host:5432/?Action=connect&Action=connect&DBUser=x",
        "host:5432/?\x00",
        "ünïcode",
    ],
    ids=["empty", "password", "missing-params", "too-long", "bad-port", "repeated", "nul", "unicode"],
)
def test_garbage(world: World, garbage: str) -> None:
    check(TokenVerifier().verify(garbage, "pgmonitor", world.aurora), "InvalidToken", "")


def test_tampered_signature_and_user(world: World) -> None:
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    sig = tok.rsplit("X-Amz-Signature=", 1)[1]
    bad = tok.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    check(
        TokenVerifier().verify(bad, "pgmonitor", world.aurora),
        "InvalidToken",
        "signature does not match",
        tok=bad,
    )
    forged = tok.replace("DBUser=pgmonitor", "DBUser=oltp_rw_user")
    check(
        TokenVerifier().verify(forged, "oltp_rw_user", world.aurora),
        "InvalidToken",
        "signature does not match",
    )


def test_unknown_key(world: World) -> None:
    tok = token(Credentials("AKIAUNKNOWNKEY000000", "x" * 40), world.cluster_endpoint, "pgmonitor")
    check(
        TokenVerifier().verify(tok, "pgmonitor", world.aurora),
        "InvalidToken",
        "unknown access key AKIAUNKN",
        tok=tok,
    )


def test_sts_credentials_need_their_session_token(world: World) -> None:
    no_token = Credentials(world.rw.access_key, world.rw.secret_key, None)
    tok = presign(no_token, world.cluster_endpoint, "oltp_rw_user")
    check(
        TokenVerifier().verify(tok, "oltp_rw_user", world.aurora),
        "InvalidToken",
        "X-Amz-Security-Token",
        tok=tok,
    )
    wrong = Credentials(world.rw.access_key, world.rw.secret_key, "not-the-session-token")
    tok = presign(wrong, world.cluster_endpoint, "oltp_rw_user")
    check(
        TokenVerifier().verify(tok, "oltp_rw_user", world.aurora),
        "InvalidToken",
        "X-Amz-Security-Token",
        tok=tok,
    )


def test_inactive_key(world: World) -> None:
    world.iam.update_access_key(
        UserName=world.alice_name, AccessKeyId=world.alice.access_key, Status="Inactive"
    )
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    check(TokenVerifier().verify(tok, "pgmonitor", world.aurora), "InvalidToken", "inactive", tok=tok)


def test_detached_policy_is_not_authorized(world: World) -> None:
    v = TokenVerifier()
    tok = token(world.rw, world.cluster_endpoint, "oltp_rw_user")
    assert v.verify(tok, "oltp_rw_user", world.aurora).ok
    (arn,) = [
        p["PolicyArn"]
        for p in world.iam.list_attached_role_policies(RoleName=world.rw_role)["AttachedPolicies"]
    ]
    world.iam.detach_role_policy(RoleName=world.rw_role, PolicyArn=arn)
    verdict = v.verify(tok, "oltp_rw_user", world.aurora)  # same token: the policy is read at login time
    check(verdict, "NotAuthorized", "no policy of 0 allows it", tok=tok)
    assert verdict.caller_arn == world.rw_arn and verdict.status_code == 403


def test_policy_naming_cluster_identifier(world: World) -> None:
    world.iam.put_role_policy(
        RoleName=world.rw_role,
        PolicyName="by-name",
        PolicyDocument=_policy(f"arn:aws:rds-db:{REGION}:{DB}:dbuser:{world.cluster_id}/oltp_ro_user"),
    )
    tok = token(world.rw, world.cluster_endpoint, "oltp_ro_user")
    verdict = TokenVerifier().verify(tok, "oltp_ro_user", world.aurora)
    check(verdict, "NotAuthorized", f"dbuser:{world.cluster_rid}/oltp_ro_user", tok=tok)


def test_explicit_deny(world: World) -> None:
    world.iam.put_user_policy(
        UserName=world.alice_name, PolicyName="no-db", PolicyDocument=_policy("*", effect="Deny")
    )
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = TokenVerifier().verify(tok, "pgmonitor", world.aurora)
    check(verdict, "NotAuthorized", f"explicit Deny in user/{world.alice_name}/no-db")


def test_iam_auth_disabled_has_no_iam_code(world: World) -> None:
    rds, cid = world.rds, world.cluster_id
    rds.modify_db_cluster(
        DBClusterIdentifier=cid, EnableIAMDatabaseAuthentication=False, ApplyImmediately=True
    )
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    verdict = TokenVerifier().verify(tok, "pgmonitor", world.aurora)
    check(verdict, None, f"IAM database authentication is disabled on cluster {cid}", tok=tok)
    assert verdict.iam_enabled is False
    rds.modify_db_cluster(
        DBClusterIdentifier=cid, EnableIAMDatabaseAuthentication=True, ApplyImmediately=True
    )
    assert TokenVerifier().verify(tok, "pgmonitor", world.aurora).ok


def test_throttling_per_instance(world: World) -> None:
    clock = [1000.0]
    switches = Switches(throttle_per_second=2)
    v = TokenVerifier(switches, now=lambda: clock[0])
    tok = presign(world.alice, world.cluster_endpoint, "pgmonitor")
    clock[0] = time.time()
    assert v.verify(tok, "pgmonitor", world.aurora).ok
    assert v.verify(tok, "pgmonitor", world.aurora).ok
    verdict = v.verify(tok, "pgmonitor", world.aurora)
    check(verdict, "ThrottlingException", "more than 2 new IAM connections", tok=tok)
    assert verdict.status_code == 429
    # another instance has its own budget; a second later the budget is back
    other = replace(world.aurora, instance_id=f"{world.cluster_id}-reader")
    assert v.verify(tok, "pgmonitor", other).ok
    clock[0] += 1.5
    assert v.verify(tok, "pgmonitor", world.aurora).ok
    switches.throttle_per_second = None
    for _ in range(5):
        assert v.verify(tok, "pgmonitor", world.aurora).ok


def test_unknown_cluster_is_internal_error(world: World) -> None:
    target = replace(world.aurora, cluster_id="no-such-cluster")
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    check(TokenVerifier().verify(tok, "pgmonitor", target), "InternalError", "cannot read RDS state", tok=tok)


def test_for_target_binds(world: World) -> None:
    verify = TokenVerifier().for_target(world.aurora)
    tok = token(world.alice, world.cluster_endpoint, "pgmonitor")
    assert verify(tok, "pgmonitor", None).ok
    assert not verify(tok, "pgmonitor", world.writer_endpoint).ok


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises_anything_but_a_refusal(text: str) -> None:
    try:
        _parse(text)
    except _Refused as ref:
        assert ref.code == "InvalidToken"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "Action",
                "DBUser",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
                "X-Amz-Security-Token",
                "Other",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
    )
)
def test_structured_garbage_is_invalid_token_not_a_crash(params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    tok = "h.example.com:5432/?" + urlencode(params)
    target = TokenTarget(DB, REGION, None, "no-such-instance-needed", ("h.example.com",))
    verifier = TokenVerifier()
    try:
        verifier._check(tok, "u", target, None, "arn:aws:rds-db:us-east-1:1:dbuser:db-X/u")
    except _Refused as ref:
        assert ref.code in ("InvalidToken", "ExpiredToken")
