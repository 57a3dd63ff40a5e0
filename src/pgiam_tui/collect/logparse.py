"""Parse PostgreSQL connection-log lines (RDS format or any `log_line_prefix`) into `model.ConnEvent`.

RDS and Aurora write every line with the fixed prefix `%t:%r:%u@%d:[%p]:`, e.g.

    2019-09-29 10:13:24 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):pgmonitor@pgbench:[29443]:LOG:  \
    pam_authenticate failed: Permission denied

Self-managed servers use whatever `log_line_prefix` says; `LogLineParser(prefix)` compiles the prefix's `%`
escapes into one regular expression, once. The kinds produced are `received`, `authorized` (with the SSL
details, or `{"enabled": False}`), `auth_failed` (PAM, password, pg_hba rejection), `disconnected` (with the
session time) and `other`. Log text is untrusted: a line that does not fit is kept as kind `other`; parsing
never raises. Text is kept as the server wrote it; every output escapes it once (`pgiam_tui.textsafe`).

Speed matters (a busy server logs thousands of connections a minute, and a first read may cover an hour of
them), so the hot path is one regex match, a dict lookup for the timestamp and a few `str` prefix tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pgiam_tui.model import ConnEvent, EventKind

__all__ = [
    "RDS_PREFIX",
    "LogLineParser",
    "compile_prefix",
    "parse_line",
]

RDS_PREFIX = "%t:%r:%u@%d:[%p]:"

# Severity tags PostgreSQL writes after the prefix (elog.c error_severity()), plus the detail lines.
_LEVELS = (
    r"(?P<level>LOG|FATAL|ERROR|WARNING|NOTICE|INFO|PANIC|DEBUG[1-5]?"
    r"|DETAIL|HINT|STATEMENT|CONTEXT|QUERY|LOCATION)"
)

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_TZ = r"(?: [A-Za-z0-9+\-_]+)?"

# One regex fragment per log_line_prefix escape (src/backend/utils/error/elog.c log_line_prefix()).
# Free-text escapes are lazy so the literal text that follows them in the prefix decides where they end.
_ESCAPES: dict[str, str] = {
    "a": r"(?P<app>.*?)",
    "u": r"(?P<user>.*?)",
    "d": r"(?P<db>.*?)",
    "r": r"(?:(?P<rhost>[^()\s]*)\((?P<rport>\d{1,10})\)|(?P<rlocal>\[local\])|(?P<rhost2>[^()\s:]*))",
    "h": r"(?P<host>[^\s]*?)",
    "b": r"(?P<btype>.*?)",
    "p": r"(?P<pid>\d{1,10})",
    "P": r"(?:\d*)",
    "t": rf"(?P<ts>{_TS}{_TZ})",
    "m": rf"(?P<ts>{_TS}\.\d+{_TZ})",
    "n": r"(?P<epoch>\d+(?:\.\d+)?)",
    "i": r"(?:.*?)",
    "e": r"(?:[0-9A-Z]{5})",
    "c": r"(?:[0-9a-f]+\.[0-9a-f]+)",
    "l": r"(?:\d+)",
    "s": rf"(?:{_TS}{_TZ})",
    "v": r"(?:[\d/]*)",
    "x": r"(?:\d+)",
    "Q": r"(?:-?\d+)",
}
_GROUPS = ("ts", "epoch", "user", "db", "rhost", "rport", "rhost2", "host", "pid", "level", "msg")
_ESCAPE_RE = re.compile(r"%(-?\d+)?(.)")

_RECEIVED = "connection received: "
_AUTHORIZED = "connection authorized: "
_REPL_AUTHORIZED = "replication connection authorized: "
_DISCONNECTION = "disconnection: session time: "

_SSL_RE = re.compile(r"SSL enabled \((?P<body>[^)]*)\)")
_SESSION_RE = re.compile(r"(?P<st>\d+:\d\d:\d\d(?:\.\d+)?)(?P<rest>.*)")
_QUOTED_USER_RE = re.compile(r'for user "(?P<user>[^"]*)"')
_UNKNOWN = {"", "[unknown]", "[local]"}


def _kv(text: str) -> dict[str, str]:
    """`key=value key=value` words -> dict (a split is several times faster than a regex findall here)."""
    out: dict[str, str] = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep:
            out[key] = value
    return out


def compile_prefix(prefix: str) -> re.Pattern[str]:
    """Compile a `log_line_prefix` into a regex matching prefix + `LEVEL:  message` at the start of a line.

    Unknown escapes match any text; `%q` (stop here for non-session processes) makes the rest of the prefix
    optional; `%%` is a literal percent. Padding (`%-10u`) is allowed by letting spaces surround the value.
    Each named group appears once: a prefix that repeats an escape only captures its first occurrence.
    """
    parts: list[str] = []
    used: set[str] = set()
    optional_from: int | None = None
    pos = 0
    for m in _ESCAPE_RE.finditer(prefix):
        parts.append(re.escape(prefix[pos : m.start()]))
        pos = m.end()
        pad, letter = m.group(1), m.group(2)
        if letter == "%":
            parts.append("%")
            continue
        if letter == "q":
            optional_from = len(parts)
            continue
        frag = _ESCAPES.get(letter, r"(?:.*?)")
        names = re.findall(r"\(\?P<(\w+)>", frag)
        if any(n in used for n in names):
            frag = re.sub(r"\(\?P<\w+>", "(?:", frag)
        used.update(names)
        if pad:
            frag = rf"\s*{frag}\s*"
        parts.append(frag)
    parts.append(re.escape(prefix[pos:]))
    if optional_from is not None:
        head, tail = parts[:optional_from], parts[optional_from:]
        parts = [*head, "(?:", *tail, ")?"]
    body = "".join(parts)
    # Groups the prefix lacks are added as never-matching `(?P<x>){0}` so `_parse` can fetch all in one call.
    missing = "".join(f"(?P<{g}>){{0}}" for g in _GROUPS[:-2] if g not in used)
    # PostgreSQL writes "LEVEL:  message" (two spaces); tolerate one, and a space if the prefix lacks one.
    return re.compile(rf"^{missing}{body}\s?{_LEVELS}:\s+(?P<msg>.*)$", re.DOTALL)


_TZ_CACHE: dict[str, timezone] = {"UTC": UTC, "GMT": UTC, "Z": UTC, "": UTC}
_TZ_NUM_RE = re.compile(r"([+-])(\d\d):?(\d\d)?$")


def _tz(name: str) -> timezone:
    tz = _TZ_CACHE.get(name)
    if tz is not None:
        return tz
    m = _TZ_NUM_RE.match(name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        tz = timezone(-delta if m.group(1) == "-" else delta)
    else:
        # Named zones other than UTC/GMT (e.g. "CEST") are ambiguous abbreviations; RDS always logs UTC, and
        # for a self-managed server set log_timezone = 'UTC' or put %n (epoch) in the prefix. Treat as UTC.
        tz = UTC
    if len(_TZ_CACHE) < 256:
        _TZ_CACHE[name] = tz
    return tz


class _TimeCache:
    """Timestamp text -> aware UTC datetime; consecutive lines share a second, so a small cache hits."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, datetime | None] = {}

    def get(self, text: str) -> datetime | None:
        hit = self._cache.get(text, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        value = self._parse(text)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[text] = value
        return value

    @staticmethod
    def _parse(text: str) -> datetime | None:
        stamp, _, zone = text.partition(" ")
        clock, _, zone = zone.partition(" ")
        try:
            naive = datetime.fromisoformat(f"{stamp} {clock}")
        except ValueError:
            return None
        tz = _tz(zone)
        aware = naive.replace(tzinfo=tz)
        return aware if tz is UTC else aware.astimezone(UTC)


_MISS = object()


def _int(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def _ssl(msg: str) -> dict[str, Any]:
    m = _SSL_RE.search(msg)
    if m is None:
        return {"enabled": False}
    out: dict[str, Any] = {}
    for item in m.group("body").split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "bits":
            out[key] = _int(value) if value.isdigit() else value
        elif key in ("protocol", "cipher", "compression"):
            out[key] = value
    return out


class LogLineParser:
    """Parse lines written with one `log_line_prefix` (default: RDS's `%t:%r:%u@%d:[%p]:`).

    `parse(line)` never raises and always returns a ConnEvent (kind `other` when the line does not fit).
    One parser per source is cheap; it keeps a small timestamp cache.
    """

    def __init__(
        self, prefix: str = RDS_PREFIX, *, source: str = "cloudwatch", instance: str | None = None
    ) -> None:
        self.prefix = prefix
        self.source = source
        self.instance = instance
        self._re = compile_prefix(prefix)
        self._times = _TimeCache()

    def parse(
        self,
        line: str,
        *,
        source: str | None = None,
        instance: str | None = None,
        fallback_time: datetime | None = None,
    ) -> ConnEvent:
        """One log line -> ConnEvent.

        `fallback_time` (e.g. CloudWatch's event timestamp) is used when the line carries no parseable time.
        """
        src = source or self.source
        inst = instance if instance is not None else self.instance
        if line[-1:] == "\n":
            line = line.rstrip("\r\n")
        try:
            return self._parse(line, src, inst, fallback_time)
        except Exception:  # the contract is "never raises"; a parser bug must not stop collection
            return ConnEvent(time=fallback_time, kind="other", source=src, message=line, instance=inst)

    def parse_lines(
        self, lines: Iterable[str], *, source: str | None = None, instance: str | None = None
    ) -> Iterator[ConnEvent]:
        """Parse many lines (blank lines skipped)."""
        for line in lines:
            if line and not line.isspace():
                yield self.parse(line, source=source, instance=instance)

    def _parse(self, line: str, src: str, inst: str | None, fallback: datetime | None) -> ConnEvent:
        m = self._re.match(line)
        if m is None:
            return ConnEvent(fallback, "other", source=src, message=line, instance=inst)
        ts, epoch, user, db, rhost, rport, rhost2, host, pid_s, level, msg = m.group(*_GROUPS)
        when: datetime | None = None
        if ts is not None:
            when = self._times.get(ts)
        elif epoch is not None:
            try:
                when = datetime.fromtimestamp(float(epoch), UTC)
            except (ValueError, OverflowError, OSError):
                when = None
        if when is None:
            when = fallback
        if user in _UNKNOWN:
            user = None
        if db in _UNKNOWN:
            db = None
        host = rhost or rhost2 or host or None
        # the prefix regex only lets digits (at most 10) into these groups, so int() cannot fail
        port = int(rport) if rport else None
        pid = int(pid_s) if pid_s else None
        kind: EventKind = "other"
        ssl: dict[str, Any] | None = None
        session_time: str | None = None

        if level == "LOG":
            c = msg[:5]
            if (c == "conne" and msg.startswith(_AUTHORIZED)) or (
                c == "repli" and msg.startswith(_REPL_AUTHORIZED)
            ):
                kind = "authorized"
                head, sep, _ = msg.partition(" SSL enabled (")
                kv = _kv(head)
                user = kv.get("user") or user
                db = kv.get("database") or db
                ssl = _ssl(msg) if sep else {"enabled": False}
            elif c == "conne" and msg.startswith(_RECEIVED):
                kind = "received"
                kv = _kv(msg)
                host = kv.get("host") or host
                port = _int(kv.get("port")) or port
            elif c == "disco" and msg.startswith(_DISCONNECTION):
                kind = "disconnected"
                sm = _SESSION_RE.match(msg, len(_DISCONNECTION))
                if sm is not None:
                    session_time = sm.group("st")
                    kv = _kv(sm.group("rest"))
                    user = kv.get("user") or user
                    db = kv.get("database") or db
                    host = kv.get("host") or host
                    port = _int(kv.get("port")) or port
            elif c == "pam_a" and msg.startswith("pam_authenticate failed"):
                kind = "auth_failed"
        elif level == "FATAL" and (
            "authentication failed for user" in msg or msg.startswith("no pg_hba.conf entry for")
        ):
            kind = "auth_failed"
            um = _QUOTED_USER_RE.search(msg)
            if um is not None:
                user = um.group("user") or user
        return ConnEvent(
            when,
            kind,
            user,
            db,
            host,
            port,
            pid,
            ssl,
            src,
            f"{level}:  {msg}",
            inst,
            None,
            None,
            session_time,
        )


_DEFAULT = LogLineParser()


def parse_line(line: str, *, source: str = "cloudwatch", instance: str | None = None) -> ConnEvent:
    """Parse one RDS-format line with a shared default parser (convenience for tests and one-offs)."""
    return _DEFAULT.parse(line, source=source, instance=instance)
