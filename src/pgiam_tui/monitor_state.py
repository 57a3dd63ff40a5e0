"""Per-cluster state of the Monitor, and the immutable ClusterSnapshots built from it.

Split from monitor.py (which keeps the loops and rounds) to keep both small. Also binds the events and IAM
collectors of collect/ (engineer "events+iam") behind two small hooks.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pgiam_tui.advice import check_advice
from pgiam_tui.collect.activity import ActivityResult
from pgiam_tui.config import ClusterConfig
from pgiam_tui.db.connection import InstanceConnection, utcnow
from pgiam_tui.db.conninfo import ConnTarget, one_line, scrub
from pgiam_tui.model import (
    Attempt,
    ClusterSnapshot,
    ConnectionStatus,
    ConnEvent,
    ErrorInfo,
    FailureCount,
    Finding,
    IamSnapshot,
    InstanceInfo,
    SessionRow,
)

log = logging.getLogger("pgiam_tui.monitor")

CLIENT_EVENTS_KEPT = 200
# hooks to the events and IAM collectors: (resolved, session, ...) -> part of the snapshot
EventsResult = tuple[
    tuple[ConnEvent, ...], tuple[FailureCount, ...], tuple[Finding, ...], tuple[Attempt, ...]
]
EventsHook = Callable[[Any, Any, tuple[ConnEvent, ...]], Awaitable[EventsResult]]
IamHook = Callable[[Any, Any, Any, Any], Awaitable[IamSnapshot]]


@dataclass(slots=True)
class ClusterWatch:
    """Mutable per-cluster state, owned by the Monitor (snapshots handed out are immutable copies)."""

    cfg: ClusterConfig
    interval: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    refresh_requested: bool = False
    task: asyncio.Task[None] | None = None
    warmup: asyncio.Future[tuple[Any, Any]] | None = None  # (session, resolved) begun by Monitor.start()
    last_round_end: float = 0.0
    session: Any = None  # boto3.Session of cfg.profile, looked up once per discovery period
    resolved: Any = None  # aws.discovery.ResolvedCluster
    resolved_at: float = 0.0
    identity_arn: str | None = None
    conns: dict[str, InstanceConnection] = field(default_factory=dict)
    # last good rows of each instance and when they were read (kept to show, marked stale, while it is down)
    rows: dict[str, tuple[tuple[SessionRow, ...], datetime]] = field(default_factory=dict)
    client_events: deque[ConnEvent] = field(default_factory=lambda: deque(maxlen=CLIENT_EVENTS_KEPT))
    events_hook: EventsHook | None = None
    iam_hook: IamHook | None = None
    events: tuple[ConnEvent, ...] = ()  # from the events collector (client events merged in by it)
    events_problems: tuple[Finding, ...] = ()
    events_merged_clients: bool = False
    iam_problems: tuple[Finding, ...] = ()
    discovery_problems: tuple[Finding, ...] = ()
    failures: tuple[FailureCount, ...] = ()
    attempts: tuple[Attempt, ...] = ()  # connection attempts joined by the events collector
    iam: IamSnapshot | None = None
    iam_at: float = 0.0
    latest: ClusterSnapshot | None = None
    # the side parts ("iam", "events", "identity") running in the background: at most one of each
    side_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    activity_findings: tuple[Finding, ...] = ()  # of the last round's activity query (kept for side updates)


def build_snapshot(
    w: ClusterWatch,
    resolved: Any,
    conns: list[InstanceConnection],
    results: list[ActivityResult | BaseException],
) -> ClusterSnapshot:
    """The snapshot of a round: fresh rows of the instances that answered, the last good rows (stale) of
    those that did not, and the first failure (the writer's first) as the cluster's ErrorInfo."""
    now = utcnow()
    activity: list[SessionRow] = []
    findings: list[Finding] = []
    errors: list[tuple[InstanceConnection, BaseException]] = []
    oldest: datetime | None = None
    for conn, res in zip(conns, results, strict=True):
        iid = conn.target.instance_id
        if isinstance(res, ActivityResult):
            w.rows[iid] = (res.rows, now)
            activity.extend(res.rows)
            findings.extend(res.findings)
        else:
            errors.append((conn, res))
            if iid in w.rows:  # show the last good rows of a lost instance, marked stale
                rows, at = w.rows[iid]
                activity.extend(rows)
                oldest = at if oldest is None or at < oldest else oldest
    w.activity_findings = tuple(findings)
    health = {r.instance: r.health for r in results if isinstance(r, ActivityResult)}
    instances = tuple(replace(instance_info(c), health=health.get(c.target.instance_id)) for c in conns)
    writer = next((c for c in conns if c.target.role in ("writer", "instance")), conns[0] if conns else None)
    error: ErrorInfo | None = None
    if errors:
        # report the writer's problem first: it is the one the cluster endpoint reaches
        errors.sort(key=lambda e: e[0].target.role not in ("writer", "instance"))
        conn, exc = errors[0]
        more = f" (+{len(errors) - 1} more instances)" if len(errors) > 1 else ""
        error = ErrorInfo(
            getattr(exc, "step", "query"),
            f"{conn.target.instance_id}: {one_line(scrub(str(exc) or type(exc).__name__))}{more}",
            getattr(exc, "hint", "") or "",
        )
    snap = ClusterSnapshot(
        name=w.cfg.name,
        status="error" if error else "ok",
        collected_at=now,
        error=error,
        group=w.cfg.group,
        account_id=resolved.account_id,
        region=resolved.region,
        identity_arn=w.identity_arn,
        endpoint=resolved.endpoint,
        server_version=writer.server_version if writer else None,
        token_expires_at=writer.status.token_expires_at if writer else None,
        instances=instances,
        activity=tuple(activity),
        events=merged_events(w),
        failures=w.failures,
        attempts=w.attempts,
        iam=w.iam,
        findings=side_findings(w),
        stale=oldest is not None,
        data_age_s=(now - oldest).total_seconds() if oldest is not None else None,
        actions_allowed=w.cfg.allow_actions,
    )
    return snap


def side_findings(w: ClusterWatch) -> tuple[Finding, ...]:
    """The snapshot's findings: the last activity round's, discovery's, the events' and IAM's problems."""
    return (*w.activity_findings, *w.discovery_problems, *w.events_problems, *w.iam_problems)


def with_side_parts(snap: ClusterSnapshot, w: ClusterWatch) -> ClusterSnapshot:
    """SNAP (immutable, unchanged) copied with the latest events, failures, IAM mapping, identity and findings
    of W: what a side part that finished after SNAP's round adds to it."""
    return replace(
        snap,
        identity_arn=w.identity_arn or snap.identity_arn,
        events=merged_events(w),
        failures=w.failures,
        attempts=w.attempts,
        iam=w.iam,
        findings=side_findings(w) if snap.status == "ok" or w.activity_findings else snap.findings,
    )


def merged_events(w: ClusterWatch) -> tuple[ConnEvent, ...]:
    """Log events plus the console's own attempts, newest first."""
    merged = list(w.events)
    if not w.events_merged_clients:  # no events collector: the console's own attempts alone
        merged.extend(w.client_events)
    merged.sort(key=lambda e: e.time.timestamp() if e.time else 0.0, reverse=True)
    return tuple(merged)


def error_snapshot(w: ClusterWatch, error: ErrorInfo) -> ClusterSnapshot:
    """A whole-cluster failure (credentials, discovery, ...): the last good data, marked stale."""
    now = utcnow()
    last = w.latest
    ages = [at for _, at in w.rows.values()]
    oldest = min(ages) if ages else None
    activity = tuple(r for rows, _ in w.rows.values() for r in rows)
    return ClusterSnapshot(
        name=w.cfg.name,
        status="error",
        collected_at=now,
        error=error,
        group=w.cfg.group,
        account_id=last.account_id if last else w.cfg.account_id,
        region=last.region if last else w.cfg.region,
        identity_arn=w.identity_arn,
        endpoint=last.endpoint if last else w.cfg.endpoint,
        server_version=last.server_version if last else None,
        token_expires_at=last.token_expires_at if last else None,
        instances=tuple(instance_info(c) for c in w.conns.values()),
        activity=activity,
        events=merged_events(w),
        failures=w.failures,
        attempts=w.attempts,
        iam=w.iam,
        findings=last.findings if last else (),
        stale=oldest is not None,
        data_age_s=(now - oldest).total_seconds() if oldest is not None else None,
        actions_allowed=w.cfg.allow_actions,
    )


def target_for(cfg: ClusterConfig, resolved: Any, inst: Any) -> ConnTarget:
    """Connection parameters of one discovered instance (token host = its endpoint, TCP = its tunnel)."""
    return ConnTarget(
        cluster=cfg.name,
        instance_id=inst.id,
        role=inst.role,
        endpoint=inst.endpoint,
        port=inst.port,
        region=resolved.region,
        database=cfg.database,
        user=cfg.user,
        auth=cfg.auth,
        connect_host=inst.connect_host,
        connect_port=inst.connect_port,
        sslmode=cfg.sslmode,
        sslrootcert=cfg.sslrootcert,
        connect_timeout_s=cfg.connect_timeout_s,
        statement_timeout_ms=cfg.statement_timeout_ms,
        read_only=cfg.read_only,
    )


def resolved_id(resolved: Any) -> str | None:
    """The resource id of a ResolvedCluster (None when unknown)."""
    value = getattr(resolved, "resource_id", None)
    return str(value) if value else None


def instance_info(conn: InstanceConnection) -> InstanceInfo:
    """The snapshot view of one instance connection, with its structured state."""
    st = conn.status
    t = conn.target
    return InstanceInfo(
        id=t.instance_id,
        role=t.role,
        endpoint=t.endpoint,
        port=t.port,
        status=st.state,
        server_version=conn.server_version,
        error=None if st.state == "connected" else status_text(st),
        connection=st,
    )


def status_text(st: ConnectionStatus) -> str | None:
    """A one-line description of a non-connected state (attempt and next try included)."""
    if st.state == "connecting":
        return "connecting"
    parts: list[str] = [st.state]
    if st.attempt:
        parts.append(f"attempt {st.attempt}")
    if st.next_try_at is not None:
        parts.append(f"next try {st.next_try_at:%H:%M:%S}")
    text = ", ".join(parts)
    return f"{text}: {st.reason}" if st.reason else text


def aws_error(step: str, exc: BaseException, cfg: ClusterConfig) -> ErrorInfo:
    """ErrorInfo for a boto3-side failure, with the hint of AwsCredentialError / DiscoveryError if any."""
    message = one_line(scrub(str(exc) or type(exc).__name__))
    hint = getattr(exc, "hint", None) or (
        f"{check_advice(cfg.name)} for a step-by-step diagnosis" if step != "credentials" else ""
    )
    if step == "credentials" and not hint:
        hint = f"check the AWS profile {cfg.profile!r} (`pgiam-tui profiles --resolve`)"
    return ErrorInfo(step, message, hint)


def optional_class(module: str, name: str) -> Any:
    """A collector class from a sibling module, or None while that module is not there (logged once)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.info("%s.%s not available: that pane stays empty", module, name)
        return None


def make_events_hook(cfg: ClusterConfig) -> EventsHook | None:
    """Bind collect/events.py's EventsCollector for one cluster (its cursors live in the object).

    It reads the log sources, joins AWS's IAM reasons and merges the console's own attempts (client events).
    """
    cls = optional_class("pgiam_tui.collect.events", "EventsCollector")
    if cls is None:
        return None
    collector = cls(cfg)

    async def hook(resolved: Any, session: Any, client_events: tuple[ConnEvent, ...]) -> EventsResult:
        events, failures = await collector.collect(resolved, session, client_events=client_events)
        problems = tuple(getattr(collector, "problems", ()))
        return tuple(events), tuple(failures), problems, tuple(getattr(collector, "attempts", ()))

    return hook


def make_iam_hook(cfg: ClusterConfig) -> IamHook | None:
    """Bind collect/iam_mapping.py's IamMappingCollector for one cluster (it caches its AWS reads)."""
    cls = optional_class("pgiam_tui.collect.iam_mapping", "IamMappingCollector")
    if cls is None:
        return None
    collector = cls(cfg)

    async def hook(resolved: Any, session: Any, fetch: Any, iam_session: Any) -> IamSnapshot:
        result: IamSnapshot = await collector.collect(resolved, session, fetch, iam_session=iam_session)
        return result

    return hook
