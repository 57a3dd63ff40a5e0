"""`pgiam-tui serve [--listen 127.0.0.1:9187] [--cluster NAME...]`: the fleet as Prometheus metrics.

Headless (no Textual): the console's own Monitor feeds pgiam_tui.exporter.FleetMetrics; `/metrics` answers in
the Prometheus text format or OpenMetrics (content negotiation by prometheus_client), `/healthz` says whether
every cluster has published lately. Listens on loopback unless told otherwise. Exit 0 after SIGINT/SIGTERM,
2 on bad input (config, unknown cluster, bad --listen, address in use).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# a cluster that has not published for this many of its intervals (and at least HEALTH_FLOOR_S) makes
# /healthz answer 503: the exporter itself is stuck (a cluster that is down still publishes `up 0`)
HEALTH_INTERVALS = 5
HEALTH_FLOOR_S = 60.0


def register(subparsers: Any) -> None:
    """Add the `serve` command."""
    parser = subparsers.add_parser(
        "serve",
        help="export every cluster's state as Prometheus metrics on /metrics",
        description="Run the monitor without a screen and expose OpenMetrics on /metrics and a health check "
        "on /healthz. Default address 127.0.0.1:9187 (loopback only).",
    )
    parser.add_argument("--listen", default="127.0.0.1:9187", metavar="HOST:PORT", help="default %(default)s")
    parser.add_argument(
        "--cluster", action="append", metavar="NAME", help="export only NAME (repeat for more; default: all)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until a stop signal; returns the exit status."""
    import asyncio

    from prometheus_client import CollectorRegistry

    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.config import ConfigError, load_config, resolve_config_path
    from pgiam_tui.exporter.http import ListenError, MetricsServer, parse_listen
    from pgiam_tui.exporter.metrics import FleetMetrics
    from pgiam_tui.headless import run_monitor, select_clusters

    try:
        host, port = parse_listen(args.listen)
        config = select_clusters(
            load_config(resolve_config_path(getattr(args, "config", None))), args.cluster
        )
    except (ConfigError, ListenError) as exc:
        fail(str(exc))
        return 2
    fleet = FleetMetrics(c.name for c in config.clusters)
    registry = CollectorRegistry()
    registry.register(fleet)
    limits = {c.name: max(HEALTH_FLOOR_S, HEALTH_INTERVALS * c.refresh_s) for c in config.clusters}

    def health() -> tuple[bool, dict[str, Any]]:
        ages = fleet.ages()
        late = [n for n, age in ages.items() if (age if age is not None else fleet_age()) > limits[n]]
        return not late, {
            "late": late,
            "age_s": {n: None if a is None else round(a, 1) for n, a in ages.items()},
        }

    def fleet_age() -> float:
        import time

        return time.monotonic() - fleet.started_at

    try:
        server = MetricsServer(registry, health, host, port)
    except ListenError as exc:
        fail(str(exc))
        return 2
    server.start()
    shown = f"[{host}]" if ":" in host else host
    print(
        f"pgiam-tui serve: {len(config.clusters)} clusters; metrics on http://{shown}:{server.port}/metrics "
        "(Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    try:
        why = asyncio.run(run_monitor(config, fleet.update))
    except KeyboardInterrupt:
        why = "interrupted"
    finally:
        server.stop()
    print(f"pgiam-tui serve: stopped ({why})", file=sys.stderr)
    return 0
