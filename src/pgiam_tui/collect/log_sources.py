"""Incremental readers of PostgreSQL log lines: CloudWatch Logs, the RDS log-file API, and a local file.

Each source is an object that keeps its own cursor, so calling `poll()` round after round returns every new
line once: no duplicates and no gaps, also across errors (a failed poll leaves the cursor where it was, the
next poll reads the same range again) and across reconnects (the cursor lives in the source, not in a
connection). `poll()` is synchronous (boto3 / file I/O): the events collector runs it in a worker thread.

- `CloudWatchLogSource`: `filter_log_events` on a log group, with a filter pattern that keeps connection lines
  only, `startTime` = last seen timestamp minus an overlap window (CloudWatch ingests late and out of order),
  duplicates dropped by `eventId`, `nextToken` pagination. The log stream name is the instance id on RDS.
- `RdsLogFileSource`: `describe_db_log_files` + `download_db_log_file_portion` per instance with a `Marker`
  per file, `AdditionalDataPending` paging (1 MB / 10,000 lines per page), the truncation marker line dropped,
  a line split across pages joined back. First poll: only the tail of the newest file.
- `FileTailSource`: `tail -F` of a local file: follows appends, notices rotation (new inode) and truncation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from pgiam_tui.aws.errors import aws_error_code

__all__ = [
    "CONNECTION_FILTER_PATTERN",
    "CONNECTION_TERMS",
    "TRUNCATION_MARKER",
    "CloudWatchLogSource",
    "FileTailSource",
    "RawLine",
    "RdsLogFileSource",
]

#: The words of every line the attempts are joined from (collect/logmessages.py): connection received /
#: authenticated / authorized / ready, disconnection, RDS's pam_authenticate, every credential failure
#: ("<method> authentication failed") and every other login-refusing FATAL.
CONNECTION_TERMS = (
    "connection received", "connection authenticated", "connection authorized", "connection ready",
    "disconnection", "pam_authenticate", "authentication failed", "no pg_hba.conf entry",
    "pg_hba.conf rejects", "is not permitted to log in", "too many connections for",
    "remaining connection slots", "too many clients already", "does not exist",
    "not currently accepting connections", "permission denied for database", "the database system is",
    "no PostgreSQL user name", "unsupported frontend protocol", "canceling authentication",
    "valid client certificate",
)  # fmt: skip
#: CloudWatch filter pattern (OR of quoted terms) selecting those lines.
CONNECTION_FILTER_PATTERN = " ".join(f'?"{term}"' for term in CONNECTION_TERMS)

#: The line RDS appends to a download_db_log_file_portion page cut at 1 MB.
TRUNCATION_MARKER = "[Your log message was truncated]"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RawLine:
    """One log line as read, before parsing: text, the source's own timestamp if any, and the instance."""

    text: str
    time: datetime | None
    instance: str | None
    source: str


def _ms_to_dt(ms: int | float | None) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000.0, UTC)


class CloudWatchLogSource:
    """New events of one CloudWatch log group (e.g. /aws/rds/cluster/ID/postgresql), incrementally.

    `lookback_s`: how far back the first poll reads. `overlap_s`: each later poll starts this long before the
    newest timestamp seen, so events ingested late still arrive; the `eventId`s seen in that window are
    remembered so none is returned twice. `filter_pattern=None` reads every event (iam-db-auth-error group).
    """

    def __init__(
        self,
        log_group: str,
        *,
        filter_pattern: str | None = CONNECTION_FILTER_PATTERN,
        lookback_s: float = 900.0,
        overlap_s: float = 300.0,
        source: str = "cloudwatch",
        max_pages: int = 50,
        page_size: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.log_group = log_group
        self.page_size = page_size
        self.filter_pattern = filter_pattern
        self.lookback_ms = int(lookback_s * 1000)
        self.overlap_ms = int(overlap_s * 1000)
        self.source = source
        self.max_pages = max_pages
        self._clock = clock
        self._newest_ms: int | None = None
        self._seen: dict[str, int] = {}  # eventId -> timestamp, for events inside the overlap window

    def poll(self, client: Any) -> list[RawLine]:
        """Every event not returned before, oldest first. Raises botocore errors (the cursor stays put)."""
        now_ms = int(self._clock() * 1000)
        start = now_ms - self.lookback_ms if self._newest_ms is None else self._newest_ms - self.overlap_ms
        kwargs: dict[str, Any] = {"logGroupName": self.log_group, "startTime": start}
        if self.filter_pattern:
            kwargs["filterPattern"] = self.filter_pattern
        if self.page_size:
            kwargs["limit"] = self.page_size
        fresh: list[dict[str, Any]] = []
        batch_ids: set[str] = set()
        token: str | None = None
        complete = False
        for _ in range(self.max_pages):
            resp = client.filter_log_events(**kwargs, **({"nextToken": token} if token else {}))
            for ev in resp.get("events", []):
                eid = ev.get("eventId")
                if eid is None or eid in self._seen or eid in batch_ids:
                    continue
                batch_ids.add(eid)
                fresh.append(ev)
            nxt = resp.get("nextToken")
            # CloudWatch may hand back the same token at the end of a stream: stop rather than loop forever
            if not nxt or nxt == token:
                complete = True
                break
            token = nxt
        # Only now, with every page read, move the cursor: a failure above leaves it untouched (no gaps).
        newest = self._newest_ms if self._newest_ms is not None else start
        for ev in fresh:
            ts = int(ev.get("timestamp", 0))
            self._seen[ev["eventId"]] = ts
            if complete:
                newest = max(newest, ts)
        if complete:
            # a quiet log still moves the window forward, so it does not grow without bound
            newest = max(newest, now_ms - self.overlap_ms)
        # (when max_pages stopped the read early, the cursor stays: the next poll re-reads the range and the
        # remembered eventIds skip what was already returned)
        self._newest_ms = newest
        horizon = newest - self.overlap_ms
        if len(self._seen) > 256:
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        fresh.sort(key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))
        out: list[RawLine] = []
        for ev in fresh:
            when = _ms_to_dt(ev.get("timestamp"))
            stream = ev.get("logStreamName")
            for line in str(ev.get("message", "")).splitlines():
                if line.strip():
                    out.append(RawLine(line, when, stream, self.source))
        return out


class _FileCursor:
    __slots__ = ("marker", "partial", "skip", "tail")

    def __init__(self, marker: str | None, *, tail: bool = False, skip: bool = False) -> None:
        self.marker = marker
        self.partial = ""
        self.tail = tail  # not read yet, start with its last lines
        self.skip = skip  # history at the first poll: never read


class RdsLogFileSource:
    """New lines of the PostgreSQL log files of RDS instances, via the RDS API (no CloudWatch export needed).

    One cursor (`Marker`) per instance and file. The first poll reads only the last `first_lines` lines of
    each instance's newest file (`from_start=True`: every file written in the last `lookback_s`, whole, as
    incident review wants); files that appear later (hourly rotation) are read from their start.
    An instance whose API calls fail is skipped for this poll (its cursors stay put) and named in
    `last_errors`; `poll()` raises only when every instance failed.
    """

    def __init__(
        self,
        instance_ids: tuple[str, ...] | list[str],
        *,
        first_lines: int = 1000,
        lookback_s: float = 3600.0,
        max_pages: int = 20,
        source: str = "rds_logfile",
        clock: Clock = time.time,
        from_start: bool = False,
    ) -> None:
        self.instance_ids = tuple(instance_ids)
        self.first_lines = first_lines
        self.from_start = from_start
        self.lookback_ms = int(lookback_s * 1000)
        self.max_pages = max_pages
        self.source = source
        self._clock = clock
        self._files: dict[str, dict[str, _FileCursor]] = {}  # instance -> file name -> cursor
        self.truncations = 0  # pages RDS cut at 1 MB (counted for diagnostics)
        self.last_errors: list[str] = []
        self.last_exception: Exception | None = None  # one of them (a timeout, a refusal: says which fix)

    def poll(self, client: Any) -> list[RawLine]:
        """New lines of every instance, in file order."""
        out: list[RawLine] = []
        errors: list[str] = []
        last_exc: Exception | None = None
        for inst in self.instance_ids:
            try:
                out.extend(self._poll_instance(client, inst))
            except Exception as exc:  # one instance's failure must not hide the others' lines
                errors.append(f"{inst}: {aws_error_code(exc) or type(exc).__name__}")
                last_exc = exc
        self.last_errors = errors
        self.last_exception = last_exc
        if last_exc is not None and len(errors) == len(self.instance_ids):
            raise last_exc
        return out

    def _list_files(self, client: Any, inst: str) -> list[dict[str, Any]]:
        since = int(self._clock() * 1000) - self.lookback_ms
        files: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"DBInstanceIdentifier": inst, "FileLastWritten": since}
            if marker:
                kwargs["Marker"] = marker
            resp = client.describe_db_log_files(**kwargs)
            files.extend(resp.get("DescribeDBLogFiles", []))
            marker = resp.get("Marker")
            if not marker:
                break
        # only PostgreSQL's own logs (not e.g. the upgrade or agent logs); oldest first so lines stay in order
        files = [f for f in files if "postgres" in str(f.get("LogFileName", ""))]
        files.sort(key=lambda f: (f.get("LastWritten", 0), f.get("LogFileName", "")))
        return files

    def _poll_instance(self, client: Any, inst: str) -> list[RawLine]:
        files = self._list_files(client, inst)
        names = [str(f["LogFileName"]) for f in files]
        first = inst not in self._files
        cursors = self._files.get(inst, {})
        new_cursors: dict[str, _FileCursor] = {}
        for i, name in enumerate(names):
            cur = cursors.get(name)
            if cur is None:
                # first poll: older files are history, the newest is read from its last lines;
                # later, a file that appeared (rotation) is read from its start
                if first and not self.from_start:
                    cur = _FileCursor(None, tail=True, skip=i < len(names) - 1)
                else:
                    cur = _FileCursor("0")
            new_cursors[name] = cur
        # cursors are installed before reading and each moves only after its file's pages are read
        self._files[inst] = new_cursors
        out: list[RawLine] = []
        for name, cur in new_cursors.items():
            if not cur.skip:
                out.extend(self._read_file(client, inst, name, cur))
        return out

    def _read_file(self, client: Any, inst: str, name: str, cur: _FileCursor) -> list[RawLine]:
        # Work on copies: the cursor only moves once every page of this round is read.
        marker, partial, tail = cur.marker, cur.partial, cur.tail
        texts: list[str] = []
        for _ in range(self.max_pages):
            kwargs: dict[str, Any] = {"DBInstanceIdentifier": inst, "LogFileName": name}
            if tail and marker is None:
                kwargs["NumberOfLines"] = (
                    self.first_lines
                )  # no Marker + NumberOfLines = the file's last lines
            else:
                kwargs["Marker"] = marker or "0"
            try:
                resp = client.download_db_log_file_portion(**kwargs)
            except Exception as exc:
                if aws_error_code(exc) == "DBLogFileNotFoundFault":
                    break  # rotated away between list and download: nothing more to read there
                raise
            data = str(resp.get("LogFileData") or "")
            marker = resp.get("Marker") or marker
            pending = bool(resp.get("AdditionalDataPending"))
            lines, partial = _split(partial + data)
            for line in lines:
                if line.strip() == TRUNCATION_MARKER:
                    # RDS cut this page at 1 MB; the Marker continues after the cut, and the fragment before
                    # the marker line is the start of a line the next page completes.
                    self.truncations += 1
                    if texts:
                        partial = texts.pop() + partial
                    continue
                texts.append(line)
            if not pending:
                break
            tail = False
        cur.marker, cur.partial, cur.tail = marker, partial, False
        return [RawLine(t, None, inst, self.source) for t in texts if t.strip()]


def _split(text: str) -> tuple[list[str], str]:
    """Complete lines, and the unterminated rest (kept for the next read)."""
    if not text:
        return [], ""
    parts = text.split("\n")
    rest = parts.pop()
    return [p.rstrip("\r") for p in parts], rest


class FileTailSource:
    """New lines appended to a local file, like `tail -F`: survives rotation (new inode) and truncation.

    The first poll starts `tail_bytes` before the end (from the next full line). Undecodable bytes are
    replaced, a line still being written is held back until its newline arrives.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, tail_bytes: int = 1 << 20, source: str = "file"
    ) -> None:
        self.path = os.fspath(path)
        self.tail_bytes = tail_bytes
        self.source = source
        self._fh: IO[bytes] | None = None
        self._inode: tuple[int, int] | None = None
        self._partial = b""
        self._started = False

    def close(self) -> None:
        """Close the file handle (the next poll reopens it)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def poll(self) -> list[RawLine]:
        """Lines appended since the last poll. A missing file yields nothing (it may appear later)."""
        chunks: list[bytes] = []
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._fh is not None:
            # drain what the file we hold has (after a rotation: the rest of the old file)
            if st is not None and (st.st_dev, st.st_ino) == self._inode and st.st_size < self._fh.tell():
                self._fh.seek(0)  # truncated in place (copytruncate): start over
                self._partial = b""
            chunks.append(self._fh.read())
            if st is None or (st.st_dev, st.st_ino) != self._inode:
                self.close()
        if self._fh is None and st is not None:
            fh = open(self.path, "rb")  # noqa: SIM115 - held open across polls on purpose (tail -F)
            self._inode = (st.st_dev, st.st_ino)
            if not self._started and st.st_size > self.tail_bytes:
                fh.seek(st.st_size - self.tail_bytes)
                fh.readline()  # skip the partial first line
            self._fh = fh
            self._started = True
            chunks.append(fh.read())
        self._started = True
        data = self._partial + b"".join(chunks)
        if not data:
            return []
        *complete, self._partial = data.split(b"\n")
        return [
            RawLine(raw.decode("utf-8", "replace").rstrip("\r"), None, None, self.source)
            for raw in complete
            if raw.strip()
        ]
