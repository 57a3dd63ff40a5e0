"""`pgiam-tui events`: connection attempts for incident review, from a cluster's logs or a downloaded log.

    pgiam-tui [--config F] events --cluster NAME [--since 2h] [--until T] [--json]
    pgiam-tui events --file FILE|- [--prefix P] [--timezone Z] [--json]

`--cluster` reads the cluster's log source as the console does (CloudWatch export, else the RDS log-file API,
else its local file) over the window asked for, with AWS's `iam-db-auth-error` reasons when exported.
`--file` reads a PostgreSQL log as `aws rds download-db-log-file-portion` writes it (or stdin), with the
server's `log_line_prefix` (default RDS's) and `log_timezone`; iam-db-auth-error lines in it are joined too.
The lines are joined into attempts by the same joiner as the console and `snapshot` (collect/attempts.py).

Output: one line per attempt (text), or `{"attempts": [...], "events": [...]}` (`--json`). Exit 0; 2 with one
line on bad input (unreadable file, bad prefix, bad time zone or time, unknown cluster).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pgiam_tui import textsafe
from pgiam_tui.model import Attempt, ConnEvent


class UsageError(ValueError):
    """Bad input on the command line (exit 2, one line)."""


def register(subparsers: Any) -> None:
    """Add the `events` subcommand."""
    p = subparsers.add_parser(
        "events",
        help="connection attempts for incident review (a cluster's logs, or a downloaded log file)",
        description="Who tried to log in, how it ended and why AWS refused it: the lines of each login "
        "joined into one attempt. Exit 0; 2 on bad input.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--cluster", metavar="NAME", help="read this cluster's log source (as the console does)"
    )
    where.add_argument("--file", metavar="FILE", help="read a downloaded PostgreSQL/RDS log ('-' for stdin)")
    p.add_argument(
        "--since", metavar="D", default="1h", help="with --cluster: how far back (90s, 10m, 2h; 1h)"
    )
    p.add_argument(
        "--until", metavar="T", help="with --cluster: up to this time (ISO 8601, or a duration ago)"
    )
    p.add_argument("--prefix", metavar="P", help="with --file: the server's log_line_prefix (default RDS's)")
    p.add_argument(
        "--timezone", metavar="Z", help="with --file: the server's log_timezone (e.g. Europe/Berlin)"
    )
    p.add_argument("--json", action="store_true", help='print {"attempts": [...], "events": [...]}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, join and print; returns the exit status."""
    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.config import ConfigError

    try:
        if args.file is not None:
            if args.until is not None or args.since != "1h":
                raise UsageError("--since and --until go with --cluster (a file is read whole)")
            attempts, events = _from_file(args.file, args.prefix, args.timezone)
        else:
            if args.prefix is not None or args.timezone is not None:
                raise UsageError(
                    "--prefix and --timezone go with --file (a cluster's come from profiles.toml)"
                )
            attempts, events = _from_cluster(args)
    except (UsageError, ConfigError) as exc:
        fail(str(exc))
        return 2
    if args.json:
        from pgiam_tui.jsonout import attempt_to_json, event_to_json

        doc = {
            "attempts": [attempt_to_json(a) for a in attempts],
            "events": [event_to_json(e) for e in events],
        }
        sys.stdout.write(textsafe.to_json(doc, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(attempts, len(events)))
    return 0


# -- reading ---------------------------------------------------------------------------------------------


def _from_file(path: str, prefix: str | None, zone: str | None) -> tuple[list[Attempt], list[ConnEvent]]:
    from pgiam_tui.collect.attempts import AttemptJoiner
    from pgiam_tui.collect.iam_log import IAM_KINDS, parse_iam_line
    from pgiam_tui.collect.logparse import RDS_PREFIX, LogEntry, LogLineParser
    from pgiam_tui.collect.logprefix import PrefixError, parse_zone

    try:
        parser = LogLineParser(
            prefix or RDS_PREFIX, source="file", log_timezone=parse_zone(zone) if zone else None
        )
    except PrefixError as exc:
        raise UsageError(str(exc)) from None
    text = _read(path)
    events: list[ConnEvent] = []
    lines = (LogEntry(line, None, None, "file") for line in text.splitlines())
    for entry in parser.entries(lines):
        ev = parser.parse(entry.text)
        if ev.kind == "other" and not parser.matches(entry.text):
            iam = parse_iam_line(entry.text)  # an iam-db-auth-error line kept beside the log
            if iam.kind in IAM_KINDS:
                ev = iam
        events.append(ev)
    joiner = AttemptJoiner(max_attempts=10_000_000)
    checked = joiner.add(events)
    return list(joiner.attempts()), [e for e in checked if _shown(e)]


def _read(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    # a log may hold bytes of another encoding (SQL_ASCII databases): shown as U+FFFD, never an error
    return data.decode("utf-8", "replace")


def _shown(ev: ConnEvent) -> bool:
    return ev.kind != "other" or ev.message.startswith("FATAL")


def parse_time(text: str, now: datetime) -> datetime:
    """`--until`: an ISO 8601 time (UTC when it names no zone) or a duration ago (`30m`)."""
    from pgiam_tui.durations import DurationError, parse_duration

    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            return now - timedelta(seconds=parse_duration(text))
        except DurationError:
            raise UsageError(
                f"not a time: {text!r} (use ISO 8601 such as 2026-01-15T10:00:00Z, or a duration ago: 30m)"
            ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _from_cluster(args: argparse.Namespace) -> tuple[list[Attempt], list[ConnEvent]]:
    import asyncio

    from pgiam_tui.commands._cliutil import load_cli_config
    from pgiam_tui.durations import DurationError, parse_duration

    try:
        since_s = parse_duration(args.since)
    except DurationError as exc:
        raise UsageError(f"--since: {exc}") from None
    now = datetime.now(UTC)
    until = parse_time(args.until, now) if args.until else None
    cfg = load_cli_config(getattr(args, "config", None)).cluster(args.cluster)
    attempts, events, problems = asyncio.run(_collect(cfg, since_s))
    for problem in problems:
        from pgiam_tui.commands._cliutil import fail

        fail(problem)
    if until is not None:
        attempts = [a for a in attempts if a.time is None or a.time <= until]
        events = [e for e in events if e.time is None or e.time <= until]
    return attempts, events


async def _collect(cfg: Any, since_s: float) -> tuple[list[Attempt], list[ConnEvent], list[str]]:
    import asyncio

    from pgiam_tui.aws.discovery import resolve_cluster
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.collect.events import EventsCollector
    from pgiam_tui.commands._cliutil import terminal_mfa_prompt

    session: Any = None
    resolved: Any = None
    problems: list[str] = []
    try:
        session = SessionFactory(mfa_prompt=terminal_mfa_prompt).session(cfg.profile)
        resolved = await asyncio.to_thread(resolve_cluster, cfg, session)
    except Exception as exc:  # no AWS: a local log file may still be read
        problems.append(f"{cfg.name}: {exc}")
    collector = EventsCollector(cfg, window_s=since_s, lookback_s=since_s, max_events=1_000_000, history=True)
    events, _ = await collector.collect(resolved, session)
    problems.extend(f"{cfg.name}: {f.message}" for f in collector.problems)
    own = [e for e in events if e.source not in ("client", "console")]
    return list(collector.attempts), own, problems


# -- text ------------------------------------------------------------------------------------------------


def _v(text: str | None, limit: int = 60) -> str:
    return "" if text is None else textsafe.visible(text, limit=limit, layout="space")


def attempt_line(a: Attempt) -> str:
    """One attempt on one line: time, outcome, user@database, client, pid, method, AWS's code and reason."""
    from pgiam_tui.durations import format_duration

    when = a.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z" if a.time else "-"
    who = f"{_v(a.user, 40) or '?'}@{_v(a.database, 30) or '?'}"
    client = f"{_v(a.host, 60)}:{a.port}" if a.host and a.port else _v(a.host, 60) or "-"
    parts = [when, f"{a.outcome.value:<7}", who, f"from {client}"]
    if a.pid is not None:
        parts.append(f"pid {a.pid}")
    if a.method:
        parts.append(_v(a.method, 20))
    if a.session_s is not None:
        parts.append(f"session {format_duration(a.session_s)}")
    if a.aws_code:
        parts.append(f"AWS {_v(a.aws_code, 30)}: {_v(a.aws_reason, 120)}")
        if a.caller_arn:
            parts.append(f"caller {_v(a.caller_arn, 200)}")
    if a.failed:
        parts.append(f"- {_v(a.message, 160)}")
    return "  ".join(parts)


def render_text(attempts: Sequence[Attempt], n_events: int) -> str:
    """Every attempt on a line, oldest first, then a one-line summary."""
    out = [attempt_line(a) for a in attempts]
    failed = sum(1 for a in attempts if a.failed)
    refused = sum(1 for a in attempts if a.outcome == "refused")
    out.append(
        f"attempts: {len(attempts)}, failed logins: {failed} ({refused} refused by the server), "
        f"connection log events: {n_events}"
    )
    return "\n".join(out) + "\n"
