"""`pgiam-tui record FILE [--cluster NAME...] [--duration D]`: what the console would show, to a file.

Headless (no Textual): the console's own Monitor, every snapshot it publishes appended as one JSON line (see
pgiam_tui.recording). Stops on Ctrl+C, SIGTERM, SIGHUP or after --duration, always leaving a readable file.
Exit 0 after a clean stop, 2 on bad input (config, unknown cluster, bad duration, unwritable file).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `record` command."""
    parser = subparsers.add_parser(
        "record",
        help="record what the console would show, to a JSON-lines file (replay it later)",
        description="Run the monitor without a screen and append every cluster snapshot to FILE as one JSON "
        "line (the `snapshot --json` cluster schema, after a header line). FILE ending in .gz or .zst is "
        "compressed. Stops on Ctrl+C or after --duration. Replay with `pgiam-tui replay FILE`.",
    )
    parser.add_argument("file", metavar="FILE", help="new file to write (.jsonl, .jsonl.gz or .jsonl.zst)")
    parser.add_argument(
        "--cluster", action="append", metavar="NAME", help="record only NAME (repeat for more; default: all)"
    )
    parser.add_argument("--duration", metavar="D", help="stop after D (90s, 10m, 2h); default: until Ctrl+C")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record until stopped; returns the exit status."""
    import asyncio
    from datetime import UTC, datetime
    from pathlib import Path

    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.config import ConfigError, load_config, resolve_config_path
    from pgiam_tui.durations import DurationError, parse_duration
    from pgiam_tui.headless import run_monitor, select_clusters
    from pgiam_tui.recording import (
        FORMAT,
        RecordingError,
        RecordingHeader,
        RecordingWriter,
        config_digest,
        package_version,
    )

    try:
        duration = parse_duration(args.duration) if args.duration else None
        config = select_clusters(
            load_config(resolve_config_path(getattr(args, "config", None))), args.cluster
        )
    except (ConfigError, DurationError) as exc:
        fail(str(exc))
        return 2
    header = RecordingHeader(
        format=FORMAT,
        version=package_version(),
        started_at=datetime.now(UTC),
        config_digest=config_digest(config.path),
        clusters=tuple(c.name for c in config.clusters),
    )
    path = Path(args.file)
    try:
        writer = RecordingWriter(path, header)
    except RecordingError as exc:
        fail(str(exc))
        return 2
    names = ", ".join(header.clusters)
    print(f"pgiam-tui record: {names} -> {path} (Ctrl+C stops)", file=sys.stderr, flush=True)
    failure: list[str] = []

    def on_snapshot(snapshot: Any) -> None:
        if failure:
            return
        try:
            writer.write(snapshot)
        except RecordingError as exc:  # disk full, file removed: stop with the reason, keep what was written
            failure.append(str(exc))
            stop.set()

    async def main() -> str:
        return await run_monitor(config, on_snapshot, duration_s=duration, stop=stop)

    stop = asyncio.Event()
    try:
        why = asyncio.run(main())
    except KeyboardInterrupt:
        why = "interrupted"
    finally:
        writer.close()
    size = path.stat().st_size if path.exists() else 0
    if failure:
        fail(failure[0])
        return 1
    print(
        f"pgiam-tui record: stopped ({why}); {writer.lines} snapshots, {size / 1024:.1f} KiB in {path}",
        file=sys.stderr,
    )
    return 0
