"""End to end through the sandbox's RDS front doors with plain boto3 + psycopg (issue 2's done-list).

Logins use libpq exactly as over a tunnel: host = the endpoint moto reports (TLS name, token host),
hostaddr = 127.0.0.1 and port = the front door's listener, sslmode = verify-full against the sandbox CA.
Fault injections restore what they change, so the shared session sandbox stays as seeded.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from pgiam_sandbox import Sandbox, SandboxCluster

DB = "111111111111"


def _token(session: boto3.Session, host: str, region: str, user: str, port: int = 5432) -> str:
    rds = session.client("rds", region_name=region)
    return str(rds.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region))


def _connect(
    sandbox: Sandbox, host: str, listen_port: int, user: str, password: str
) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=host,
        hostaddr="127.0.0.1",
        port=listen_port,
        dbname="demo",
        user=user,
        password=password,
        sslmode="verify-full",
        sslrootcert=str(sandbox.ca_path),
        connect_timeout=10,
        application_name="pytest-sandbox",
        autocommit=True,
    )


def _sqlstate(exc: psycopg.Error) -> str | None:
    # libpq keeps no result for a failed connection: read the code from the message when diag has none.
    if exc.sqlstate:
        return exc.sqlstate
    text = str(exc)
    if "PAM authentication failed" in text:
        return "28000"
    if "password authentication failed" in text:
        return "28P01"
    return None


class _Marks:
    """Byte offsets of the sandbox's logs before an attempt, to read only what came after."""

    def __init__(self, sandbox: Sandbox, cluster: SandboxCluster) -> None:
        self.sandbox = sandbox
        self.cluster = cluster
        self.diag = sandbox.diagnostic_log.stat().st_size
        self.log = Path(cluster.log_file).stat().st_size

    def diagnostics(self) -> list[str]:
        with self.sandbox.diagnostic_log.open("rb") as f:
            f.seek(self.diag)
            return f.read().decode().splitlines()

    def log_lines(self) -> list[str]:
        with Path(self.cluster.log_file).open("rb") as f:
            f.seek(self.log)
            return f.read().decode().splitlines()


def _cloudwatch(sandbox: Sandbox, cluster: SandboxCluster, group: str, needle: str) -> list[str]:
    assert sandbox.flush_logs()
    logs = sandbox.boto_session("iam-reader").client("logs", region_name=cluster.region)
    events = logs.filter_log_events(logGroupName=group, filterPattern=f'"{needle}"')["events"]
    return [e["message"] for e in events if needle in e["message"]]


def _refused(
    sandbox: Sandbox,
    cluster: SandboxCluster,
    user: str,
    password: str,
    *,
    code: str | None,
    reason: str,
    host: str | None = None,
    port: int | None = None,
) -> list[str]:
    """Attempt a login that must fail with 28000; check diagnostics, RDS log file and CloudWatch."""
    marks = _Marks(sandbox, cluster)
    with pytest.raises(psycopg.OperationalError) as info:
        _connect(sandbox, host or cluster.endpoint, port or cluster.listen_port, user, password)
    assert _sqlstate(info.value) == "28000", str(info.value)
    assert f'PAM authentication failed for user "{user}"' in str(info.value)
    mine = [
        line
        for line in marks.diagnostics()
        if f"user={user} " in line and f"code={code or '-'} " in line and reason in line
    ]
    assert mine, marks.diagnostics()
    assert password not in "\n".join(marks.diagnostics())  # never the token
    lines = [line for line in marks.log_lines() if f":{user}@demo:" in line]
    assert any(line.endswith("LOG:  pam_authenticate failed: Permission denied") for line in lines), lines
    assert any(line.endswith(f'FATAL:  PAM authentication failed for user "{user}"') for line in lines), lines
    assert _cloudwatch(sandbox, cluster, cluster.log_group, "pam_authenticate failed")
    if code is not None:
        iam_lines = _cloudwatch(sandbox, cluster, cluster.iam_log_group, f"Error Code: {code})")
        assert any(f"for user '{user}'" in line for line in iam_lines), iam_lines
    return mine


@pytest.fixture(scope="module")
def monitor(sandbox: Sandbox) -> boto3.Session:
    """The scenario's cross-account monitoring profile (IMDS -> pg-mgmt-role -> pg-monitor-role)."""
    return boto3.Session(profile_name="instancecrossaccount")


@pytest.fixture(scope="module")
def aurora(sandbox: Sandbox) -> SandboxCluster:
    return sandbox.cluster("pgdemo-1")


# -- logins that work --------------------------------------------------------------------------------------


def test_cross_account_token_logs_in_as_pgmonitor_with_verify_full(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster
) -> None:
    marks = _Marks(sandbox, aurora)
    token = _token(monitor, aurora.endpoint, aurora.region, "pgmonitor")
    with _connect(sandbox, aurora.endpoint, aurora.listen_port, "pgmonitor", token) as conn:
        row = conn.execute("SELECT current_user, pg_has_role('pg_monitor', 'MEMBER')").fetchone()
        assert row == ("pgmonitor", True)
        # TLS ends at the front door (as at RDS's proxy layer): the client side is what counts
        assert conn.pgconn.ssl_in_use
        assert conn.info.hostaddr == "127.0.0.1" and conn.info.host == aurora.endpoint
        # pg_monitor sees the query text of others' sessions (the workload's)
        hidden = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = '<insufficient privilege>'"
        )
        assert hidden.fetchone() == (0,)
    authorized = [
        line for line in marks.log_lines() if "connection authorized: user=pgmonitor database=demo" in line
    ]
    assert authorized and "SSL enabled (protocol=TLSv1" in authorized[0]


def test_every_endpoint_of_every_cluster_answers(sandbox: Sandbox, monitor: boto3.Session) -> None:
    for c in sandbox.clusters:
        endpoints = [(c.endpoint, c.listen_port)] + [(i.endpoint, i.listen_port) for i in c.instances]
        if c.reader_endpoint and c.reader_listen_port:
            endpoints.append((c.reader_endpoint, c.reader_listen_port))
        for host, port in endpoints:
            token = _token(monitor, host, c.region, "pgmonitor")
            with _connect(sandbox, host, port, "pgmonitor", token) as conn:
                read_only = conn.execute("SHOW default_transaction_read_only").fetchone()
            reader = host in (c.reader_endpoint, c.reader.endpoint if c.reader else None)
            assert read_only == (("on",) if reader else ("off",)), (c.name, host)


def test_source_profile_chain_logs_in_as_oltp_rw_user_and_inserts(sandbox: Sandbox) -> None:
    cluster = sandbox.cluster("pgdemo-2")  # any cluster: the row is removed again
    session = boto3.Session(profile_name="pgdemo-oltp-rw")
    token = _token(session, cluster.endpoint, cluster.region, "oltp_rw_user")
    try:
        with _connect(sandbox, cluster.endpoint, cluster.listen_port, "oltp_rw_user", token) as conn:
            conn.execute("INSERT INTO pgdemo.products VALUES (6, 'Nokia', 600)")
            row = conn.execute("SELECT name, price FROM pgdemo.products WHERE product_no = 6").fetchone()
            assert row == ("Nokia", 600)
    finally:
        sandbox.admin_sql(cluster.name, "DELETE FROM pgdemo.products WHERE product_no = 6")


def test_rds_for_postgresql_instance_uses_its_dbi_resource_id(sandbox: Sandbox) -> None:
    (inst,) = [c for c in sandbox.clusters if c.kind == "instance"]
    session = boto3.Session(profile_name="pgdemo-oltp-rw")
    token = _token(session, inst.endpoint, inst.region, "oltp_rw_user")
    with _connect(sandbox, inst.endpoint, inst.listen_port, "oltp_rw_user", token) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("oltp_rw_user",)


def test_metrics_count_iam_logins(sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster) -> None:
    token = _token(monitor, aurora.endpoint, aurora.region, "pgmonitor")
    _connect(sandbox, aurora.endpoint, aurora.listen_port, "pgmonitor", token).close()
    assert sandbox.flush_logs()
    cw = sandbox.boto_session("iam-reader").client("cloudwatch", region_name=aurora.region)
    metrics = cw.list_metrics(Namespace="AWS/RDS", MetricName="IamDbAuthConnectionSuccess")["Metrics"]
    dims = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics]
    assert {"DBInstanceIdentifier": aurora.writer.id} in dims


# -- refusals: 28000, RDS-format lines, the true reason in the diagnostic log ------------------------------


def test_expired_token_by_clock_skew(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster
) -> None:
    token = _token(monitor, aurora.endpoint, aurora.region, "pgmonitor")
    sandbox.switches.clock_skew_seconds = 1200
    try:
        _refused(sandbox, aurora, "pgmonitor", token, code="ExpiredToken", reason="token expired")
    finally:
        sandbox.switches.clock_skew_seconds = 0


def test_expired_token_by_old_x_amz_date(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster
) -> None:
    import datetime as dt
    from unittest import mock

    import botocore.auth

    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)

    class OldClock(dt.datetime):
        """botocore's SigV4 reads the time through datetime.datetime: twenty minutes ago."""

        @classmethod
        def utcnow(cls) -> Any:
            return dt.datetime.fromtimestamp(old.timestamp(), dt.UTC).replace(tzinfo=None)

        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Any:
            return dt.datetime.fromtimestamp(old.timestamp(), tz)

    with mock.patch.object(getattr(botocore.auth, "datetime"), "datetime", OldClock):  # noqa: B009
        token = _token(monitor, aurora.endpoint, aurora.region, "pgmonitor")
    assert f"X-Amz-Date={old:%Y%m%dT%H%M}" in token
    _refused(sandbox, aurora, "pgmonitor", token, code="ExpiredToken", reason="token expired")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("host-127", "signed for host '127.0.0.1'"),
        ("other-port", "signed for port"),
        ("other-region", "signed for region 'us-west-2'"),
        ("other-user", "DBUser"),
        ("garbage", "not a presigned URL"),
    ],
)
def test_invalid_tokens(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster, case: str, reason: str
) -> None:
    host, region, user, port = aurora.endpoint, aurora.region, "pgmonitor", 5432
    if case == "host-127":
        host = "127.0.0.1"
    elif case == "other-port":
        port = aurora.listen_port
    elif case == "other-region":
        region = "us-west-2"
    elif case == "other-user":
        user = "oltp_ro_user"
    token = "garbage-not-a-token" if case == "garbage" else _token(monitor, host, region, user, port)
    _refused(sandbox, aurora, "pgmonitor", token, code="InvalidToken", reason=reason)


def test_unknown_access_key(sandbox: Sandbox, aurora: SandboxCluster) -> None:
    stranger = boto3.Session(
        aws_access_key_id="AKIA" + "Z" * 16, aws_secret_access_key="x" * 40, region_name=aurora.region
    )
    token = _token(stranger, aurora.endpoint, aurora.region, "pgmonitor")
    _refused(sandbox, aurora, "pgmonitor", token, code="InvalidToken", reason="unknown access key")


def test_detached_policy(sandbox: Sandbox, aurora: SandboxCluster) -> None:
    iam = sandbox.boto_session("sandbox-db-admin").client("iam")
    role = "pgdemo-oltp-rw-role"
    (policy,) = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    session = boto3.Session(profile_name="pgdemo-oltp-rw")
    token = _token(session, aurora.endpoint, aurora.region, "oltp_rw_user")
    iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    try:
        # the workload's wrong-role logins are NotAuthorized too, but signed by the read-only role
        _refused(sandbox, aurora, "oltp_rw_user", token, code="NotAuthorized", reason=f"assumed-role/{role}/")
    finally:
        iam.attach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
    _connect(sandbox, aurora.endpoint, aurora.listen_port, "oltp_rw_user", token).close()


def test_policy_naming_the_cluster_identifier_instead_of_the_resource_id(
    sandbox: Sandbox, aurora: SandboxCluster
) -> None:
    iam = sandbox.boto_session("sandbox-db-admin").client("iam")
    user = f"wrong-resource-{uuid.uuid4().hex[:8]}"
    wrong = f"arn:aws:rds-db:{aurora.region}:{DB}:dbuser:{aurora.cluster_id}/oltp_rw_user"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    try:
        iam.put_user_policy(
            UserName=user,
            PolicyName="connect",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": wrong}],
                }
            ),
        )
        session = boto3.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=aurora.region,
        )
        token = _token(session, aurora.endpoint, aurora.region, "oltp_rw_user")
        (line,) = _refused(
            sandbox, aurora, "oltp_rw_user", token, code="NotAuthorized", reason=f"user/{user}"
        )
        assert aurora.resource_id in line  # the resource the login needed, next to the caller
        iam_lines = _cloudwatch(sandbox, aurora, aurora.iam_log_group, f"user/{user}")
        assert iam_lines and "is not authorized to perform `rds-db:connect`" in iam_lines[0]
    finally:
        iam.delete_user_policy(UserName=user, PolicyName="connect")
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=user)


def test_iam_auth_turned_off_on_the_cluster(sandbox: Sandbox, monitor: boto3.Session) -> None:
    cluster = sandbox.cluster("pgdemo-3")
    rds = sandbox.boto_session("sandbox-db-admin").client("rds", region_name=cluster.region)
    token = _token(monitor, cluster.endpoint, cluster.region, "pgmonitor")
    rds.modify_db_cluster(
        DBClusterIdentifier=str(cluster.cluster_id),
        EnableIAMDatabaseAuthentication=False,
        ApplyImmediately=True,
    )
    try:
        marks_iam = _cloudwatch(sandbox, cluster, cluster.iam_log_group, "for user 'pgmonitor'")
        _refused(
            sandbox, cluster, "pgmonitor", token, code=None, reason="IAM database authentication is disabled"
        )
        # as on RDS: no IAM line, only the PAM failure
        assert _cloudwatch(sandbox, cluster, cluster.iam_log_group, "for user 'pgmonitor'") == marks_iam
    finally:
        rds.modify_db_cluster(
            DBClusterIdentifier=str(cluster.cluster_id),
            EnableIAMDatabaseAuthentication=True,
            ApplyImmediately=True,
        )
    _connect(sandbox, cluster.endpoint, cluster.listen_port, "pgmonitor", token).close()


def test_token_for_user_outside_rds_iam_fails_password_auth(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster
) -> None:
    token = _token(monitor, aurora.endpoint, aurora.region, "app_password_user")
    with pytest.raises(psycopg.OperationalError) as info:
        _connect(sandbox, aurora.endpoint, aurora.listen_port, "app_password_user", token)
    assert _sqlstate(info.value) == "28P01", str(info.value)
    assert 'password authentication failed for user "app_password_user"' in str(info.value)
    with _connect(sandbox, aurora.endpoint, aurora.listen_port, "app_password_user", "app-password") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app_password_user",)


# -- cancel ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _in_thread(func: Any) -> Iterator[dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = func()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        thread.join(60)
        assert not thread.is_alive()


def test_cancel_request_through_the_front_door_cancels_pg_sleep(
    sandbox: Sandbox, monitor: boto3.Session, aurora: SandboxCluster
) -> None:
    token = _token(monitor, aurora.endpoint, aurora.region, "pgmonitor")
    tag = f"cancel-me-{uuid.uuid4().hex[:8]}"
    with _connect(sandbox, aurora.endpoint, aurora.listen_port, "pgmonitor", token) as conn:
        with _in_thread(lambda: conn.execute(f"SELECT pg_sleep(60) /* {tag} */")) as result:
            # wait (by polling the server, not the clock) until the query really runs
            with psycopg.connect(sandbox.admin_dsn(aurora.name), autocommit=True) as admin:
                for _ in range(600):
                    row = admin.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                        (f"%{tag}%",),
                    ).fetchone()
                    if row and row[0]:
                        break
                    admin.execute("SELECT pg_sleep(0.05)")
            conn.cancel_safe()
        assert isinstance(result.get("error"), psycopg.errors.QueryCanceled), result
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_stop_and_start_cluster(sandbox: Sandbox, monitor: boto3.Session) -> None:
    cluster = sandbox.cluster("pgdemo-3")
    token = _token(monitor, cluster.endpoint, cluster.region, "pgmonitor")
    sandbox.stop_cluster(cluster.name)
    try:
        with pytest.raises(psycopg.OperationalError):
            _connect(sandbox, cluster.endpoint, cluster.listen_port, "pgmonitor", token)
    finally:
        sandbox.start_cluster(cluster.name)
    with _connect(sandbox, cluster.endpoint, cluster.listen_port, "pgmonitor", token) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pgmonitor",)
    assert [i.pg_port for i in sandbox.cluster(cluster.name).instances] == [
        i.pg_port for i in cluster.instances
    ]


def test_throttling_switch(sandbox: Sandbox, monitor: boto3.Session) -> None:
    cluster = sandbox.cluster("pgdemo-3")
    token = _token(monitor, cluster.endpoint, cluster.region, "pgmonitor")
    sandbox.switches.throttle_per_second = 0  # no new IAM connection gets through
    try:
        _refused(
            sandbox, cluster, "pgmonitor", token, code="ThrottlingException", reason="new IAM connections"
        )
    finally:
        sandbox.switches.throttle_per_second = None
    _connect(sandbox, cluster.endpoint, cluster.listen_port, "pgmonitor", token).close()


# -- changes count for the very next login (no cache answers with yesterday's state) -----------------------


def test_grant_revoke_policy_and_flag_changes_count_for_the_very_next_login(sandbox: Sandbox) -> None:
    """As on RDS and IAM: each change is seen by the login right after it, with a login just before it (so
    any cache would be warm), by ordinary means: SQL on the server, the IAM and RDS APIs."""
    cluster = sandbox.cluster("pgdemo-3")
    admin = sandbox.boto_session("sandbox-db-admin")
    iam = admin.client("iam")
    rds = admin.client("rds", region_name=cluster.region)
    sfx = uuid.uuid4().hex[:8]
    role, user = f"next_login_{sfx}", f"next-login-{sfx}"
    resource = f"arn:aws:rds-db:{cluster.region}:{DB}:dbuser:{cluster.resource_id}/{role}"
    sandbox.admin_sql(cluster.name, f"CREATE ROLE {role} LOGIN; GRANT rds_iam TO {role};")
    policy = iam.create_policy(
        PolicyName=f"connect-{sfx}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": resource}],
            }
        ),
    )["Policy"]["Arn"]
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=policy)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=cluster.region,
    )

    def login() -> None:
        token = _token(session, cluster.endpoint, cluster.region, role)
        with _connect(sandbox, cluster.endpoint, cluster.listen_port, role, token) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)

    def refused(code: str | None, reason: str) -> None:
        token = _token(session, cluster.endpoint, cluster.region, role)
        _refused(sandbox, cluster, role, token, code=code, reason=reason)

    try:
        login()
        # REVOKE rds_iam on the server itself (not through the sandbox's helpers): the next login is a
        # password login, which the token cannot pass (28P01), as on RDS.
        with psycopg.connect(sandbox.admin_dsn(cluster.name), autocommit=True) as sql:
            sql.execute(f"REVOKE rds_iam FROM {role}".encode())
            with pytest.raises(psycopg.OperationalError) as info:
                _connect(sandbox, cluster.endpoint, cluster.listen_port, role,
                         _token(session, cluster.endpoint, cluster.region, role))  # fmt: skip
            assert _sqlstate(info.value) == "28P01", str(info.value)
            sql.execute(f"GRANT rds_iam TO {role}".encode())
        login()
        iam.detach_user_policy(UserName=user, PolicyArn=policy)
        refused("NotAuthorized", f"user/{user}")
        iam.attach_user_policy(UserName=user, PolicyArn=policy)
        login()
        rds.modify_db_cluster(
            DBClusterIdentifier=str(cluster.cluster_id),
            EnableIAMDatabaseAuthentication=False,
            ApplyImmediately=True,
        )
        try:
            refused(None, "IAM database authentication is disabled")
        finally:
            rds.modify_db_cluster(
                DBClusterIdentifier=str(cluster.cluster_id),
                EnableIAMDatabaseAuthentication=True,
                ApplyImmediately=True,
            )
        login()
    finally:
        with contextlib.suppress(Exception):
            iam.detach_user_policy(UserName=user, PolicyArn=policy)
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=user)
        iam.delete_policy(PolicyArn=policy)
        sandbox.admin_sql(cluster.name, f"DROP ROLE {role};")
