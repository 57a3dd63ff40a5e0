"""`serve` scrape time and `record` size at fleet scale, on synthetic snapshots (no servers needed).

Scrape: 10 clusters x 500 sessions fed to FleetMetrics, then prometheus_client renders /metrics (text and
OpenMetrics); the median of repeated renders is compared with the target (<= 50 ms). Record: 300 rounds of a
500-session cluster (2 s apart, durations moving, 5 % of sessions replaced each round) written as .jsonl,
.jsonl.gz and .jsonl.zst; the size per cluster-hour at a 2 s refresh is extrapolated from the bytes written.
Prints a markdown fragment for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pgiam_devtools.sample import synthetic_snapshot
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from pgiam_tui.exporter.metrics import FleetMetrics
from pgiam_tui.recording import FORMAT, RecordingHeader, RecordingWriter

CLUSTERS, SESSIONS, ROUNDS, REFRESH_S = 10, 500, 300, 2.0


def scrape_ms() -> tuple[float, float, int]:
    names = [f"cluster-{i:02d}" for i in range(CLUSTERS)]
    fleet = FleetMetrics(names)
    for name in names:
        fleet.update(synthetic_snapshot(name, SESSIONS, 1))
    registry = CollectorRegistry()
    registry.register(fleet)
    text_times, om_times = [], []
    body = b""
    for _ in range(30):
        t0 = time.perf_counter()
        body = generate_latest(registry)
        text_times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        generate_openmetrics(registry)
        om_times.append((time.perf_counter() - t0) * 1000)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return statistics.median(text_times), statistics.median(om_times), series


def record_sizes() -> dict[str, float]:
    sizes = {}
    header = RecordingHeader(format=FORMAT, version="bench", started_at=datetime.now(UTC))
    snaps = [synthetic_snapshot("big", SESSIONS, i, churn=SESSIONS // 20) for i in range(ROUNDS)]
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".jsonl", ".jsonl.gz", ".jsonl.zst"):
            path = Path(tmp) / f"rec{suffix}"
            with RecordingWriter(path, header) as writer:
                for snap in snaps:
                    writer.write(snap)
            per_round = path.stat().st_size / ROUNDS
            sizes[suffix] = per_round * (3600 / REFRESH_S) / 1e6
    return sizes


def main() -> int:
    text_ms, om_ms, series = scrape_ms()
    sizes = record_sizes()
    out = [
        "## serve and record at fleet scale",
        "",
        f"Synthetic snapshots: {CLUSTERS} clusters x {SESSIONS} sessions (scrape); one {SESSIONS}-session "
        f"cluster over {ROUNDS} rounds, 5 % churn per round (record).",
        "",
        "| measure | figure | target | met |",
        "|---|---|---|---|",
        f"| /metrics render, Prometheus text ({series} series) | {text_ms:.1f} ms | <= 50 ms | "
        f"{'yes' if text_ms <= 50 else 'no'} |",
        f"| /metrics render, OpenMetrics | {om_ms:.1f} ms | <= 50 ms | {'yes' if om_ms <= 50 else 'no'} |",
    ]
    for suffix, mb in sizes.items():
        label = f"record size, {suffix}, per cluster-hour at {REFRESH_S:g} s"
        out.append(f"| {label} | {mb:.1f} MB | reported | |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
