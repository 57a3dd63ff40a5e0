"""Connection events of one cluster: log sources + parser + AWS's IAM reasons + the console's own attempts.

`EventsCollector` is what the monitor calls once per round. It picks the log source from the config and
what discovery found (CloudWatch export, else the RDS log-file API, else a local file), reads only what is new
since the last round (the cursors live in the collector), parses it (multi-line entries joined), reads the
`iam-db-auth-error` group when it is exported, joins the lines of each login into an attempt with AWS's
reason on it (collect/attempts.py, the same joiner `pgiam-tui events` uses), merges the console's own
connection events, and returns the recent window of events plus failure counts per user and host; the
attempts of the window are in `attempts`.

A source that cannot be read never fails the round: the problem is reported in `problems` (findings with
code `events_unreadable` / `iam_log_unreadable`) and the last events are kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pgiam_tui.aws.errors import aws_read_fix, describe_aws_error, is_timeout
from pgiam_tui.aws.session import cached_client
from pgiam_tui.collect.attempts import AttemptJoiner, failure_counts
from pgiam_tui.collect.aws_threads import run_side_thread
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.log_sources import (
    CloudWatchLogSource,
    FileTailSource,
    RawLine,
    RdsLogFileSource,
)
from pgiam_tui.collect.logparse import LogEntry, LogLineParser
from pgiam_tui.collect.logprefix import parse_zone
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import Attempt, ConnEvent, EventKind, FailureCount, Finding
from pgiam_tui.vocabulary import FindingCode, LogSource

__all__ = ["EventsCollector", "ResolvedClusterLike", "choose_source"]

log = logging.getLogger(__name__)

_MIN_TIME = datetime.min.replace(tzinfo=UTC)


class ResolvedInstanceLike(Protocol):
    """What the collector needs of aws.discovery.ResolvedInstance."""

    @property
    def id(self) -> str: ...


class ResolvedClusterLike(Protocol):
    """What the collector needs of aws.discovery.ResolvedCluster (structural: no import dependency)."""

    @property
    def region(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def log_exports(self) -> tuple[str, ...]: ...
    @property
    def log_group(self) -> str | None: ...
    @property
    def iam_log_group(self) -> str | None: ...
    @property
    def instances(self) -> Sequence[ResolvedInstanceLike]: ...


def choose_source(cfg: ClusterConfig, resolved: ResolvedClusterLike | None) -> LogSource:
    """Which log source to read: cloudwatch, rds_logfile, file or none (never auto).

    `log_source = "auto"`: CloudWatch when the cluster exports its postgresql log (or a log_group is
    configured), else the RDS log-file API for RDS/Aurora, else the local file when one is configured.
    """
    if cfg.log_source != LogSource.AUTO:
        return cfg.log_source
    if cfg.log_group or (
        resolved is not None and resolved.log_group and "postgresql" in resolved.log_exports
    ):
        return LogSource.CLOUDWATCH
    if resolved is not None and resolved.kind in ("aurora", "instance") and resolved.instances:
        return LogSource.RDS_LOGFILE
    if cfg.log_file:
        return LogSource.FILE
    return LogSource.NONE


def _keep(ev: ConnEvent) -> bool:
    # A log group or file holds every kind of line; the events list wants connection lines (and FATALs,
    # which are often the reason a login failed).
    return ev.kind != EventKind.OTHER or ev.message.startswith("FATAL")


def _key(ev: ConnEvent) -> tuple[object, ...]:
    return (ev.source, ev.instance, ev.time, ev.kind, ev.pid, ev.user, ev.message)


class EventsCollector:
    """Connection events of one cluster, incrementally, round after round.

    Usage (the monitor keeps one per cluster):

        collector = EventsCollector(cluster_config)
        events, failures = await collector.collect(resolved, session, client_events=conn.client_events)

    - `resolved`: aws.discovery.ResolvedCluster (None when not discovered: only a file source works).
    - `session`: boto3.Session of the cluster's profile (None: no AWS sources). boto3 runs in worker threads.
    - `client_events`: the console's own connection attempts (ConnEvents with source "client"); pass all you
      have each round, duplicates are dropped.
    Returns (events of the last `window_s` seconds, at most `max_events`, oldest first; failure counts of the
    last 15 minutes). Never raises for a log source problem: see `problems` (tuple of model.Finding).
    """

    def __init__(
        self,
        cfg: ClusterConfig,
        *,
        window_s: float = 900.0,
        max_events: int = 2000,
        lookback_s: float = 900.0,
        clock: Any = time.time,
        history: bool = False,
    ) -> None:
        self.cfg = cfg
        self.history = history  # incident review: read every log file of the lookback whole
        self.window_s = window_s
        self.max_events = max_events
        self.lookback_s = lookback_s
        self._clock = clock
        zone_name = getattr(cfg, "log_timezone", None)
        self._parser = LogLineParser(
            cfg.log_line_prefix,
            log_timezone=parse_zone(zone_name) if zone_name else None,
            known_databases=(cfg.database,) if cfg.database else (),
        )
        self._joiner = AttemptJoiner(max_attempts=max(5000, max_events))
        self.attempts: tuple[Attempt, ...] = ()
        self._source_kind: str | None = None
        self._main: CloudWatchLogSource | RdsLogFileSource | FileTailSource | None = None
        self._iam: CloudWatchLogSource | None = None
        self._events: list[ConnEvent] = []
        self._keys: set[tuple[object, ...]] = set()
        self._plan_key: tuple[object, ...] | None = None
        self._setup_problem: Finding | None = None
        self.problems: tuple[Finding, ...] = ()

    @property
    def source_kind(self) -> str | None:
        """The log source in use ("cloudwatch", "rds_logfile", "file", "none") once the first round chose."""
        return self._source_kind

    def _plan(self, resolved: ResolvedClusterLike | None) -> tuple[object, ...]:
        """What decides the sources: when it changes (e.g. discovery succeeded late), sources are rebuilt."""
        if resolved is None:
            return (choose_source(self.cfg, None),)
        return (
            choose_source(self.cfg, resolved),
            resolved.log_group,
            resolved.iam_log_group,
            tuple(resolved.log_exports),
            tuple(i.id for i in resolved.instances),
        )

    def _setup(self, resolved: ResolvedClusterLike | None) -> None:
        kind = choose_source(self.cfg, resolved)
        self._source_kind = kind
        if isinstance(self._main, FileTailSource):
            self._main.close()
        self._main, self._iam, self._setup_problem = None, None, None
        if kind == "cloudwatch":
            group = self.cfg.log_group or (resolved.log_group if resolved is not None else None)
            if group:
                self._main = CloudWatchLogSource(group, lookback_s=self.lookback_s, clock=self._clock)
        elif kind == "rds_logfile" and resolved is not None:
            ids = [i.id for i in resolved.instances]
            self._main = RdsLogFileSource(
                ids, clock=self._clock, from_start=self.history, lookback_s=max(3600.0, self.lookback_s)
            )
        elif kind == "file" and self.cfg.log_file:
            self._main = FileTailSource(self.cfg.log_file)
        if self._main is None and kind != "none":
            self._setup_problem = _unreadable(
                FindingCode.EVENTS_UNREADABLE,
                kind,
                "no log group, instance or file known for this source yet",
            )
        if resolved is not None and resolved.iam_log_group and "iam-db-auth-error" in resolved.log_exports:
            self._iam = CloudWatchLogSource(
                resolved.iam_log_group,
                filter_pattern=None,
                lookback_s=self.lookback_s,
                source="iam_log",
                clock=self._clock,
            )

    def _read(
        self, resolved: ResolvedClusterLike | None, session: Any
    ) -> tuple[list[ConnEvent], list[Finding]]:
        """Blocking part of a round (boto3, file I/O): runs in a worker thread."""
        region = self.cfg.region or (resolved.region if resolved is not None else None)
        out: list[ConnEvent] = []
        problems: list[Finding] = []
        main = self._main
        if main is not None:
            try:
                if isinstance(main, FileTailSource):
                    raw = main.poll()
                elif session is None:
                    raw = []
                else:
                    service = "logs" if isinstance(main, CloudWatchLogSource) else "rds"
                    raw = main.poll(cached_client(session, service, region))
                out.extend(self._parse(raw))
                errors = getattr(main, "last_errors", None)
                if errors:
                    cause = getattr(main, "last_exception", None)
                    problems.append(
                        _unreadable(
                            FindingCode.EVENTS_UNREADABLE, self._source_kind, "; ".join(errors), cause
                        )
                    )
            except Exception as exc:
                problems.append(
                    _unreadable(FindingCode.EVENTS_UNREADABLE, self._source_kind, _describe(exc), exc)
                )
        if self._iam is not None and session is not None:
            try:
                for line in self._iam.poll(cached_client(session, "logs", region)):
                    out.append(parse_iam_line(line.text, fallback_time=line.time, instance=line.instance))
            except Exception as exc:
                problems.append(
                    _unreadable(FindingCode.IAM_LOG_UNREADABLE, "cloudwatch", _describe(exc), exc)
                )
        return out, problems

    def _parse(self, raw: Iterable[RawLine]) -> list[ConnEvent]:
        parse = self._parser.parse
        lines = (LogEntry(r.text, r.time, r.instance, r.source) for r in raw)
        return [
            parse(e.text, source=e.source, instance=e.instance, fallback_time=e.time)
            for e in self._parser.entries(lines)
        ]

    async def collect(
        self,
        resolved: ResolvedClusterLike | None,
        session: Any,
        client_events: Iterable[ConnEvent] = (),
    ) -> tuple[tuple[ConnEvent, ...], tuple[FailureCount, ...]]:
        """One round: read what is new, merge, join, trim to the window. See the class docstring."""
        plan = self._plan(resolved)
        if plan != self._plan_key:
            self._setup(resolved)
            self._plan_key = plan
        client = tuple(client_events)
        # Reading, parsing, merging and joining all run in a worker thread: a burst of log lines must not
        # stall the event loop the UI runs on. Rounds of one collector never overlap (the monitor's rule).
        return await run_side_thread(self._round, resolved, session, client)

    def _round(
        self, resolved: ResolvedClusterLike | None, session: Any, client: tuple[ConnEvent, ...]
    ) -> tuple[tuple[ConnEvent, ...], tuple[FailureCount, ...]]:
        new, problems = self._read(resolved, session)
        if self._setup_problem is not None:
            problems.insert(0, self._setup_problem)
        self.problems = tuple(problems)
        now = datetime.fromtimestamp(self._clock(), UTC)
        horizon = now - timedelta(seconds=self.window_s)
        # every line goes to the joiner (DETAILs included); the events list keeps the connection lines
        checked = self._joiner.add(new)
        self._joiner.trim(horizon)
        self.attempts = tuple(a for a in self._joiner.attempts() if a.time is None or a.time >= horizon)
        self._merge([*(e for e in checked if _keep(e)), *client])
        return tuple(self._events), failure_counts(self.attempts, now=now, window_s=self.window_s)

    def _merge(self, new: Iterable[ConnEvent]) -> None:
        for ev in new:
            k = _key(ev)
            if k in self._keys:
                continue
            self._keys.add(k)
            self._events.append(ev)
        now = datetime.fromtimestamp(self._clock(), UTC)
        horizon = now - timedelta(seconds=self.window_s)
        events = [e for e in self._events if e.time is None or e.time >= horizon]
        events.sort(key=lambda e: e.time or _MIN_TIME)
        if len(events) > self.max_events:
            events = events[-self.max_events :]
        self._keys = {_key(e) for e in events}
        self._events = events


def _describe(exc: BaseException) -> str:
    return describe_aws_error(exc)


def _unreadable(
    code: FindingCode, source: str | None, detail: str, cause: BaseException | None = None
) -> Finding:
    """The finding for a log source that could not be read; its fix names a permission only when AWS
    refused (a timeout is reported as a timeout: aws_read_fix)."""
    what = "connection log" if code == FindingCode.EVENTS_UNREADABLE else "iam-db-auth-error log"
    fixes = {
        "cloudwatch": "allow logs:FilterLogEvents on the log group to the cluster's profile, and check that "
        "the cluster exports the log (modify-db-cluster --cloudwatch-logs-export-configuration)",
        "rds_logfile": "allow rds:DescribeDBLogFiles and rds:DownloadDBLogFilePortion to the profile",
        "file": "check log_file in profiles.toml and that the console may read it",
    }
    fix = fixes.get(source or "", "")
    timed_out = cause is not None and is_timeout(cause)
    if cause is not None and source != "file":
        fix = aws_read_fix(cause, fix)
    return Finding(
        severity="warning",
        code=code,
        message=f"cannot read the {what} ({source or 'none'}): {'timeout: ' if timed_out else ''}{detail}",
        fix=fix,
    )
