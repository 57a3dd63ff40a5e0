"""Deterministic snapshots for the console's snapshot tests and the UI benchmark.

This is test data for the UI (fixed datetimes, no I/O), not a stand-in for any product path: the live
console always renders what the Monitor collects. The data mirrors the sandbox scenario (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pgiam_tui.collect.attempts import failure_counts, join_attempts
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.logparse import LogLineParser
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import (
    AssumeRoleEvent,
    Attempt,
    ClusterSnapshot,
    ConnEvent,
    DbUser,
    ErrorInfo,
    EventKind,
    Finding,
    Grant,
    IamMetrics,
    IamSnapshot,
    InstanceInfo,
    InstanceRole,
    ServerHealth,
    SessionRow,
)
from pgiam_tui.ui.source import CheckStepView, CheckView
from pgiam_tui.vocabulary import CheckCause, FindingCode

T0 = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)
DB_ACCOUNT = "111111111111"
MONITOR_ARN = f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pg-monitor-role/botocore-session-1"
HOSTILE_QUERY = (
    "SELECT '[bold red]x[/]', '[link=http://x]y[/link]', '\x1b[31mred\x1b[0m', '\x1b]0;pwned\x07' "
    "/* " + "very long line " * 30 + "*/"
)


def fixed_now() -> datetime:
    """The clock the deterministic tests run on."""
    return T0


def session(
    instance: str,
    pid: int,
    user: str,
    state: str,
    query: str,
    *,
    duration_s: float = 0.5,
    xact_s: float | None = None,
    blocked_by: tuple[int, ...] = (),
    wait: tuple[str, str] | None = None,
    app: str = "pgbench",
    db: str = "demo",
    host: str = "10.0.1.23",
) -> SessionRow:
    """One pg_stat_activity row at T0."""
    start = T0 - timedelta(seconds=duration_s)
    return SessionRow(
        instance=instance,
        pid=pid,
        datname=db,
        usename=user,
        application_name=app,
        client_addr=host,
        client_hostname=None,
        client_port=40000 + pid % 1000,
        backend_start=T0 - timedelta(hours=1, seconds=pid),
        xact_start=T0 - timedelta(seconds=xact_s) if xact_s is not None else None,
        query_start=start,
        state_change=start,
        state=state,
        wait_event_type=wait[0] if wait else None,
        wait_event=wait[1] if wait else None,
        backend_type="client backend",
        query_id=None,
        query=query,
        blocked_by=blocked_by,
        duration_s=duration_s,
        xact_duration_s=xact_s,
    )


def _activity(writer: str, reader: str) -> tuple[SessionRow, ...]:
    return (
        session(
            writer, 4101, "oltp_rw_user", "active", "UPDATE pgdemo.orders SET qty = qty + 1 WHERE id = $1"
        ),
        session(
            writer,
            4102,
            "oltp_rw_user",
            "idle in transaction",
            "UPDATE pgdemo.products SET price = price WHERE id = 1",
            duration_s=185.0,
            xact_s=190.0,
            app="lock-holder",
        ),
        session(
            writer,
            4103,
            "oltp_rw_user",
            "active",
            "UPDATE pgdemo.products SET price = price * 1.01 WHERE id = 1",
            duration_s=42.0,
            xact_s=42.0,
            blocked_by=(4102,),
            wait=("Lock", "transactionid"),
        ),
        session(
            writer,
            4104,
            "oltp_rw_user",
            "active",
            "DELETE FROM pgdemo.products WHERE id = 1",
            duration_s=30.0,
            xact_s=30.0,
            blocked_by=(4103,),
            wait=("Lock", "tuple"),
        ),
        session(writer, 4105, "oltp_ro_user", "active", "SELECT pg_sleep(600)", duration_s=312.0),
        session(writer, 4106, "pgmonitor", "idle", "SELECT 1", duration_s=4.0, app="psql"),
        session(writer, 4107, "oltp_rw_user", "active", HOSTILE_QUERY, duration_s=2.0, app="evil\x1b[2Japp"),
        session(reader, 5101, "oltp_ro_user", "active", "SELECT count(*) FROM pgdemo.orders", duration_s=1.2),
        session(
            reader, 5102, "oltp_ro_user", "idle", "SELECT * FROM pgdemo.products LIMIT 10", duration_s=8.0
        ),
    )


def _rds_line(seconds_before: int, client: str, user_db: str, pid: int, message: str) -> str:
    stamp = (T0 - timedelta(seconds=seconds_before)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp}:{client}:{user_db}:[{pid}]:{message}"


def _events(cluster: str) -> tuple[ConnEvent, ...]:
    """The connection lines RDS would have written (parsed by the product's own parser), AWS's reason
    line, and one event of the console itself."""
    ok, bad, gone = "10.0.1.23(40101)", "10.0.9.9(51234)", "10.0.1.24(40201)"
    unknown = "[unknown]@[unknown]"
    lines = [
        _rds_line(61, bad, unknown, 4201, "LOG:  connection received: host=10.0.9.9 port=51234"),
        _rds_line(60, bad, "oltp_rw_user@demo", 4201, "LOG:  pam_authenticate failed: Permission denied"),
        _rds_line(60, bad, "oltp_rw_user@demo", 4201,
                  'FATAL:  PAM authentication failed for user "oltp_rw_user"'),
        _rds_line(48, gone, unknown, 4090, "LOG:  connection received: host=10.0.1.24 port=40201"),
        _rds_line(47, gone, "oltp_ro_user@demo", 4090,
                  "LOG:  connection authorized: user=oltp_ro_user database=demo"),
        _rds_line(44, gone, "oltp_ro_user@demo", 4090, "LOG:  disconnection: session time: 0:00:03.101 "
                  "user=oltp_ro_user database=demo host=10.0.1.24 port=40201"),
        _rds_line(6, ok, unknown, 4101, "LOG:  connection received: host=10.0.1.23 port=40101"),
        _rds_line(5, ok, "oltp_rw_user@demo", 4101, "LOG:  connection authorized: user=oltp_rw_user "
                  "database=demo SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"),
    ]  # fmt: skip
    parser = LogLineParser()
    events = [parser.parse(line, instance=f"{cluster}-writer") for line in lines]
    stamp = (T0 - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S,120")
    events.append(
        parse_iam_line(
            f"{stamp} [ERROR] Failed to authenticate the connection request for user 'oltp_rw_user' because "
            "the provided token has expired. (Status Code: 400, Error Code: ExpiredToken)",
            instance=f"{cluster}-writer",
        )
    )
    events.append(
        ConnEvent(
            T0 - timedelta(seconds=30),
            EventKind.CLIENT_CONNECT,
            "pgmonitor",
            "demo",
            source="client",
            message=f"connected to {cluster} writer",
        )
    )
    return tuple(events)


def _attempts(events: tuple[ConnEvent, ...]) -> tuple[Attempt, ...]:
    return join_attempts(events)


def _iam(resource_id: str, *, enabled: bool = True) -> IamSnapshot:
    role = f"arn:aws:iam::{DB_ACCOUNT}:role"
    wildcard = Finding(
        "warning",
        FindingCode.WILDCARD_GRANT,
        "pg-db-monitor-policy allows rds-db:connect on dbuser:*/pgmonitor (every cluster in the region)",
        fix="Name the cluster resource id in the policy instead of '*'.",
        user="pgmonitor",
    )
    unused = Finding(
        "info",
        FindingCode.UNUSED_GRANT,
        "pgdemo-oltp-ro-role has not used rds-db:connect for 90 days",
        fix="Revoke the grant if nobody needs it (IAM Access Advisor).",
        user="oltp_ro_user",
    )
    no_iam = Finding(
        "critical",
        FindingCode.GRANT_WITHOUT_RDS_IAM,
        "report_user may rds-db:connect but is not a member of rds_iam: tokens fail as password errors",
        fix="GRANT rds_iam TO report_user; (or remove the IAM grant)",
        user="report_user",
    )
    users = (
        DbUser(
            "pgmonitor",
            True,
            ("pg_monitor", "rds_iam"),
            True,
            iam_principals=(
                Grant(
                    f"{role}/pg-monitor-role",
                    "pg-db-monitor-policy",
                    "arn:aws:rds-db:us-east-1:111111111111:dbuser:*/pgmonitor",
                    last_used=T0 - timedelta(minutes=2),
                ),
            ),
            findings=(wildcard,),
        ),
        DbUser(
            "oltp_rw_user",
            True,
            ("oltp_rw_role", "rds_iam"),
            True,
            iam_principals=(
                Grant(
                    f"{role}/pgdemo-oltp-rw-role",
                    "pgdemo-oltp-rw-policy",
                    f"arn:aws:rds-db:us-east-1:111111111111:dbuser:{resource_id}/oltp_rw_user",
                    last_used=T0 - timedelta(minutes=1),
                ),
            ),
        ),
        DbUser(
            "oltp_ro_user",
            True,
            ("oltp_ro_role", "rds_iam"),
            True,
            iam_principals=(
                Grant(
                    f"{role}/pgdemo-oltp-ro-role",
                    "pgdemo-oltp-ro-policy",
                    f"arn:aws:rds-db:us-east-1:111111111111:dbuser:{resource_id}/oltp_ro_user",
                    last_used=T0 - timedelta(days=90),
                ),
            ),
            findings=(unused,),
        ),
        DbUser("app_password_user", False, (), True),
        DbUser(
            "report_user",
            False,
            (),
            True,
            iam_principals=(
                Grant(
                    f"{role}/report-role",
                    "report-policy",
                    f"arn:aws:rds-db:us-east-1:111111111111:dbuser:{resource_id}/report_user",
                ),
            ),
            findings=(no_iam,),
        ),
    )
    series = {
        "IamDbAuthConnectionRequests": (10, 12, 9, 14, 11, 13, 30, 12, 10, 11, 12, 9),
        "IamDbAuthConnectionSuccess": (10, 12, 9, 14, 11, 13, 22, 12, 10, 11, 12, 9),
        "IamDbAuthConnectionFailure": (0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0),
        "IamDbAuthConnectionFailureInvalidToken": (0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0),
        "IamDbAuthConnectionFailureInsufficientPermissions": (0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0),
    }
    metrics = IamMetrics(
        "writer",
        totals={k: float(sum(v)) for k, v in series.items()},
        series={k: tuple(float(x) for x in v) for k, v in series.items()},
    )
    assume = (
        AssumeRoleEvent(
            T0 - timedelta(minutes=3),
            "222222222222",
            "198.51.100.7",
            "arn:aws:sts::222222222222:assumed-role/pg-mgmt-role/i-0abc",
        ),
    )
    return IamSnapshot(
        iam_auth_enabled=enabled,
        resource_id=resource_id,
        users=users,
        findings=(wildcard, no_iam, unused),
        metrics=(metrics,),
        assume_role_events=assume,
        iam_readable=True,
    )


def cluster_configs() -> tuple[ClusterConfig, ...]:
    """Config entries matching sample_snapshots() (actions allowed on the first cluster only)."""
    return (
        ClusterConfig(
            name="pgdemo-1", account_id=DB_ACCOUNT, group="prod (111111111111)", allow_actions=True
        ),
        ClusterConfig(name="pgdemo-2", account_id=DB_ACCOUNT, group="prod (111111111111)"),
        ClusterConfig(name="pgdemo-rds", account_id=DB_ACCOUNT, group="staging"),
    )


def _connected(name: str, role: InstanceRole, host: str, health: ServerHealth) -> InstanceInfo:
    """A member the console is connected to (port 5432)."""
    return InstanceInfo(name, role, host, 5432, "connected", health=health)


def _healthy(name: str, region: str, token_left: timedelta, **parts: Any) -> ClusterSnapshot:
    """A cluster of the prod group that answered this round, with its own PARTS (instances, activity, ...)."""
    return ClusterSnapshot(
        name=name,
        status="ok",
        collected_at=T0,
        group="prod (111111111111)",
        account_id=DB_ACCOUNT,
        region=region,
        identity_arn=MONITOR_ARN,
        server_version="15.8",
        token_expires_at=T0 + token_left,
        **parts,
    )


def sample_snapshots() -> tuple[ClusterSnapshot, ...]:
    """Three clusters: a busy healthy one, a quiet one, and one that cannot connect."""
    attempts = _attempts(_events("pgdemo-1"))
    first = _healthy(
        "pgdemo-1",
        "us-east-1",
        timedelta(minutes=11, seconds=23),
        endpoint="pgdemo-1.cluster-abc.us-east-1.rds.amazonaws.com",
        instances=(
            _connected(
                "pgdemo-1-writer",
                "writer",
                "pgdemo-1-writer.abc.rds.amazonaws.com",
                ServerHealth(T0, 500, 9, 1_250_000, False, None),
            ),
            _connected(
                "pgdemo-1-reader",
                "reader",
                "pgdemo-1-reader.abc.rds.amazonaws.com",
                ServerHealth(T0, 500, 3, 80_000, True, 0.02),
            ),
        ),
        activity=_activity("pgdemo-1-writer", "pgdemo-1-reader"),
        events=_events("pgdemo-1"),
        attempts=attempts,
        failures=failure_counts(attempts, now=T0),
        iam=_iam("cluster-ABCDEFGHIJKL0123456789"),
        actions_allowed=True,
    )
    second = _healthy(
        "pgdemo-2",
        "us-east-2",
        timedelta(minutes=14, seconds=2),
        instances=(
            _connected(
                "pgdemo-2-writer",
                "writer",
                "pgdemo-2-writer.def.rds.amazonaws.com",
                ServerHealth(T0, 100, 2, 5_000, False, None),
            ),
        ),
        activity=(
            session(
                "pgdemo-2-writer",
                7001,
                "oltp_ro_user",
                "active",
                "SELECT * FROM pgdemo.orders",
                duration_s=0.2,
            ),
            session("pgdemo-2-writer", 7002, "pgmonitor", "idle", "SELECT 1"),
        ),
        iam=_iam("cluster-ZYXWVUTSRQPO9876543210"),
    )
    third = ClusterSnapshot(
        name="pgdemo-rds",
        status="error",
        collected_at=T0,
        group="staging",
        account_id=DB_ACCOUNT,
        error=ErrorInfo(
            step="authenticate",
            message='PAM authentication failed for user "pgmonitor"',
            hint="IAM auth is disabled on the instance: "
            "aws rds modify-db-instance --enable-iam-database-authentication",
        ),
        stale=True,
        data_age_s=95.0,
        instances=(
            InstanceInfo("pgdemo-rds", "instance", "pgdemo-rds.ghi.rds.amazonaws.com", 5432, "failed"),
        ),
        iam=_iam("db-QWERTYUIOPASDFGHJKL", enabled=False),
    )
    return (first, second, third)


ENABLE_IAM = (
    "aws rds modify-db-instance --db-instance-identifier pgdemo-rds --enable-iam-database-authentication"
)


def sample_check() -> CheckView:
    """A failed connection check, as diagnose would report it."""
    return CheckView(
        cluster="pgdemo-rds",
        ok=False,
        steps=(
            CheckStepView("config", "ok", 0.4, "profile instancecrossaccount, user pgmonitor"),
            CheckStepView("credentials", "ok", 182.0, f"identity {MONITOR_ARN}"),
            CheckStepView("discovery", "ok", 95.0, "instance pgdemo-rds, IAM auth disabled"),
            CheckStepView("dns", "ok", 1.1, "pgdemo-rds.ghi.rds.amazonaws.com -> 127.0.0.1"),
            CheckStepView("tcp", "ok", 0.6, "127.0.0.1:15433"),
            CheckStepView("tls", "ok", 7.9, "TLSv1.3, certificate verified (verify-full)"),
            CheckStepView("token", "ok", 2.2, "signed for pgdemo-rds.ghi.rds.amazonaws.com:5432 us-east-1"),
            CheckStepView(
                "authenticate",
                "failed",
                12.5,
                'PAM authentication failed for user "pgmonitor"',
                ENABLE_IAM,
            ),
            CheckStepView("query", "skipped"),
        ),
        cause=CheckCause.IAM_AUTH_DISABLED,
        cause_text="IAM database authentication is disabled on pgdemo-rds",
        fix=ENABLE_IAM,
    )


def synthetic_snapshot(name: str, sessions: int, round_no: int = 0, *, churn: int = 0) -> ClusterSnapshot:
    """A cluster with `sessions` rows whose durations move each round; `churn` rows replaced per round."""
    rows = []
    for i in range(sessions):
        # the first `churn` sessions are replaced each round by new backends (new pids, new row keys)
        pid = 10000 + i if i >= churn else 900000 + round_no * churn + i
        state = ("active", "idle", "idle in transaction", "active")[i % 4]
        rows.append(
            session(
                f"{name}-writer",
                pid,
                f"user_{i % 17}",
                state,
                f"SELECT * FROM t_{i % 50} WHERE id = $1 /* {i} */",
                duration_s=float((i * 7 + round_no * 2) % 900),
                blocked_by=(10000 + i - 1,) if i % 97 == 5 else (),
                wait=("Lock", "relation") if i % 97 == 5 else None,
            )
        )
    return ClusterSnapshot(
        name=name,
        status="ok",
        collected_at=T0 + timedelta(seconds=2 * round_no),
        account_id=DB_ACCOUNT,
        token_expires_at=T0 + timedelta(minutes=15),
        instances=(InstanceInfo(f"{name}-writer", "writer", f"{name}.example", 5432, "connected"),),
        activity=tuple(rows),
    )


def with_activity(snap: ClusterSnapshot, rows: tuple[SessionRow, ...]) -> ClusterSnapshot:
    """The same snapshot with other sessions (tests drive in-place updates with it)."""
    return replace(snap, activity=rows)


def later_round(
    snaps: tuple[ClusterSnapshot, ...], seconds: float, xacts: int
) -> tuple[ClusterSnapshot, ...]:
    """SNAPS SECONDS later, each instance's transaction counter XACTS higher (for transactions per second)."""
    out = []
    for snap in snaps:
        instances = tuple(
            replace(
                i,
                health=replace(
                    i.health,
                    sampled_at=(i.health.sampled_at or T0) + timedelta(seconds=seconds),
                    xact_total=(i.health.xact_total or 0) + xacts,
                ),
            )
            if i.health is not None
            else i
            for i in snap.instances
        )
        out.append(
            replace(snap, instances=instances, collected_at=snap.collected_at + timedelta(seconds=seconds))
        )
    return tuple(out)


LONG_NAMES = {
    "pgdemo-1": "orders-pricing-eu-west-1-prod",
    "pgdemo-2": "orders-pricing-eu-west-1-replica",
    "pgdemo-rds": "ledger",
}


def long_named(snaps: tuple[ClusterSnapshot, ...]) -> tuple[ClusterSnapshot, ...]:
    """SNAPS with long cluster names that differ only at the end (see LONG_NAMES)."""
    return tuple(replace(s, name=LONG_NAMES.get(s.name, s.name)) for s in snaps)


def long_named_configs() -> tuple[ClusterConfig, ...]:
    """cluster_configs() under LONG_NAMES."""
    return tuple(replace(c, name=LONG_NAMES.get(c.name, c.name)) for c in cluster_configs())
