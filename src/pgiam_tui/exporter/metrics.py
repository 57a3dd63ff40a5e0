"""The fleet's state as Prometheus metrics, built from the snapshots the console would show.

`FleetMetrics` keeps the newest snapshot of each cluster (handed in by the Monitor) and, at each scrape,
yields metric families from them (prometheus_client's custom-collector API: no hand-written exposition text).
Gauges describe the newest snapshot; the connection-attempt counter adds each joined attempt once, however
many snapshots repeat it.

Labels and cardinality: label values come from the config (cluster), AWS (instance), the server's own
vocabularies (session state, finding code and severity, AWS error code, attempt outcome) and never from query
text, application names or user names of failed logins (anyone can try to log in as any name). Worst case
per cluster with I instances: I x (5 + 8 states) + 3 outcomes x 6 AWS codes + findings (codes x 3 severities,
about 40) + 4, i.e. about 13 I + 62 series; 50 clusters of 3 instances: about 5,000 series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgiam_tui.model import ClusterSnapshot, SessionRow

__all__ = ["FleetMetrics"]

# pg_stat_activity.state values (PostgreSQL 12-18); anything else is counted as "other"
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call",
          "disabled", "starting", "other")  # fmt: skip
SEEN_LIMIT = 100_000  # attempt keys remembered per cluster (older ones are forgotten first)


def _state(row: SessionRow) -> str:
    return row.state if row.state in STATES else "other"


class FleetMetrics(Collector):
    """Thread-safe: `update` runs on the Monitor's loop, `collect` on the HTTP server's threads."""

    def __init__(self, clusters: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, ClusterSnapshot | None] = dict.fromkeys(clusters)
        self._updated_at: dict[str, float] = {}
        self._attempts: dict[tuple[str, str, str], int] = {}
        self._seen: dict[str, dict[str, None]] = {}
        self.started_at = time.monotonic()

    def update(self, snap: ClusterSnapshot) -> None:
        """Take the newest snapshot of a cluster; count its attempts not seen before."""
        with self._lock:
            self._latest[snap.name] = snap
            self._updated_at[snap.name] = time.monotonic()
            seen = self._seen.setdefault(snap.name, {})
            for attempt in snap.attempts:
                key = attempt.key  # the same login in later snapshots is counted once
                if key in seen:
                    continue
                seen[key] = None
                code = attempt.aws_code or ""
                counter = (snap.name, str(attempt.outcome), code)
                self._attempts[counter] = self._attempts.get(counter, 0) + 1
            while len(seen) > SEEN_LIMIT:
                del seen[next(iter(seen))]

    def ages(self) -> dict[str, float | None]:
        """Seconds since each cluster last published (None: never yet)."""
        now = time.monotonic()
        with self._lock:
            return {n: (now - self._updated_at[n]) if n in self._updated_at else None for n in self._latest}

    def collect(self) -> Iterator[Metric]:
        """Metric families from the newest snapshots (called by prometheus_client at each scrape)."""
        with self._lock:
            snaps = dict(self._latest)
            attempts = dict(self._attempts)
        yield from _cluster_metrics(snaps)
        yield from _instance_metrics(snaps)
        yield from _iam_metrics(snaps)
        counter = CounterMetricFamily(
            "pgiam_connection_attempts",
            "Logins read from the cluster's logs (joined lines), by outcome (ok; failed: credentials "
            "refused; refused: for another reason) and AWS's iam-db-auth-error code",
            labels=["cluster", "outcome", "aws_code"],
        )
        for (cluster, outcome, code), value in sorted(attempts.items()):
            counter.add_metric([cluster, outcome, code], value)
        yield counter
        yield from _aws_metrics()


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _cluster_metrics(snaps: dict[str, ClusterSnapshot | None]) -> Iterator[Metric]:
    up = _gauge("pgiam_cluster_up", "1 when the cluster's last round succeeded, else 0", ["cluster"])
    round_s = _gauge("pgiam_round_duration_seconds", "Duration of the cluster's last round", ["cluster"])
    age = _gauge("pgiam_data_age_seconds", "Age of the data shown for the cluster", ["cluster"])
    token = _gauge("pgiam_token_seconds_left", "Seconds until the monitoring token expires", ["cluster"])
    for name, s in snaps.items():
        up.add_metric([name], 1.0 if s is not None and s.status == "ok" and not s.stale else 0.0)
        if s is None:
            continue
        if s.round_ms is not None:
            round_s.add_metric([name], s.round_ms / 1000.0)
        age.add_metric([name], _age(s))
        if s.token_expires_at is not None:
            token.add_metric([name], max(0.0, (s.token_expires_at - s.collected_at).total_seconds()))
    yield from (up, round_s, age, token)


def _age(s: ClusterSnapshot) -> float:
    if s.data_age_s is not None:
        return s.data_age_s
    return max(0.0, (datetime.now(s.collected_at.tzinfo) - s.collected_at).total_seconds())


def _instance_metrics(snaps: dict[str, ClusterSnapshot | None]) -> Iterator[Metric]:
    labels = ["cluster", "instance"]
    up = _gauge("pgiam_instance_up", "1 when the monitoring connection to the instance is up", labels)
    sessions = _gauge("pgiam_sessions", "Client sessions by state", [*labels, "state"])
    waiting = _gauge("pgiam_sessions_waiting", "Sessions waiting on a lock", labels)
    blocked = _gauge("pgiam_sessions_blocked", "Sessions blocked by another session", labels)
    query_age = _gauge("pgiam_longest_query_seconds", "Age of the longest running query", labels)
    xact_age = _gauge("pgiam_oldest_transaction_seconds", "Age of the oldest open transaction", labels)
    for name, s in snaps.items():
        if s is None:
            continue
        rows: dict[str, list[SessionRow]] = {i.id: [] for i in s.instances}
        for row in s.activity:
            rows.setdefault(row.instance, []).append(row)
        for inst in s.instances:
            up.add_metric([name, inst.id], 1.0 if inst.status == "connected" and not s.stale else 0.0)
        for instance, mine in rows.items():
            counts = dict.fromkeys(STATES, 0)
            for row in mine:
                counts[_state(row)] += 1
            for state, n in counts.items():
                sessions.add_metric([name, instance, state], n)
            waiting.add_metric([name, instance], sum(1 for r in mine if r.wait_event_type == "Lock"))
            blocked.add_metric([name, instance], sum(1 for r in mine if r.blocked_by))
            query_age.add_metric([name, instance], max((r.duration_s or 0.0 for r in mine
                                                        if r.state == "active"), default=0.0))  # fmt: skip
            xact_age.add_metric([name, instance], max((r.xact_duration_s or 0.0 for r in mine), default=0.0))
    yield from (up, sessions, waiting, blocked, query_age, xact_age)


def _iam_metrics(snaps: dict[str, ClusterSnapshot | None]) -> Iterator[Metric]:
    enabled = _gauge("pgiam_iam_auth_enabled", "1 when IAM database authentication is enabled", ["cluster"])
    findings = _gauge("pgiam_findings", "Findings by code and severity", ["cluster", "code", "severity"])
    for name, s in snaps.items():
        if s is None:
            continue
        if s.iam is not None and s.iam.iam_auth_enabled is not None:
            enabled.add_metric([name], 1.0 if s.iam.iam_auth_enabled else 0.0)
        counts: dict[tuple[str, str], int] = {}
        for f in (*s.findings, *(s.iam.findings if s.iam else ())):
            key = (str(f.code), str(f.severity))
            counts[key] = counts.get(key, 0) + 1
        for (code, severity), n in sorted(counts.items()):
            findings.add_metric([name, code, severity], n)
    yield from (enabled, findings)


def _aws_metrics() -> Iterator[Metric]:
    from pgiam_tui.aws.request_stats import snapshot_counts

    requests, throttles = snapshot_counts()
    labels = ["service", "operation"]
    sent = CounterMetricFamily(
        "pgiam_aws_requests", "AWS API requests sent (each retry counted)", labels=labels
    )
    throttled = CounterMetricFamily(
        "pgiam_aws_throttles", "AWS API answers that were throttling", labels=labels
    )
    for (service, operation), n in sorted(requests.items()):
        sent.add_metric([service, operation], n)
    for (service, operation), n in sorted(throttles.items()):
        throttled.add_metric([service, operation], n)
    yield from (sent, throttled)
