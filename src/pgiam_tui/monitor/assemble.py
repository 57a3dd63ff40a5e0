"""The one function that turns a cluster's pieces into a ClusterSnapshot, with one set of rules.

The console, `snapshot` (and later `record` and `serve`) all get their snapshots from here:

* **Rows**: every instance's last rows; an instance whose last read failed or ran over its budget keeps its
  rows, marked stale per instance (`InstanceInfo.freshness`: when read, why stale).
* **Status**: "error" when no instance answered (or the whole cluster failed: credentials, discovery, no
  instance); a cluster whose writer is down but whose reader answers is "ok" with the reader's live rows,
  and the failed instance says so in its own InstanceInfo (never a cluster-wide ✖ over live rows).
* **Error**: only when the cluster failed; then the writer's failure first, naming the instance once,
  "(+N more instances)" after it.
* **Panes**: events and IAM as their own cadences last read them, each with its freshness; a read in flight
  for longer than its budget is stale at once ("no answer from AWS for N s"). The IAM flag is the latest
  discovery's when discovery is newer than the IAM read (discovery is the cheap, frequent check).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Literal

from pgiam_tui.db.conninfo import one_line
from pgiam_tui.model import (
    ClusterSnapshot,
    ConnectionStatus,
    ConnEvent,
    ErrorInfo,
    Finding,
    Freshness,
    IamSnapshot,
    InstanceInfo,
    SessionRow,
)
from pgiam_tui.monitor.parts import ClusterParts, DiscoveryPart, EventsPart, IamPart, InstanceState
from pgiam_tui.vocabulary import FindingCode

__all__ = ["AWS_READ_BUDGET_S", "assemble_snapshot", "merged_events", "status_text"]

#: an AWS read (discovery, events, IAM) still unanswered after this long marks its part stale; normal
#: answers take well under a second, botocore's own timeouts (5 s connect, 20 s read, retries) are longer
AWS_READ_BUDGET_S = 10.0

_WRITER_ROLES = ("writer", "instance")


def assemble_snapshot(
    parts: ClusterParts, now: datetime, *, aws_read_budget_s: float = AWS_READ_BUDGET_S
) -> ClusterSnapshot:
    """The ClusterSnapshot of PARTS at NOW (see the module docstring for the rules); an AWS read in flight
    for longer than AWS_READ_BUDGET_S marks its part stale."""
    cfg = parts.cfg
    found = parts.discovery.found
    resolved = found.resolved if found is not None else None
    infos = tuple(_instance_info(s) for s in parts.instances)
    activity: list[SessionRow] = []
    findings: list[Finding] = []
    failed: list[InstanceState] = []
    oldest_stale: datetime | None = None
    for state in parts.instances:
        reading = state.reading
        activity.extend(reading.rows)
        if reading.error is None and reading.read_at is not None:
            findings.extend(reading.findings)
            continue
        if reading.error is not None:
            failed.append(state)
        if reading.rows and reading.read_at is not None:
            oldest_stale = reading.read_at if oldest_stale is None else min(oldest_stale, reading.read_at)
    answered = any(s.reading.error is None and s.reading.read_at is not None for s in parts.instances)
    cluster_failed = parts.error is not None or not parts.instances or (bool(failed) and not answered)
    status: Literal["ok", "error"] = "error" if cluster_failed else "ok"
    # an instance that failed while another answered is reported by its own InstanceInfo (stale, reason):
    # the cluster-wide error is for a cluster that shows nothing live
    error = parts.error or (_instances_error(failed) if cluster_failed else None)
    writer = next((s for s in parts.instances if s.target.role in _WRITER_ROLES), None)
    writer = writer or (parts.instances[0] if parts.instances else None)
    iam = _iam(parts.iam, parts.discovery)
    findings.extend(_discovery_findings(parts.discovery))
    findings.extend(parts.events.problems)
    findings.extend(parts.iam.problems)
    return ClusterSnapshot(
        name=cfg.name,
        status=status,
        collected_at=now,
        error=error,
        group=cfg.group,
        account_id=resolved.account_id if resolved is not None else cfg.account_id,
        region=resolved.region if resolved is not None else cfg.region,
        identity_arn=parts.identity_arn,
        endpoint=resolved.endpoint if resolved is not None else cfg.endpoint,
        server_version=writer.server_version if writer is not None else None,
        token_expires_at=writer.connection.token_expires_at if writer is not None else None,
        instances=infos,
        activity=tuple(activity),
        events=merged_events(parts.events, parts.client_events),
        failures=parts.events.failures,
        attempts=parts.events.attempts,
        iam=iam,
        findings=tuple(findings),
        stale=oldest_stale is not None,
        data_age_s=(now - oldest_stale).total_seconds() if oldest_stale is not None else None,
        round_ms=parts.round_ms,
        actions_allowed=cfg.allow_actions,
        discovery_freshness=_aws_freshness(
            found.at if found is not None else None,
            parts.discovery.error.message if parts.discovery.error else None,
            parts.discovery.running_since,
            now,
            aws_read_budget_s,
        ),
        events_freshness=_aws_freshness(
            parts.events.read_at, parts.events.error, parts.events.running_since, now, aws_read_budget_s
        ),
        iam_freshness=_aws_freshness(
            parts.iam.read_at, parts.iam.error, parts.iam.running_since, now, aws_read_budget_s
        ),
    )


def _instance_info(state: InstanceState) -> InstanceInfo:
    st = state.connection
    t = state.target
    reading = state.reading
    reason = reading.error.message if reading.error is not None else None
    error = reason if reason is not None else (None if st.state == "connected" else status_text(st))
    return InstanceInfo(
        id=t.instance_id,
        role=t.role,
        endpoint=t.endpoint,
        port=t.port,
        status=st.state,
        server_version=state.server_version,
        error=error,
        connection=st,
        freshness=Freshness(collected_at=reading.read_at, stale=reading.error is not None, reason=reason),
        health=reading.health,
    )


def status_text(st: ConnectionStatus) -> str:
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


def _instances_error(failed: list[InstanceState]) -> ErrorInfo | None:
    """The first failure (the writer's first: the cluster endpoint reaches it), naming its instance once."""
    if not failed:
        return None
    failed = sorted(failed, key=lambda s: s.target.role not in _WRITER_ROLES)
    first = failed[0]
    err = first.reading.error
    assert err is not None
    more = f" (+{len(failed) - 1} more instances)" if len(failed) > 1 else ""
    return ErrorInfo(err.step, f"{first.target.instance_id}: {err.message}{more}", err.hint)


def _iam(part: IamPart, discovery: DiscoveryPart) -> IamSnapshot | None:
    """The IAM pane's snapshot, its flag and resource id refreshed by a newer discovery."""
    found = discovery.found
    if found is None:
        return part.iam
    resolved = found.resolved
    if part.iam is None:
        # no IAM read yet: what discovery knows (flag, resource id) is already true
        return IamSnapshot(iam_auth_enabled=resolved.iam_auth_enabled, resource_id=resolved.resource_id)
    if part.read_at is None or found.at >= part.read_at:
        return replace(part.iam, iam_auth_enabled=resolved.iam_auth_enabled)
    return part.iam


def _discovery_findings(discovery: DiscoveryPart) -> tuple[Finding, ...]:
    """A failed *re*discovery: open sessions still work, the last known members are still watched."""
    if discovery.found is None or discovery.error is None:
        return ()
    info = discovery.error
    message = f"rediscovery failed: {info.message}"
    return (Finding("warning", FindingCode.DISCOVERY_FAILED, message, info.hint),)


def _aws_freshness(
    read_at: datetime | None,
    error: str | None,
    running_since: datetime | None,
    now: datetime,
    budget_s: float,
) -> Freshness:
    """Fresh, stale because the last read failed, or stale because the read in flight is overdue."""
    if running_since is not None:
        waited = (now - running_since).total_seconds()
        if waited > budget_s:
            return Freshness(read_at, True, f"timeout: no answer from AWS for {waited:.0f} s")
    if error is not None:
        return Freshness(read_at, True, one_line(error))
    return Freshness(read_at)


def merged_events(part: EventsPart, client_events: tuple[ConnEvent, ...]) -> tuple[ConnEvent, ...]:
    """Log events plus the console's own attempts (unless the collector merged them already), newest first."""
    merged = list(part.events)
    if not part.merged_clients:
        merged.extend(client_events)
    merged.sort(key=lambda e: e.time.timestamp() if e.time else 0.0, reverse=True)
    return tuple(merged)
