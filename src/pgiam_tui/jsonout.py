"""ClusterSnapshots -> the JSON contract of DESIGN.md (`snapshot --json`).

Contract fields come first and keep their names; extra fields are added beside them (the contract allows it).
Times are ISO 8601 with offset. No token can appear: snapshots never hold one (only its expiry time).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pgiam_tui.model import (
    AssumeRoleEvent,
    Attempt,
    ClusterSnapshot,
    ConnectionStatus,
    ConnEvent,
    DbUser,
    EventKind,
    FailureCount,
    Finding,
    Freshness,
    Grant,
    IamMetrics,
    IamSnapshot,
    InstanceInfo,
    ServerHealth,
    SessionRow,
    iso,
)


def snapshot_to_json(snapshots: Iterable[ClusterSnapshot]) -> dict[str, Any]:
    """`{"clusters": [...]}` for SNAPSHOTS, in the order given."""
    return {"clusters": [cluster_to_json(s) for s in snapshots]}


def cluster_to_json(s: ClusterSnapshot) -> dict[str, Any]:
    """One cluster object of the contract (plus group, account, region, staleness, round time, findings)."""
    return {
        "name": s.name,
        "status": s.status,
        "error": (
            {"step": s.error.step, "message": s.error.message, "hint": s.error.hint} if s.error else None
        ),
        "identity_arn": s.identity_arn,
        "endpoint": s.endpoint,
        "server_version": s.server_version,
        "token_expires_at": iso(s.token_expires_at),
        "instances": [_instance(i, s.collected_at) for i in s.instances],
        "activity": [_session(r) for r in s.activity],
        "events": [_event(e) for e in s.events],
        "attempts": [attempt_to_json(a) for a in s.attempts],
        "iam": _iam(s.iam),
        # additions
        "collected_at": iso(s.collected_at),
        "group": s.group,
        "account_id": s.account_id,
        "region": s.region,
        "stale": s.stale,
        "data_age_s": _round(s.data_age_s),
        "round_ms": _round(s.round_ms),
        "discovery_freshness": _freshness(s.discovery_freshness, s.collected_at),
        "events_freshness": _freshness(s.events_freshness, s.collected_at),
        "iam_freshness": _freshness(s.iam_freshness, s.collected_at),
        "failures": [_failure(f) for f in s.failures],
        "findings": [_finding(f) for f in s.findings],
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _instance(i: InstanceInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": i.id,
        "role": i.role,
        "endpoint": i.endpoint,
        "status": i.status,
        "port": i.port,
        "server_version": i.server_version,
        "error": i.error,
        "connection": _connection(i.connection),
        "freshness": _freshness(i.freshness, now),
        "health": _health(i.health),
    }


def _freshness(f: Freshness, now: datetime) -> dict[str, Any]:
    """When a part was read, whether it is stale and why (and its age at NOW, the snapshot's time)."""
    return {
        "collected_at": iso(f.collected_at),
        "age_s": _round(f.age_s(now)),
        "stale": f.stale,
        "reason": f.reason,
    }


def _health(h: ServerHealth | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {
        "sampled_at": iso(h.sampled_at),
        "max_connections": h.max_connections,
        "connections": h.connections,
        "xact_total": h.xact_total,
        "in_recovery": h.in_recovery,
        "replica_lag_s": _round(h.replica_lag_s),
        "can_signal": h.can_signal,
    }


def _connection(c: ConnectionStatus | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "state": c.state,
        "attempt": c.attempt,
        "next_try_at": iso(c.next_try_at),
        "reason": c.reason,
        "since": iso(c.since),
        "token_expires_at": iso(c.token_expires_at),
    }


def _session(r: SessionRow) -> dict[str, Any]:
    return {
        "instance": r.instance,
        "pid": r.pid,
        "datname": r.datname,
        "usename": r.usename,
        "application_name": r.application_name,
        "client_addr": r.client_addr,
        "client_hostname": r.client_hostname,
        "client_port": r.client_port,
        "backend_start": iso(r.backend_start),
        "xact_start": iso(r.xact_start),
        "query_start": iso(r.query_start),
        "state": r.state,
        "wait_event_type": r.wait_event_type,
        "wait_event": r.wait_event,
        "blocked_by": list(r.blocked_by),
        "query": r.query,
        # additions
        "state_change": iso(r.state_change),
        "backend_type": r.backend_type,
        "query_id": r.query_id,
        "query_truncated": r.query_truncated,
        "duration_s": _round(r.duration_s),
        "xact_duration_s": _round(r.xact_duration_s),
    }


def _event(e: ConnEvent) -> dict[str, Any]:
    return {
        "time": iso(e.time),
        "kind": e.kind.value if isinstance(e.kind, EventKind) else e.kind,
        "user": e.user,
        "database": e.database,
        "host": e.host,
        "port": e.port,
        "pid": e.pid,
        "ssl": dict(e.ssl) if e.ssl is not None else None,
        "source": e.source,
        "message": e.message,
        # additions
        "instance": e.instance,
        "iam_reason": e.iam_reason,
        "caller_arn": e.caller_arn,
        "session_time": e.session_time,
        "method": e.method,
        "sqlstate": e.sqlstate,
    }


def attempt_to_json(a: Attempt) -> dict[str, Any]:
    """One connection attempt of the contract (`outcome` is "ok", "failed" or "refused"), plus its instance,
    source and raw lines."""
    return {
        "time": iso(a.time),
        "user": a.user,
        "database": a.database,
        "host": a.host,
        "port": a.port,
        "pid": a.pid,
        "outcome": a.outcome.value,
        "method": a.method,
        "ssl": dict(a.ssl) if a.ssl is not None else None,
        "aws_code": a.aws_code,
        "aws_reason": a.aws_reason,
        "caller_arn": a.caller_arn,
        "message": a.message,
        "session_s": _round(a.session_s),
        # additions
        "instance": a.instance,
        "source": a.source,
        "lines": list(a.lines),
    }


def event_to_json(e: ConnEvent) -> dict[str, Any]:
    """One connection-log event of the contract (`pgiam-tui events` uses it too)."""
    return _event(e)


def _finding(f: Finding) -> dict[str, Any]:
    return {"severity": f.severity, "code": f.code, "message": f.message, "fix": f.fix, "user": f.user}


def _failure(f: FailureCount) -> dict[str, Any]:
    return {"user": f.user, "host": f.host, "count": f.count, "last": iso(f.last)}


def _grant(g: Grant) -> dict[str, Any]:
    return {
        "principal_arn": g.principal_arn,
        "policy_name": g.policy_name,
        "resource": g.resource,
        "conditional": g.conditional,
        "last_used": iso(g.last_used),
    }


def _user(u: DbUser) -> dict[str, Any]:
    return {
        "name": u.name,
        "rds_iam": u.rds_iam,
        "member_of": list(u.member_of),
        "can_login": u.can_login,
        "iam_principals": [_grant(g) for g in u.iam_principals],
        "findings": [_finding(f) for f in u.findings],
        # additions
        "superuser_like": u.superuser_like,
    }


def _metrics(m: IamMetrics) -> dict[str, Any]:
    return {
        "instance": m.instance,
        "totals": dict(m.totals),
        "series": {k: list(v) for k, v in m.series.items()},
    }


def _assume(a: AssumeRoleEvent) -> dict[str, Any]:
    return {
        "time": iso(a.time),
        "source_account": a.source_account,
        "source_ip": a.source_ip,
        "principal_arn": a.principal_arn,
    }


def _iam(i: IamSnapshot | None) -> dict[str, Any] | None:
    if i is None:
        return None
    return {
        "iam_auth_enabled": i.iam_auth_enabled,
        "resource_id": i.resource_id,
        "users": [_user(u) for u in i.users],
        "findings": [_finding(f) for f in i.findings],
        # additions
        "iam_readable": i.iam_readable,
        "metrics": [_metrics(m) for m in i.metrics],
        "assume_role_events": [_assume(a) for a in i.assume_role_events],
    }
