"""Immutable snapshot types shared by the collectors, the CLI (`snapshot --json`) and the UI.

Collectors build these; the UI only renders them. Nothing here does I/O and nothing here imports the UI.
All datetimes are timezone-aware (UTC). `to_json()` produces the JSON contract of DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pgiam_tui.vocabulary import FindingCode

InstanceRole = Literal["writer", "reader", "instance"]
ConnState = Literal["connecting", "connected", "reconnecting", "failed", "stopped"]
Severity = Literal["critical", "warning", "info"]


class EventKind(StrEnum):
    """What one connection-log line (or one of the console's own events) says.

    A StrEnum: members compare equal to their values, so `ev.kind == "auth_failed"` and JSON keep working.
    """

    RECEIVED = "received"  # `connection received: host=… port=…`
    AUTHENTICATED = "authenticated"  # PostgreSQL 14+: `connection authenticated: identity=… method=…`
    AUTHORIZED = "authorized"  # `connection authorized: user=… database=…` (SSL details)
    READY = "ready"  # PostgreSQL 18: `connection ready: setup total=…`
    AUTH_FAILED = "auth_failed"  # the credentials were refused (PAM/IAM, password, ident, cert, …)
    REFUSED = "refused"  # the login was refused for another reason (pg_hba, role, limits, database, startup)
    DISCONNECTED = "disconnected"  # `disconnection: session time: …`
    IAM_INVALID_TOKEN = "iam_invalid_token"
    IAM_EXPIRED_TOKEN = "iam_expired_token"
    IAM_NOT_AUTHORIZED = "iam_not_authorized"
    IAM_THROTTLED = "iam_throttled"
    IAM_INTERNAL_ERROR = "iam_internal_error"
    CLIENT_CONNECT = "client_connect"  # the console's own login succeeded
    CLIENT_FAILED = "client_failed"  # the console's own login failed
    ACTION = "action"  # a cancel/terminate the console sent
    OTHER = "other"


class Outcome(StrEnum):
    """How a connection attempt ended: `ok` (logged in), `failed` (credentials refused), `refused` (refused
    for another reason: pg_hba.conf, role not permitted, connection limits, no such database, server
    starting). Both `failed` and `refused` are failed logins (`Attempt.failed`)."""

    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """Observable state of one long-lived monitoring connection (one per instance)."""

    state: ConnState
    attempt: int = 0
    next_try_at: datetime | None = None
    reason: str | None = None  # never contains a token or password
    since: datetime | None = None
    token_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old a part of a snapshot is (an instance's sessions, the events pane, the IAM pane, discovery).

    `collected_at` is when the data shown was read (None: never yet); the age is `now - collected_at`, so a
    viewer computes it at render time and it keeps growing while nothing new arrives. `stale` means the last
    attempt to refresh it failed or did not finish within its budget; `reason` says which, on one line.
    """

    collected_at: datetime | None = None
    stale: bool = False
    reason: str | None = None

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the data was read (None when never read)."""
        return None if self.collected_at is None else max(0.0, (now - self.collected_at).total_seconds())


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """Server-wide figures of one instance from one round; None where the server cannot tell.

    Transactions per second come from two samples: `xact_total` (commits + rollbacks of every database since
    the statistics were reset) at the server's clock `sampled_at`.
    """

    sampled_at: datetime | None = None
    max_connections: int | None = None
    connections: int | None = None  # client backends, all users (pg_stat_activity)
    xact_total: int | None = None
    in_recovery: bool | None = None
    replica_lag_s: float | None = None  # Aurora's own figure (aurora_replica_status), else replay lag
    can_signal: bool | None = None  # the monitoring user is a member of pg_signal_backend


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One instance of a cluster (Aurora writer/reader, or an RDS for PostgreSQL instance)."""

    id: str
    role: InstanceRole
    endpoint: str
    port: int
    status: ConnState = "connecting"
    server_version: str | None = None
    error: str | None = None
    connection: ConnectionStatus | None = None  # structured state (attempt, next try, token expiry)
    freshness: Freshness = field(default_factory=Freshness)  # of this instance's sessions
    health: ServerHealth | None = None  # of the last round that could read it


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One row of pg_stat_activity on one instance."""

    instance: str
    pid: int
    datname: str | None
    usename: str | None
    application_name: str | None
    client_addr: str | None
    client_hostname: str | None
    client_port: int | None
    backend_start: datetime | None
    xact_start: datetime | None
    query_start: datetime | None
    state_change: datetime | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    backend_type: str | None
    query_id: int | None
    query: str | None
    blocked_by: tuple[int, ...] = ()
    query_truncated: bool = False
    # seconds since query_start (active) or state_change (idle in transaction), computed server-side
    duration_s: float | None = None
    xact_duration_s: float | None = None

    @property
    def key(self) -> str:
        """Stable row key across rounds: instance + pid + backend start."""
        start = self.backend_start.timestamp() if self.backend_start else 0.0
        return f"{self.instance}:{self.pid}:{start:.6f}"


@dataclass(frozen=True, slots=True)
class ConnEvent:
    """A connection-log event: from RDS logs, the iam-db-auth-error log, or the console itself."""

    time: datetime | None
    kind: EventKind
    user: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    pid: int | None = None
    ssl: dict[str, Any] | None = None  # {"protocol","cipher","bits"} or {"enabled": False}
    source: str = "cloudwatch"  # cloudwatch | rds_logfile | file | client | iam_log
    message: str = ""
    instance: str | None = None
    iam_reason: str | None = None  # AWS's own reason joined onto an auth_failed line
    caller_arn: str | None = None
    session_time: str | None = None
    raw: str = ""  # the whole log entry as read (prefix included, control characters made visible)
    method: str | None = None  # authentication method the line names (pam, password, scram-sha-256, …)
    sqlstate: str | None = None  # with log_error_verbosity = verbose, or %e in the prefix


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login: its lines (received; authorized or refused; AWS's reason; disconnection) joined into one.

    `time` is when it was received (else its first line), `outcome` how it ended, `method` the authentication
    method (`iam` for RDS's PAM), `aws_code`/`aws_reason`/`caller_arn` from the iam-db-auth-error line joined
    to it, `message` the line that decided it, `session_s` the session time of an ended session, `lines` the
    raw log lines (visible text) in order.
    """

    time: datetime | None
    outcome: Outcome
    user: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    pid: int | None = None
    method: str | None = None
    ssl: dict[str, Any] | None = None
    aws_code: str | None = None
    aws_reason: str | None = None
    caller_arn: str | None = None
    message: str = ""
    session_s: float | None = None
    instance: str | None = None
    source: str = "cloudwatch"
    lines: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """The one definition of a failed login: any outcome but `ok`."""
        return self.outcome is not Outcome.OK

    @property
    def key(self) -> str:
        """Stable identity across rounds: instance, pid, time received, client address."""
        stamp = self.time.isoformat() if self.time else ""
        return f"{self.instance}|{self.pid}|{stamp}|{self.host}|{self.port}"


@dataclass(frozen=True, slots=True)
class FailureCount:
    """Auth failures per user and source host over a window."""

    user: str | None
    host: str | None
    count: int
    last: datetime | None


@dataclass(frozen=True, slots=True)
class AssumeRoleEvent:
    """A CloudTrail AssumeRole on the monitoring role."""

    time: datetime
    source_account: str | None
    source_ip: str | None
    principal_arn: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem with a stable code and a fix text."""

    severity: Severity
    code: FindingCode
    message: str
    fix: str = ""
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """An IAM principal allowed to rds-db:connect as a database user."""

    principal_arn: str
    policy_name: str
    resource: str
    conditional: bool = False
    last_used: datetime | None = None


@dataclass(frozen=True, slots=True)
class DbUser:
    """A database role as seen on the IAM pane."""

    name: str
    rds_iam: bool
    member_of: tuple[str, ...]
    can_login: bool
    superuser_like: bool = False
    iam_principals: tuple[Grant, ...] = ()
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class IamMetrics:
    """IamDbAuthConnection* counters of the last hour, per instance (sum over the hour + per-5-min series)."""

    instance: str
    totals: dict[str, float] = field(default_factory=dict)
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IamSnapshot:
    """IAM mapping of one cluster: database side joined with AWS side."""

    iam_auth_enabled: bool | None
    resource_id: str | None
    users: tuple[DbUser, ...] = ()
    findings: tuple[Finding, ...] = ()
    metrics: tuple[IamMetrics, ...] = ()
    assume_role_events: tuple[AssumeRoleEvent, ...] = ()
    iam_readable: bool = False


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a cluster could not be collected: the step, a message and a hint (never a traceback)."""

    step: str
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything known about one cluster after one collection round."""

    name: str
    status: Literal["ok", "error"]
    collected_at: datetime
    error: ErrorInfo | None = None
    group: str | None = None
    account_id: str | None = None
    region: str | None = None
    identity_arn: str | None = None
    endpoint: str | None = None
    server_version: str | None = None
    token_expires_at: datetime | None = None
    instances: tuple[InstanceInfo, ...] = ()
    activity: tuple[SessionRow, ...] = ()
    events: tuple[ConnEvent, ...] = ()
    failures: tuple[FailureCount, ...] = ()
    attempts: tuple[Attempt, ...] = ()  # connection attempts joined from the events, oldest first
    iam: IamSnapshot | None = None
    findings: tuple[Finding, ...] = ()  # collection findings (e.g. insufficient privilege)
    stale: bool = False
    data_age_s: float | None = None  # age of the data shown when stale
    round_ms: float | None = None
    actions_allowed: bool = False
    # age of each AWS-fed part, read on its own cadence (the activity part's is per instance, above)
    discovery_freshness: Freshness = field(default_factory=Freshness)
    events_freshness: Freshness = field(default_factory=Freshness)
    iam_freshness: Freshness = field(default_factory=Freshness)
