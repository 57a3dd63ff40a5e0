"""RDS-format connection logs, IAM auth error logs and IamDbAuth* metrics for one sandbox cluster.

What RDS would write, the sandbox writes too, in the same shape and to the same places:

- PostgreSQL log lines with RDS's prefix `%t:%r:%u@%d:[%p]:` (connection received / authorized with SSL
  details / `pam_authenticate failed` + FATAL / disconnection with session time) to a local file and to
  CloudWatch Logs group `/aws/rds/cluster/ID/postgresql` (one stream per instance, named after it);
- for IAM failures, AWS's reason line (`... (Status Code: 400, Error Code: InvalidToken)`) to
  `/aws/rds/cluster/ID/iam-db-auth-error`;
- the `IamDbAuthConnection*` counters to CloudWatch metrics (namespace AWS/RDS, DBInstanceIdentifier),
  summed per minute.

CloudWatch calls go through boto3 to moto's server from a background thread, in batches: the connection path
only appends to a queue and a local file and never waits for AWS.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgiam_sandbox.token_check import IAM_ERROR_STATUS, Verdict

__all__ = ["METRIC_NAMES", "DiagnosticLog", "RdsLogSink", "SslInfo", "iam_error_line", "rds_prefix"]

log = logging.getLogger(__name__)

METRIC_NAMES = (
    "IamDbAuthConnectionRequests",
    "IamDbAuthConnectionSuccess",
    "IamDbAuthConnectionFailure",
    "IamDbAuthConnectionFailureInvalidToken",
    "IamDbAuthConnectionFailureInsufficientPermissions",
    "IamDbAuthConnectionFailureThrottling",
    "IamDbAuthConnectionFailureServerError",
)
_FAILURE_METRIC = {
    "InvalidToken": "IamDbAuthConnectionFailureInvalidToken",
    "ExpiredToken": "IamDbAuthConnectionFailureInvalidToken",  # an expired token is an invalid token to RDS
    "NotAuthorized": "IamDbAuthConnectionFailureInsufficientPermissions",
    "ThrottlingException": "IamDbAuthConnectionFailureThrottling",
    "InternalError": "IamDbAuthConnectionFailureServerError",
}
_IAM_REASON = {
    "InvalidToken": "the provided token is malformed or otherwise invalid",
    "ExpiredToken": "the provided token has expired",
    "NotAuthorized": "the IAM policy assumed by the caller '{arn}' is not authorized to perform "
    "`rds-db:connect` on the DB instance",
    "ThrottlingException": "the request was throttled: too many IAM authentication requests",
    "InternalError": "of an internal error in the IAM authentication service",
}
_MAX_BATCH = 5000  # put_log_events takes at most 10,000 events / 1 MB per call


@dataclass(frozen=True)
class SslInfo:
    """TLS details as PostgreSQL logs them in `connection authorized` lines."""

    protocol: str
    cipher: str
    bits: int


def _clean(value: str | None, unknown: str = "[unknown]") -> str:
    """A value for the sandbox's own files (diagnostics, the AWS line): no newlines or control characters."""
    if value is None or value == "":
        return unknown
    # \xNN for bytes, \uNNNN above: "\x202e" for U+202E would read as "\x20" followed by "2e"
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in value)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _raw(value: str | None, unknown: str = "[unknown]") -> str:
    """A client-supplied name as PostgreSQL writes it into its log: exactly as sent (elog.c does not escape
    `%u`/`%d`, nor names inside a message). A name holding a line break therefore starts a line of its own,
    and the product's parser is what must not be fooled by it."""
    return unknown if value is None or value == "" else value


def _tabbed(message: str) -> str:
    """A message as PostgreSQL's stderr log writes it: a tab after every line break (elog.c
    append_with_tabs), so continuation lines can be told from new entries. Prefix fields get no tab."""
    return message.replace("\n", "\n\t")


def rds_prefix(
    when: datetime, host: str | None, port: int | None, user: str | None, db: str | None, pid: int
) -> str:
    """RDS's `log_line_prefix = '%t:%r:%u@%d:[%p]:'` with `%t` as `YYYY-MM-DD HH:MM:SS UTC`."""
    t = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    remote = f"{host}({port})" if host is not None and port is not None else (host or "")
    return f"{t}:{remote}:{_raw(user)}@{_raw(db)}:[{pid}]:"


def iam_error_line(when: datetime, user: str, verdict: Verdict) -> str:
    """One iam-db-auth-error log line in AWS's format (no token, no internal reason)."""
    code = verdict.error_code or "InternalError"
    reason = _IAM_REASON[code].format(arn=verdict.caller_arn or "unknown")
    t = when.astimezone(UTC)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S") + f",{t.microsecond // 1000:03d}"
    return (
        f"{stamp} [ERROR] Failed to authenticate the connection request for user '{_clean(user, '')}' "
        f"because {reason}. (Status Code: {IAM_ERROR_STATUS[code]}, Error Code: {code})"
    )


class DiagnosticLog:
    """The sandbox's own log of the true reason for every refused login (one line each; never the token)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, instance: str, user: str | None, client: str, code: str | None, reason: str) -> None:
        """Append one line: time, instance, user, client address, AWS code (or '-'), reason."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = (
            f"{now} instance={instance} user={_clean(user)} client={client} code={code or '-'} "
            f"reason={_clean(reason)}\n"
        )
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)


@dataclass
class _Event:
    group: str
    stream: str
    when: datetime
    message: str


class RdsLogSink:
    """Log lines and IAM metrics of one cluster (or RDS for PostgreSQL instance).

    `client_factory(service)` returns a boto3 client for "logs" / "cloudwatch" (region and the DB account's
    admin credentials already applied, endpoint = moto); None writes the local file only. Call `close()` to
    flush and stop the background thread (idempotent). Every method is thread-safe and returns at once.
    """

    def __init__(
        self,
        *,
        log_file: Path,
        log_group: str,
        iam_log_group: str,
        client_factory: Callable[[str], Any] | None = None,
        flush_interval: float = 1.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log_file = log_file
        self.log_group = log_group
        self.iam_log_group = iam_log_group
        self._factory = client_factory
        self._interval = flush_interval
        self._now = now
        self._file_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Event | None] = queue.SimpleQueue()
        self._counts: dict[tuple[str, datetime], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._count_lock = threading.Lock()
        self._closed = threading.Event()
        self._flushed = threading.Condition()
        self._pending = 0  # events queued but not yet sent (for flush())
        self._streams: set[tuple[str, str]] = set()
        self.errors = 0  # CloudWatch calls that failed (logged at debug level; the file still has the lines)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._thread: threading.Thread | None = None
        if client_factory is not None:
            self._thread = threading.Thread(target=self._run, name=f"rds-logs:{log_group}", daemon=True)
            self._thread.start()

    # -- what the front door reports -----------------------------------------------------------------------

    def connection_received(
        self, instance: str, host: str, port: int, pid: int, when: datetime | None = None
    ) -> None:
        """`LOG:  connection received: host=… port=…` (user and database are not known yet).

        `when`: the arrival time, when the line is written later (the front door waits for the backend pid).
        """
        msg = f"LOG:  connection received: host={host} port={port}"
        self._line(instance, host, port, None, None, pid, msg, when)

    def connection_authorized(
        self,
        instance: str,
        host: str,
        port: int,
        pid: int,
        user: str,
        database: str,
        application_name: str | None,
        ssl: SslInfo | None,
    ) -> None:
        """`LOG:  connection authorized: user=… database=… application_name=… SSL enabled (…)`."""
        msg = f"LOG:  connection authorized: user={_raw(user)} database={_raw(database)}"
        if application_name:
            # PostgreSQL keeps application_name to printable ASCII (pg_clean_ascii): it is escaped there too
            msg += f" application_name={_clean(application_name)}"
        if ssl is not None:
            msg += f" SSL enabled (protocol={ssl.protocol}, cipher={ssl.cipher}, bits={ssl.bits})"
        self._line(instance, host, port, user, database, pid, msg)

    def pam_failed(self, instance: str, host: str, port: int, pid: int, user: str, database: str) -> None:
        """The two lines RDS writes for any refused IAM login, whatever the reason."""
        self._line(
            instance, host, port, user, database, pid, "LOG:  pam_authenticate failed: Permission denied"
        )
        self._line(
            instance,
            host,
            port,
            user,
            database,
            pid,
            f'FATAL:  PAM authentication failed for user "{_raw(user)}"',
        )

    def server_error(
        self,
        instance: str,
        host: str,
        port: int,
        pid: int,
        user: str,
        database: str,
        severity: str,
        text: str,
    ) -> None:
        """A FATAL/ERROR the real server answered during login (e.g. password authentication failed)."""
        self._line(instance, host, port, user, database, pid, f"{_clean(severity)}:  {text}")

    def disconnection(
        self, instance: str, host: str, port: int, pid: int, user: str, database: str, seconds: float
    ) -> None:
        """`LOG:  disconnection: session time: H:MM:SS.mmm user=… database=… host=… port=…`."""
        ms = round(seconds * 1000)
        h, rest = divmod(ms, 3_600_000)
        m, rest = divmod(rest, 60_000)
        s, ms = divmod(rest, 1000)
        msg = (
            f"LOG:  disconnection: session time: {h}:{m:02d}:{s:02d}.{ms:03d} user={_raw(user)} "
            f"database={_raw(database)} host={host} port={port}"
        )
        self._line(instance, host, port, user, database, pid, msg)

    def iam_result(self, instance: str, user: str, verdict: Verdict) -> None:
        """Count an IAM login; on failure with an AWS code, write an iam-db-auth-error line."""
        if not verdict.iam_enabled:
            return  # IAM auth off: RDS does no IAM work, so no metric and no IAM line
        minute = self._now().astimezone(UTC).replace(second=0, microsecond=0)
        with self._count_lock:
            counts = self._counts[(instance, minute)]
            counts["IamDbAuthConnectionRequests"] += 1
            if verdict.ok:
                counts["IamDbAuthConnectionSuccess"] += 1
            else:
                counts["IamDbAuthConnectionFailure"] += 1
                counts[_FAILURE_METRIC[verdict.error_code or "InternalError"]] += 1
        if not verdict.ok and verdict.error_code is not None:
            when = self._now()
            self._emit(
                _Event(self.iam_log_group, instance, when, iam_error_line(when, user, verdict)), to_file=False
            )

    # -- plumbing ----------------------------------------------------------------------------------------

    def _line(
        self,
        instance: str,
        host: str | None,
        port: int | None,
        user: str | None,
        db: str | None,
        pid: int,
        msg: str,
        when: datetime | None = None,
    ) -> None:
        when = when or self._now()
        line = rds_prefix(when, host, port, user, db, pid) + _tabbed(msg)
        self._emit(_Event(self.log_group, instance, when, line))

    def _emit(self, event: _Event, *, to_file: bool = True) -> None:
        if to_file:
            with self._file_lock, self.log_file.open("a", encoding="utf-8") as fh:
                fh.write(event.message + "\n")
        if self._thread is not None and not self._closed.is_set():
            with self._flushed:
                self._pending += 1
            self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything emitted so far reached CloudWatch (or failed); metrics are sent too."""
        if self._thread is None:
            return True
        self._queue.put(None)  # wakes the thread for an immediate round
        with self._flushed:
            return self._flushed.wait_for(lambda: self._pending == 0 and not self._has_counts(), timeout)

    def _has_counts(self) -> bool:
        with self._count_lock:
            return bool(self._counts)

    def close(self) -> None:
        """Send what is left, stop the thread (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=15)

    def __enter__(self) -> RdsLogSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        assert self._factory is not None
        logs = cw = None
        try:
            logs = self._factory("logs")
            cw = self._factory("cloudwatch")
        except Exception:
            log.debug("cannot make CloudWatch clients; logging to file only", exc_info=True)
        while True:
            batch: list[_Event] = []
            try:
                item = self._queue.get(timeout=self._interval)
                if item is not None:
                    batch.append(item)
                while len(batch) < _MAX_BATCH:
                    item = self._queue.get_nowait()
                    if item is not None:
                        batch.append(item)
            except queue.Empty:
                pass
            if logs is not None and batch:
                self._send_logs(logs, batch)
            if cw is not None:
                self._send_metrics(cw)
            else:
                with self._count_lock:
                    self._counts.clear()
            with self._flushed:
                self._pending -= len(batch)
                self._flushed.notify_all()
            if self._closed.is_set() and self._queue.empty():
                return

    def _send_logs(self, logs: Any, batch: list[_Event]) -> None:
        by_stream: dict[tuple[str, str], list[_Event]] = defaultdict(list)
        for ev in batch:
            by_stream[(ev.group, ev.stream)].append(ev)
        for (group, stream), events in by_stream.items():
            try:
                self._ensure_stream(logs, group, stream)
                events.sort(key=lambda e: e.when)  # put_log_events wants chronological order
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[
                        {"timestamp": int(e.when.timestamp() * 1000), "message": e.message} for e in events
                    ],
                )
            except Exception:
                self.errors += 1
                log.debug("put_log_events to %s/%s failed", group, stream, exc_info=True)

    def _ensure_stream(self, logs: Any, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        for call, kwargs in (
            (logs.create_log_group, {"logGroupName": group}),
            (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                call(**kwargs)
            except Exception as exc:  # already there is the normal case for the group (seeded by the sandbox)
                if "AlreadyExists" not in type(exc).__name__ and "AlreadyExists" not in str(exc):
                    raise
        self._streams.add((group, stream))

    def _send_metrics(self, cw: Any) -> None:
        with self._count_lock:
            counts = dict(self._counts)
            self._counts.clear()
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
                "Timestamp": minute,
                "Value": float(value),
                "Unit": "Count",
            }
            for (instance, minute), metrics in counts.items()
            for name, value in metrics.items()
        ]
        for i in range(0, len(data), 500):  # put_metric_data takes up to 1,000 datums per call
            try:
                cw.put_metric_data(Namespace="AWS/RDS", MetricData=data[i : i + 500])
            except Exception:
                self.errors += 1
                log.debug("put_metric_data failed", exc_info=True)

    def read_file(self) -> list[str]:
        """The local log file's lines (for tests and the demo)."""
        with contextlib.suppress(FileNotFoundError), self._file_lock:
            return self.log_file.read_text(encoding="utf-8").splitlines()
        return []
