"""Events and IAM mapping against the sandbox: real front door logins logged to moto's CloudWatch, AWS's
iam-db-auth-error reasons joined, the scenario's IAM mapping, and fault injection (restored afterwards)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from pgiam_tui.aws.discovery import ResolvedCluster, resolve_cluster
from pgiam_tui.aws.tokens import make_token
from pgiam_tui.collect.events import EventsCollector
from pgiam_tui.collect.iam_mapping import IamMappingCollector
from pgiam_tui.config import ClusterConfig, load_config
from pgiam_tui.model import Attempt, ConnEvent, IamSnapshot

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

NAME = "pgdemo-1"
pytestmark = pytest.mark.timeout(240)


def _cfg(sandbox: Sandbox) -> ClusterConfig:
    return load_config(sandbox.profiles_toml).cluster(NAME)


async def _resolve(sandbox: Sandbox) -> ResolvedCluster:
    return await asyncio.to_thread(
        resolve_cluster, _cfg(sandbox), sandbox.boto_session("instancecrossaccount")
    )


async def _login(sandbox: Sandbox, user: str, password: str | None) -> bool:
    """One login through the cluster's front door (True if it got in); password None = a fresh IAM token."""
    c = sandbox.cluster(NAME)
    if password is None:
        token = await asyncio.to_thread(
            make_token, sandbox.boto_session("instancecrossaccount"), c.endpoint, c.port, user, c.region
        )
        password = token.value
    try:
        conn = await psycopg.AsyncConnection.connect(
            host=c.endpoint, hostaddr=c.listen_host, port=c.listen_port, dbname=c.database, user=user,
            password=password, sslmode="verify-full", sslrootcert=str(sandbox.ca_path), connect_timeout=10,
        )  # fmt: skip
    except psycopg.OperationalError:
        return False
    await conn.close()
    return True


@pytest.fixture()
async def admin(sandbox: Sandbox) -> AsyncIterator[Any]:
    conn = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(NAME), autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()


def _fetch(conn: Any) -> Any:
    async def fetch(sql: Any, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())

    return fetch


async def test_events_from_cloudwatch_with_ssl_and_joined_iam_reasons(sandbox: Sandbox) -> None:
    resolved = await _resolve(sandbox)
    assert resolved.log_group and "postgresql" in resolved.log_exports
    collector = EventsCollector(_cfg(sandbox))
    session = sandbox.boto_session("instancecrossaccount")
    # log lines carry whole seconds: this test's logins are the ones from this second on
    started = datetime.now(UTC).replace(microsecond=0)
    assert await _login(sandbox, "pgmonitor", None)
    assert not await _login(sandbox, "pgmonitor", "not-a-token")
    # The front door ships its lines to moto in the background: read rounds until they are in (bounded).
    # AWS's reason is joined onto the refused login's attempt (collect/attempts.py), not onto a log line.
    events: tuple[ConnEvent, ...] = ()
    joined: list[Attempt] = []
    for _ in range(60):
        events, failures = await collector.collect(resolved, session)
        authorized = [e for e in events if e.kind == "authorized" and e.user == "pgmonitor" and e.ssl]
        joined = [
            a
            for a in collector.attempts
            if a.failed and a.user == "pgmonitor" and a.aws_code and a.time is not None and a.time >= started
        ]
        if authorized and joined:
            break
        await asyncio.sleep(0.5)
    assert collector.source_kind == "cloudwatch" and collector.problems == ()
    assert authorized, [e.message for e in events][-20:]
    ssl = authorized[-1].ssl
    assert ssl is not None and ssl.get("protocol", "").startswith("TLS") and int(ssl["bits"]) >= 128
    assert authorized[-1].instance is not None and authorized[-1].source == "cloudwatch"
    assert joined, [(e.kind, e.user, e.message) for e in events if e.kind != "authorized"][-20:]
    assert [a.aws_code for a in joined] == ["InvalidToken"] and joined[0].method == "iam"
    assert any(e.kind == "iam_invalid_token" and e.user == "pgmonitor" for e in events)
    assert any(f.user == "pgmonitor" and f.count >= 1 for f in failures)
    # a later round adds nothing twice
    again, _ = await collector.collect(resolved, session)
    keys = [(e.source, e.instance, e.time, e.kind, e.pid, e.message) for e in again]
    assert len(keys) == len(set(keys))


def _set_cluster_iam(sandbox: Sandbox, enabled: bool) -> None:
    c = sandbox.cluster(NAME)
    assert c.cluster_id is not None
    rds = sandbox.boto_session("sandbox-db-admin").client("rds", region_name=c.region)
    rds.modify_db_cluster(DBClusterIdentifier=c.cluster_id, EnableIAMDatabaseAuthentication=enabled,
                          ApplyImmediately=True)  # fmt: skip


async def _iam_round(sandbox: Sandbox, collector: IamMappingCollector, admin: Any) -> IamSnapshot:
    collector.invalidate()
    return await collector.collect(
        await _resolve(sandbox), sandbox.boto_session("instancecrossaccount"), _fetch(admin),
        iam_session=sandbox.boto_session("iam-reader"),
    )  # fmt: skip


def _codes(snap: IamSnapshot) -> set[tuple[str, str | None]]:
    return {(f.code, f.user) for f in snap.findings}


async def test_iam_mapping_scenario_and_faults(sandbox: Sandbox, admin: Any) -> None:
    collector = IamMappingCollector(_cfg(sandbox), access_advisor=False)
    snap = await _iam_round(sandbox, collector, admin)
    assert snap.iam_readable and snap.iam_auth_enabled
    c = sandbox.cluster(NAME)
    assert snap.resource_id == c.resource_id
    users = {u.name: u for u in snap.users}
    mon = users["pgmonitor"]
    assert mon.rds_iam and "pg_monitor" in mon.member_of
    assert any(g.principal_arn.endswith(":role/pg-monitor-role") for g in mon.iam_principals)
    assert ("wildcard_grant", "pgmonitor") in _codes(snap)
    assert not any(
        code in {"iam_auth_disabled", "wrong_resource_id", "orphan_grant"} for code, _ in _codes(snap)
    )
    base = _codes(snap)

    iam = sandbox.boto_session("sandbox-db-admin").client("iam")
    tag = uuid.uuid4().hex[:6]

    # 1. IAM auth switched off on the cluster
    _set_cluster_iam(sandbox, False)
    try:
        assert ("iam_auth_disabled", None) in _codes(await _iam_round(sandbox, collector, admin))
    finally:
        _set_cluster_iam(sandbox, True)

    # 2./3. a policy for a user the cluster lacks, and one naming the cluster identifier, not the resource id
    prefix = f"arn:aws:rds-db:{c.region}:{c.account_id}:dbuser:"
    resources = [f"{prefix}{c.resource_id}/ghost_{tag}", f"{prefix}{c.cluster_id}/oltp_rw_user"]
    doc = {"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": resources}]}  # fmt: skip
    iam.create_user(UserName=f"drift-{tag}")
    iam.put_user_policy(UserName=f"drift-{tag}", PolicyName="drift", PolicyDocument=json.dumps(doc))
    try:
        codes = _codes(await _iam_round(sandbox, collector, admin))
        assert ("orphan_grant", None) in codes
        assert ("wrong_resource_id", "oltp_rw_user") in codes
    finally:
        iam.delete_user_policy(UserName=f"drift-{tag}", PolicyName="drift")
        iam.delete_user(UserName=f"drift-{tag}")

    # 4. a database user in rds_iam that no policy names
    role = f"orphan_{tag}"
    sandbox.admin_sql(NAME, f"CREATE ROLE {role} LOGIN; GRANT rds_iam TO {role};")
    try:
        assert ("orphan_db_user", role) in _codes(await _iam_round(sandbox, collector, admin))
    finally:
        sandbox.admin_sql(NAME, f"DROP ROLE {role};")

    # everything restored: the findings are back to where they started
    assert _codes(await _iam_round(sandbox, collector, admin)) == base


async def test_grant_naming_a_members_instance_resource_id_is_wrong(sandbox: Sandbox, admin: Any) -> None:
    """Aurora checks the *cluster* resource id; a policy naming the writer's DbiResourceId never matches."""
    c = sandbox.cluster(NAME)
    writer = next(i for i in c.instances if i.role == "writer")
    assert writer.resource_id != c.resource_id
    iam = sandbox.boto_session("sandbox-db-admin").client("iam")
    tag = uuid.uuid4().hex[:6]
    arn = f"arn:aws:rds-db:{c.region}:{c.account_id}:dbuser:{writer.resource_id}/oltp_ro_user"
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": arn}],
    }
    iam.create_user(UserName=f"member-{tag}")
    iam.put_user_policy(UserName=f"member-{tag}", PolicyName="member", PolicyDocument=json.dumps(doc))
    try:
        snap = await _iam_round(sandbox, IamMappingCollector(_cfg(sandbox), access_advisor=False), admin)
        wrong = [f for f in snap.findings if f.code == "wrong_resource_id"]
        assert [f.user for f in wrong] == ["oltp_ro_user"]
        assert writer.resource_id in wrong[0].message and c.resource_id in wrong[0].fix
    finally:
        iam.delete_user_policy(UserName=f"member-{tag}", PolicyName="member")
        iam.delete_user(UserName=f"member-{tag}")


async def test_iam_metrics_of_fresh_logins_reach_the_iam_snapshot(sandbox: Sandbox, admin: Any) -> None:
    """The front door's IamDbAuthConnection* counters, read by the collector with the cluster's own profile,
    include the logins of the current minute (the window once ended at the minute's start and saw nothing)."""
    assert await _login(sandbox, "pgmonitor", None)
    assert await _login(sandbox, "pgmonitor", None)
    assert not await _login(sandbox, "pgmonitor", "not-a-token")
    assert sandbox.flush_logs()
    collector = IamMappingCollector(_cfg(sandbox), access_advisor=False)
    snap = await _iam_round(sandbox, collector, admin)
    assert not [f for f in snap.findings if f.code == "metrics_unreadable"], snap.findings
    totals: dict[str, float] = {}
    for m in snap.metrics:
        for key, value in m.totals.items():
            totals[key] = totals.get(key, 0.0) + value
    assert totals.get("requests", 0) >= 3 and totals.get("success", 0) >= 2, snap.metrics
    assert totals.get("failure", 0) >= 1 and totals.get("failure_invalid_token", 0) >= 1, snap.metrics
    writer = sandbox.cluster(NAME).writer.id
    assert any(m.instance == writer and m.series.get("requests", ())[-1:] > (0.0,) for m in snap.metrics)
