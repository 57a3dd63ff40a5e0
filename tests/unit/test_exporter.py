"""`serve`'s metrics from snapshots: read back with prometheus_client's own parser, counted once."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from pgiam_devtools.sample import sample_snapshots, synthetic_snapshot
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pgiam_tui.exporter.http import ListenError, MetricsServer, parse_listen
from pgiam_tui.exporter.metrics import FleetMetrics
from pgiam_tui.model import Attempt, ClusterSnapshot, Outcome


def scrape(fleet: FleetMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(fleet)
    text = generate_latest(registry).decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    # the OpenMetrics rendering parses too (what Prometheus asks for)
    list(parse_openmetrics(generate_openmetrics(registry).decode()))  # type: ignore[no-untyped-call]
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    found = [v for ls, v in samples.get(name, []) if all(ls.get(k) == w for k, w in labels.items())]
    assert found, (name, labels, samples.get(name))
    return sum(found)


def refused(snap: ClusterSnapshot, n: int, code: str) -> ClusterSnapshot:
    extra = tuple(
        Attempt(time=snap.collected_at - timedelta(seconds=i), outcome=Outcome.FAILED, user="bob",
                pid=900 + i, host="10.0.0.9", port=40000 + i, method="iam", aws_code=code, instance=snap.name)
        for i in range(n)
    )  # fmt: skip
    return dataclasses.replace(snap, attempts=(*snap.attempts, *extra))


def test_gauges_follow_the_newest_snapshot() -> None:
    snaps = sample_snapshots()
    fleet = FleetMetrics(s.name for s in snaps)
    for s in snaps:
        fleet.update(s)
    samples = scrape(fleet)
    for s in snaps:
        up = value(samples, "pgiam_cluster_up", cluster=s.name)
        assert up == (1.0 if s.status == "ok" and not s.stale else 0.0)
        for inst in s.instances:
            rows = [r for r in s.activity if r.instance == inst.id]
            assert value(samples, "pgiam_sessions", cluster=s.name, instance=inst.id) == len(rows)
            blocked = sum(1 for r in rows if r.blocked_by)
            assert value(samples, "pgiam_sessions_blocked", cluster=s.name, instance=inst.id) == blocked
        if s.iam is not None and s.iam.iam_auth_enabled is not None:
            assert value(samples, "pgiam_iam_auth_enabled", cluster=s.name) == float(s.iam.iam_auth_enabled)


def test_a_cluster_never_heard_from_reads_down() -> None:
    fleet = FleetMetrics(["silent", "pgdemo-1"])
    fleet.update(sample_snapshots()[0])
    samples = scrape(fleet)
    assert value(samples, "pgiam_cluster_up", cluster="silent") == 0.0
    assert fleet.ages()["silent"] is None


def test_each_attempt_is_counted_once_however_often_it_is_seen() -> None:
    base = sample_snapshots()[0]
    fleet = FleetMetrics([base.name])
    first = refused(base, 3, "InvalidToken")
    fleet.update(first)
    fleet.update(first)  # the next round repeats the same attempts
    samples = scrape(fleet)
    before = value(samples, "pgiam_connection_attempts_total", cluster=base.name, outcome="failed",
                   aws_code="InvalidToken")  # fmt: skip
    later = refused(dataclasses.replace(first, collected_at=first.collected_at + timedelta(seconds=30)), 2,
                    "InvalidToken")  # fmt: skip
    fleet.update(later)
    samples = scrape(fleet)
    after = value(samples, "pgiam_connection_attempts_total", cluster=base.name, outcome="failed",
                  aws_code="InvalidToken")  # fmt: skip
    assert after == before + 2


def test_no_query_text_or_client_chosen_name_becomes_a_label() -> None:
    snap = synthetic_snapshot("big", 50, 1)
    hostile = dataclasses.replace(
        snap.activity[0], query="select '\x1b]0;pwned\x07'", application_name="app\nname", usename="eve"
    )
    snap = dataclasses.replace(snap, activity=(hostile, *snap.activity[1:]))
    fleet = FleetMetrics([snap.name])
    fleet.update(snap)
    samples = scrape(fleet)
    labels = {v for series in samples.values() for ls, _ in series for v in ls.values()}
    assert not any("pwned" in v or "\n" in v or "SELECT" in v.upper() for v in labels)
    assert len(labels) < 30  # bounded: cluster, instance, states, codes -- not one per session


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9187") == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:9187") == ("::1", 9187)
    assert parse_listen(":9100") == ("127.0.0.1", 9100)
    for bad in ("9187", "host:", "host:99999", "[nope]:1"):
        with pytest.raises(ListenError):
            parse_listen(bad)


def test_http_metrics_healthz_and_a_busy_port() -> None:
    fleet = FleetMetrics(["pgdemo-1"])
    fleet.update(sample_snapshots()[0])
    registry = CollectorRegistry()
    registry.register(fleet)
    healthy = threading.Event()
    healthy.set()

    def health() -> tuple[bool, dict[str, object]]:
        return healthy.is_set(), {"late": [] if healthy.is_set() else ["pgdemo-1"]}

    server = MetricsServer(registry, health, "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
            assert "pgiam_cluster_up" in resp.read().decode()
        req = urllib.request.Request(f"{base}/metrics", headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        healthy.clear()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/healthz", timeout=10)
        assert err.value.code == 503
        with pytest.raises(ListenError, match="cannot listen"):
            MetricsServer(registry, health, "127.0.0.1", server.port)
    finally:
        server.stop()


def test_aws_requests_and_throttles_are_counted_per_api() -> None:
    # the handlers botocore calls on every client we make (aws/session.py installs them)
    from pgiam_tui.aws import request_stats

    before_req, before_thr = request_stats.snapshot_counts()
    key = ("logs", "FilterLogEvents")
    request_stats._on_send(event_name="before-send.logs.FilterLogEvents")
    throttled = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
    request_stats._on_response(event_name="needs-retry.logs.FilterLogEvents", response=(None, throttled))
    request_stats._on_response(event_name="needs-retry.logs.FilterLogEvents", response=(None, {}))
    requests, throttles = request_stats.snapshot_counts()
    assert requests[key] == before_req.get(key, 0) + 1
    assert throttles[key] == before_thr.get(key, 0) + 1
    fleet = FleetMetrics(["a"])
    samples = scrape(fleet)
    assert value(samples, "pgiam_aws_throttles_total", service="logs", operation="FilterLogEvents") >= 1
