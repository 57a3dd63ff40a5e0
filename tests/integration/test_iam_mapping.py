"""IAM mapping: findings on a table of cases (pure), then the collector end to end on a real seeded
PostgreSQL 15 (ROLES_SQL) and moto's IAM over HTTP (the scenario's policies)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest

from helpers.local_pg import running_postgres
from helpers.moto_server import moto_session, running_moto
from pgiam_tui.aws.iam_read import AccessAdvice, IamInventory, IamReadError, Principal
from pgiam_tui.aws.policy import NamedPolicy
from pgiam_tui.collect.iam_findings import MappingContext, RoleRow, build_snapshot
from pgiam_tui.collect.iam_mapping import IamMappingCollector
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import IamSnapshot
from pgiam_tui.vocabulary import FindingCode

REGION = "us-east-1"
ACCT = "111111111111"
RID = "cluster-ABCDEFGHIJKLMNOP"
NOW = datetime(2025, 9, 22, 12, 0, tzinfo=UTC)


def _policy(name: str, *resources: str, action: str = "rds-db:connect") -> NamedPolicy:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": list(resources)}],
    }
    return NamedPolicy(name=name, arn=f"arn:aws:iam::{ACCT}:policy/{name}", document=doc)


def _arn(user: str, rid: str = RID) -> str:
    return f"arn:aws:rds-db:{REGION}:{ACCT}:dbuser:{rid}/{user}"


MONITOR_ROLE = f"arn:aws:iam::{ACCT}:role/pg-monitor-role"
RW_ROLE = f"arn:aws:iam::{ACCT}:role/pgdemo-oltp-rw-role"
RO_ROLE = f"arn:aws:iam::{ACCT}:role/pgdemo-oltp-ro-role"

SCENARIO = (
    Principal(
        MONITOR_ROLE,
        "role",
        "pg-monitor-role",
        (_policy("pg-db-monitor-policy", f"arn:aws:rds-db:{REGION}:{ACCT}:dbuser:*/pgmonitor"),),
    ),
    Principal(RW_ROLE, "role", "pgdemo-oltp-rw-role", (_policy("oltp-rw-policy", _arn("oltp_rw_user")),)),
    Principal(RO_ROLE, "role", "pgdemo-oltp-ro-role", (_policy("oltp-ro-policy", _arn("oltp_ro_user")),)),
    Principal(f"arn:aws:iam::{ACCT}:user/reader", "user", "reader", ()),
)

ROLES = (
    RoleRow("app_password_user", True, False, False, False, ("oltp_ro_role",)),
    RoleRow("oltp_ro_role", False, False, False, False, ()),
    RoleRow("oltp_ro_user", True, False, False, False, ("oltp_ro_role", "rds_iam")),
    RoleRow("oltp_rw_role", False, False, False, False, ()),
    RoleRow("oltp_rw_user", True, False, False, False, ("oltp_rw_role", "rds_iam")),
    RoleRow("pg_monitor", False, False, False, False, ("pg_read_all_settings", "pg_read_all_stats")),
    RoleRow("pg_read_all_stats", False, False, False, False, ()),
    RoleRow("pg_read_all_settings", False, False, False, False, ()),
    RoleRow("pgmonitor", True, False, False, False, ("pg_monitor", "rds_iam")),
    RoleRow("rds_iam", False, False, False, False, ()),
    RoleRow("sandbox_admin", True, True, True, True, ()),
)

CTX = MappingContext(
    region=REGION,
    account_id=ACCT,
    resource_id=RID,
    iam_auth_enabled=True,
    identifiers=frozenset({"pgdemo-1", "pgdemo-1-writer", "pgdemo-1-reader"}),
    monitor_user="pgmonitor",
    kind="aurora",
    cluster_label="pgdemo-1",
)


def _inv(*principals: Principal) -> IamInventory:
    return IamInventory(ACCT, principals, NOW)


def _codes(snap: IamSnapshot) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.user) for f in snap.findings)


def test_scenario_mapping_users_grants_and_the_wildcard_finding() -> None:
    snap = build_snapshot(CTX, ROLES, _inv(*SCENARIO), now=NOW)
    assert snap.iam_readable and snap.iam_auth_enabled and snap.resource_id == RID
    users = {u.name: u for u in snap.users}
    assert sorted(users) == [
        "app_password_user",
        "oltp_ro_user",
        "oltp_rw_user",
        "pgmonitor",
        "sandbox_admin",
    ]
    mon = users["pgmonitor"]
    assert mon.rds_iam and mon.can_login and not mon.superuser_like
    assert mon.member_of == ("pg_monitor", "rds_iam")
    assert [(g.principal_arn, g.policy_name, g.conditional) for g in mon.iam_principals] == [
        (MONITOR_ROLE, "pg-db-monitor-policy", False)
    ]
    assert [g.principal_arn for g in users["oltp_rw_user"].iam_principals] == [RW_ROLE]
    assert users["app_password_user"].rds_iam is False
    assert users["sandbox_admin"].superuser_like
    assert _codes(snap) == [("wildcard_grant", "pgmonitor")]
    (wild,) = snap.findings
    assert "dbuser:*/pgmonitor" in wild.message and RID in wild.fix
    assert [f.code for f in mon.findings] == ["wildcard_grant"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("iam_off", ("iam_auth_disabled", None)),
        ("ghost_grant", ("orphan_grant", None)),
        ("identifier_grant", ("wrong_resource_id", "oltp_rw_user")),
        ("not_an_id_grant", ("wrong_resource_id", "oltp_rw_user")),
        ("new_iam_user", ("orphan_db_user", "newbie")),
        ("no_pg_monitor", ("no_pg_monitor", "pgmonitor")),
    ],
)
def test_fault_findings(change: str, expected: tuple[str, str | None]) -> None:
    ctx, roles, principals = CTX, list(ROLES), list(SCENARIO)
    if change == "iam_off":
        ctx = replace(CTX, iam_auth_enabled=False)
    elif change == "ghost_grant":
        principals.append(
            Principal(
                f"arn:aws:iam::{ACCT}:role/ghost",
                "role",
                "ghost",
                (_policy("ghost-policy", _arn("ghost_user")),),
            )
        )
    elif change == "identifier_grant":
        principals[1] = replace(
            principals[1], policies=(_policy("oltp-rw-policy", _arn("oltp_rw_user", "pgdemo-1")),)
        )
    elif change == "not_an_id_grant":
        principals[1] = replace(
            principals[1], policies=(_policy("oltp-rw-policy", _arn("oltp_rw_user", "mydb")),)
        )
    elif change == "new_iam_user":
        roles.append(RoleRow("newbie", True, False, False, False, ("rds_iam",)))
    elif change == "no_pg_monitor":
        roles = [replace(r, member_of=("rds_iam",)) if r.name == "pgmonitor" else r for r in roles]
    snap = build_snapshot(ctx, roles, _inv(*principals), now=NOW)
    assert expected in _codes(snap)
    assert set(_codes(snap)) - {expected} <= {
        ("wildcard_grant", "pgmonitor"),
        ("orphan_db_user", "oltp_rw_user"),
    }
    f = next(f for f in snap.findings if f.code == expected[0])
    assert f.fix  # every finding says how to fix it
    if expected[0] == "wrong_resource_id":
        assert f.severity == "critical" and _arn("oltp_rw_user") in f.fix
        # the broken grant no longer gives oltp_rw_user any principal: orphan too
        assert ("orphan_db_user", "oltp_rw_user") in _codes(snap)


def test_grant_on_another_clusters_resource_id_is_not_a_finding_here() -> None:
    other = Principal(
        f"arn:aws:iam::{ACCT}:role/x",
        "role",
        "x",
        (_policy("other-cluster", _arn("oltp_rw_user", "cluster-ZZZZ"), _arn("ghost", "cluster-ZZZZ")),),
    )
    snap = build_snapshot(CTX, ROLES, _inv(*SCENARIO, other), now=NOW)
    assert _codes(snap) == [("wildcard_grant", "pgmonitor")]


def test_admin_star_is_an_info_wildcard_and_a_grant() -> None:
    admin = Principal(
        f"arn:aws:iam::{ACCT}:user/admin", "user", "admin", (_policy("Admin", "*", action="*"),)
    )
    snap = build_snapshot(CTX, ROLES, _inv(*SCENARIO, admin), now=NOW)
    infos = [f for f in snap.findings if f.code == "wildcard_grant" and f.severity == "info"]
    assert len(infos) == 1 and "'*'" in infos[0].message
    mon = next(u for u in snap.users if u.name == "pgmonitor")
    assert {g.principal_arn for g in mon.iam_principals} == {MONITOR_ROLE, admin.arn}
    # an rds_iam user that only an admin's "*" reaches is still an orphan: no policy names it
    roles = [*ROLES, RoleRow("newbie", True, False, False, False, ("rds_iam",))]
    snap = build_snapshot(CTX, roles, _inv(*SCENARIO, admin), now=NOW)
    (orphan,) = [f for f in snap.findings if f.code == "orphan_db_user"]
    assert orphan.user == "newbie" and "broad" in orphan.message


def test_conditional_grant_is_reported_as_conditional() -> None:
    doc = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": _arn("oltp_ro_user"),
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        ]
    }
    ro = replace(SCENARIO[2], policies=(NamedPolicy("cond", None, doc),))
    snap = build_snapshot(CTX, ROLES, _inv(SCENARIO[0], SCENARIO[1], ro), now=NOW)
    (g,) = next(u for u in snap.users if u.name == "oltp_ro_user").iam_principals
    assert g.conditional
    assert ("orphan_db_user", "oltp_ro_user") not in _codes(snap)


def test_iam_unreadable_names_the_missing_permission() -> None:
    err = IamReadError(
        "iam:GetAccountAuthorizationDetails failed: AccessDenied",
        code="AccessDenied",
        permission="iam:GetAccountAuthorizationDetails",
    )
    snap = build_snapshot(CTX, ROLES, None, iam_error=err, iam_profile="iam-reader", now=NOW)
    assert not snap.iam_readable
    assert _codes(snap) == [("iam_unreadable", None)]
    (f,) = snap.findings
    assert "iam:GetAccountAuthorizationDetails" in f.fix and "iam-reader" in f.message
    # without IAM there are no orphan findings (we cannot know)
    assert all(not u.iam_principals for u in snap.users)


def test_iam_of_another_account_is_not_used() -> None:
    inv = IamInventory("999999999999", SCENARIO, NOW)
    snap = build_snapshot(CTX, ROLES, inv, iam_profile="elsewhere", now=NOW)
    assert not snap.iam_readable
    assert _codes(snap) == [("iam_unreadable", None)]
    assert "999999999999" in snap.findings[0].message and ACCT in snap.findings[0].fix


def test_unused_grant_from_access_advisor() -> None:
    advice = {
        RW_ROLE: AccessAdvice(RW_ROLE, NOW - timedelta(days=200)),
        RO_ROLE: AccessAdvice(RO_ROLE, NOW - timedelta(days=3)),
        MONITOR_ROLE: AccessAdvice(MONITOR_ROLE, None),
    }
    snap = build_snapshot(CTX, ROLES, _inv(*SCENARIO), advice=advice, now=NOW)
    unused = sorted((f.user, f.severity) for f in snap.findings if f.code == "unused_grant")
    assert unused == [("oltp_rw_user", "info"), ("pgmonitor", "info")]
    rw = next(u for u in snap.users if u.name == "oltp_rw_user")
    assert rw.iam_principals[0].last_used == NOW - timedelta(days=200)


def test_a_grant_for_a_login_user_outside_rds_iam_is_critical() -> None:
    """Without rds_iam the server checks the token as a password ("password authentication failed")."""
    roles = [*ROLES, RoleRow("report_user", True, False, False, False, ("oltp_ro_role",))]
    grant = Principal(RO_ROLE, "role", "report-role", (_policy("report-policy", _arn("report_user")),))
    snap = build_snapshot(CTX, roles, _inv(*SCENARIO, grant), now=NOW)
    (finding,) = [f for f in snap.findings if f.code == FindingCode.GRANT_WITHOUT_RDS_IAM]
    assert (finding.severity, finding.user) == ("critical", "report_user")
    assert finding.fix.startswith('GRANT rds_iam TO "report_user";')
    # a member (directly or through a role) is fine, and so is a role that cannot log in
    member = [*ROLES, RoleRow("report_user", True, False, False, False, ("oltp_ro_role", "rds_iam"))]
    nologin = [*ROLES, RoleRow("report_user", False, False, False, False, ())]
    for rows in (member, nologin):
        codes = {f.code for f in build_snapshot(CTX, rows, _inv(*SCENARIO, grant), now=NOW).findings}
        assert FindingCode.GRANT_WITHOUT_RDS_IAM not in codes


def test_untrusted_names_are_kept_in_findings_and_escaped_where_shown() -> None:
    from pgiam_tui.commands.snapshot import render_text
    from pgiam_tui.model import ClusterSnapshot

    roles = [*ROLES, RoleRow("evil\x1b[2J", True, False, False, False, ("rds_iam",))]
    snap = build_snapshot(CTX, roles, _inv(*SCENARIO), now=NOW)
    assert any("evil\x1b[2J" in f.message for f in snap.findings)  # the finding names the true role
    out = render_text([ClusterSnapshot("c", "ok", NOW, iam=snap)])
    assert "\x1b" not in out and "evil\\x1b[2J" in out


# ----------------------------------------------------------------------------- real PostgreSQL + moto


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_postgres(tmp_path_factory.mktemp("iam-mapping")) as server:
        yield server


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server of this module's own (real HTTP), stopped at the end."""
    with running_moto() as url:
        yield url


@dataclass(frozen=True)
class _Inst:
    id: str


@dataclass(frozen=True)
class _Resolved:
    region: str
    account_id: str
    resource_id: str
    iam_auth_enabled: bool
    kind: str
    endpoint: str
    log_exports: tuple[str, ...]
    log_group: str | None
    iam_log_group: str | None
    instances: tuple[_Inst, ...]


async def test_collector_on_real_postgres_and_moto_iam(
    pg: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = moto_session(moto_url, monkeypatch, REGION)
    iam = session.client("iam")
    acct = "123456789012"  # moto's default account for unknown keys
    rid = f"cluster-{uuid.uuid4().hex[:12].upper()}"
    tag = uuid.uuid4().hex[:6]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
                }
            ],
        }
    )
    iam.create_role(RoleName=f"mon-{tag}", AssumeRolePolicyDocument=trust)
    wildcard = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:{REGION}:{acct}:dbuser:*/pgmonitor",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=f"mon-{tag}", PolicyName="pg-db-monitor-policy", PolicyDocument=json.dumps(wildcard)
    )
    iam.create_role(RoleName=f"rw-{tag}", AssumeRolePolicyDocument=trust)
    exact = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:{REGION}:{acct}:dbuser:{rid}/oltp_rw_user",
            }
        ],
    }
    iam.put_role_policy(RoleName=f"rw-{tag}", PolicyName="rw", PolicyDocument=json.dumps(exact))

    conn = await psycopg.AsyncConnection.connect(pg.admin_dsn, autocommit=True)

    async def fetch(sql: Any, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()

    resolved = _Resolved(
        REGION,
        acct,
        rid,
        True,
        "aurora",
        "pgdemo-x.cluster-abc.us-east-1.rds.amazonaws.com",
        (),
        None,
        None,
        (_Inst("pgdemo-x-writer"),),
    )
    cfg = ClusterConfig(name="pgdemo-x", cluster_id="pgdemo-x", region=REGION)
    col = IamMappingCollector(cfg, access_advisor=False)
    try:
        snap = await col.collect(resolved, session, fetch)
        users = {u.name: u for u in snap.users}
        assert users["pgmonitor"].rds_iam and "pg_monitor" in users["pgmonitor"].member_of

        # moto's backends are process-wide: other test modules' principals share account 123456789012,
        # so look only at the principals this test made (their names carry its tag).
        def ours(user: str) -> list[str]:
            names = [g.principal_arn.rsplit("/", 1)[1] for g in users[user].iam_principals]
            return [n for n in names if n.endswith(tag)]

        assert ours("pgmonitor") == [f"mon-{tag}"]
        assert ours("oltp_rw_user") == [f"rw-{tag}"]
        codes = {(f.code, f.user) for f in snap.findings}
        assert ("wildcard_grant", "pgmonitor") in codes
        # oltp_ro_user is in rds_iam with no policy in this account: orphan
        assert ("orphan_db_user", "oltp_ro_user") in codes
        assert ("metrics_unreadable", None) not in codes  # moto answers get_metric_data (no datapoints)

        # fault: a new IAM user in the database with no policy -> orphan_db_user; undo afterwards
        await conn.execute("CREATE ROLE newbie LOGIN")
        await conn.execute("GRANT rds_iam TO newbie")
        try:
            snap2 = await col.collect(resolved, session, fetch)
            assert ("orphan_db_user", "newbie") in {(f.code, f.user) for f in snap2.findings}
        finally:
            await conn.execute("DROP ROLE newbie")
        snap3 = await col.collect(resolved, session, fetch)
        assert "newbie" not in {u.name for u in snap3.users}
    finally:
        await conn.close()
        for name, pol in ((f"mon-{tag}", "pg-db-monitor-policy"), (f"rw-{tag}", "rw")):
            iam.delete_role_policy(RoleName=name, PolicyName=pol)
            iam.delete_role(RoleName=name)


def test_monitoring_role_is_derived_from_the_session_for_cloudtrail(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = moto_session(moto_url, monkeypatch, REGION)
    tag = uuid.uuid4().hex[:6]
    trust = json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "*"}}]}
    )  # fmt: skip
    iam = base.client("iam")
    role_arn = iam.create_role(RoleName=f"mon-{tag}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    try:
        creds = base.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="monitor")["Credentials"]
        assumed = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGION,
        )
        col = IamMappingCollector(ClusterConfig(name="c", cloudtrail=True))
        assert col._role_of(assumed) == role_arn
        assert col._role_of(base) is None  # an IAM user, not a role: nothing to look up
    finally:
        iam.delete_role(RoleName=f"mon-{tag}")


async def test_collector_access_advisor_unused_grant(pg: Any) -> None:
    """Access Advisor (moto lacks it: Stubber) runs in the background; its answer becomes unused_grant."""
    from botocore.stub import Stubber

    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    role_arn = f"arn:aws:iam::{ACCT}:role/pgdemo-oltp-rw-role"
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": _arn("oltp_rw_user")}]})  # fmt: skip
    role = {"RoleName": "pgdemo-oltp-rw-role", "Arn": role_arn, "Path": "/", "RoleId": "AROAEXAMPLEROLEID2",
            "CreateDate": NOW, "RolePolicyList": [{"PolicyName": "rw", "PolicyDocument": doc}]}  # fmt: skip
    job = "00000000-0000-0000-0000-000000000003"

    class _IamSession:
        def client(self, service: str, region_name: str | None = None, **_: Any) -> Any:
            assert service == "iam"
            return iam

    conn = await psycopg.AsyncConnection.connect(pg.admin_dsn, autocommit=True)

    async def fetch(sql: Any, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()

    resolved = _Resolved(REGION, ACCT, RID, True, "aurora", "pgdemo-1.cluster-x.us-east-1.rds.amazonaws.com",
                         (), None, None, ())  # fmt: skip
    col = IamMappingCollector(ClusterConfig(name="pgdemo-1", region=REGION), advisor_wait_s=60)
    try:
        with Stubber(iam) as stub:
            stub.add_response(
                "get_account_authorization_details", {"RoleDetailList": [role], "IsTruncated": False}
            )
            stub.add_response("generate_service_last_accessed_details", {"JobId": job}, {"Arn": role_arn})
            used = {"ServiceName": "Amazon RDS IAM Authentication", "ServiceNamespace": "rds-db",
                    "LastAuthenticated": NOW - timedelta(days=400)}  # fmt: skip
            details = {"JobStatus": "COMPLETED", "JobCreationDate": NOW, "JobCompletionDate": NOW,
                       "ServicesLastAccessed": [used]}  # fmt: skip
            stub.add_response("get_service_last_accessed_details", details, {"JobId": job})
            snap = await col.collect(resolved, None, fetch, iam_session=_IamSession())
            stub.assert_no_pending_responses()
            # the next round asks IAM nothing (cached; the stub would fail any call) and keeps the finding
            again = await col.collect(resolved, None, fetch, iam_session=_IamSession())
        rw = next(u for u in snap.users if u.name == "oltp_rw_user")
        assert [(g.principal_arn, g.last_used) for g in rw.iam_principals] == [
            (role_arn, NOW - timedelta(days=400))
        ]
        assert ("unused_grant", "oltp_rw_user") in {(f.code, f.user) for f in snap.findings}
        assert ("unused_grant", "oltp_rw_user") in {(f.code, f.user) for f in again.findings}
    finally:
        await conn.close()
