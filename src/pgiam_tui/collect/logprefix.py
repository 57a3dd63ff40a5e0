"""`log_line_prefix` -> one regular expression, and the prefix's timestamps -> aware UTC datetimes.

Every escape of PostgreSQL 12 to 18 (src/backend/utils/error/elog.c `log_line_prefix()`) has a fragment
below. Free-text escapes are lazy, so the literal text that follows them in the prefix decides where they
end. `%u` and `%d` written next to each other with a literal between them (RDS's `%u@%d`, `user=%u,db=%d`)
are captured as one group: a user name may contain the separator (email-style IAM users), so the split is
decided afterwards, with more knowledge (`logparse.split_user_db`).

Time zones: `%t`/`%m`/`%s` end in `log_timezone`'s abbreviation (`UTC`, `CET`, `EST`, `+0530`, `-03`). A
numeric offset is exact; an abbreviation is resolved against the server's `log_timezone` when it is known
(an IANA name such as `Europe/Berlin`), else against PostgreSQL's own default abbreviation table
(src/timezone/tznames/Default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CompiledPrefix", "PrefixError", "TimeParser", "compile_prefix", "parse_zone"]

# Severity tags PostgreSQL writes after the prefix (elog.c error_severity()), plus the detail lines.
_LEVELS = (
    r"(?P<level>LOG|FATAL|ERROR|WARNING|NOTICE|INFO|PANIC|DEBUG[1-5]?"
    r"|DETAIL|HINT|STATEMENT|CONTEXT|QUERY|LOCATION)"
)
# log_error_verbosity = verbose puts the SQLSTATE first (elog.c "%s: "): "FATAL:  28000: PAM auth…".
_SQLSTATE = r"(?:(?P<sqlstate>[0-9A-Z]{5}): )?"

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_TZ = r"(?: [A-Za-z0-9+\-_/]+)?"

_ESCAPES: dict[str, str] = {
    "a": r"(?P<app>.*?)",
    "u": r"(?P<user>.*?)",
    "d": r"(?P<db>.*?)",
    "r": r"(?:(?P<rhost>[^()\s]*)\((?P<rport>\d{1,10})\)|(?P<rlocal>\[local\])|(?P<rhost2>[^()\s:]*))",
    "h": r"(?P<host>[^\s]*?)",
    "L": r"(?:[^\s]*?)",  # local server address (PostgreSQL 17+)
    "b": r"(?P<btype>.*?)",  # backend type, e.g. "client backend", "not initialized"
    "p": r"(?P<pid>\d{1,10})",
    "P": r"(?:\d*)",  # parallel group leader pid
    "t": rf"(?P<ts>{_TS}{_TZ})",
    "m": rf"(?P<ts>{_TS}\.\d+{_TZ})",
    "n": r"(?P<epoch>\d+(?:\.\d+)?)",
    "i": r"(?:.*?)",  # command tag
    "e": r"(?P<ecode>[0-9A-Z]{5})",
    "c": r"(?:[0-9a-f]+\.[0-9a-f]+)",
    "l": r"(?:\d+)",
    "s": rf"(?:{_TS}{_TZ})",
    "v": r"(?:[\d/]*)",
    "x": r"(?:\d+)",
    "Q": r"(?:-?\d+)",  # query id (PostgreSQL 14+)
}
GROUPS = ("ts", "epoch", "user", "db", "ud", "rhost", "rport", "rhost2", "host", "pid", "ecode")
_ESCAPE_RE = re.compile(r"%(-?\d+)?(.)")


class PrefixError(ValueError):
    """A `log_line_prefix` (or time zone) that cannot be used."""


@dataclass(frozen=True, slots=True)
class CompiledPrefix:
    """The compiled prefix: the regex, and how a combined user/database group is laid out."""

    regex: re.Pattern[str]
    ud_separator: str | None = None  # the literal between %u and %d when they were captured together
    ud_user_first: bool = True


def compile_prefix(prefix: str) -> CompiledPrefix:
    """Compile a `log_line_prefix` into a regex matching prefix + `LEVEL:  message` at the start of an entry.

    Unknown escapes match any text; `%q` (stop here for non-session processes) makes the rest of the prefix
    optional; `%%` is a literal percent. Padding (`%-10u`) lets spaces surround the value. Each named group
    appears once: a prefix that repeats an escape only captures its first occurrence.
    """
    if "\n" in prefix:
        raise PrefixError("a log_line_prefix cannot contain a line break")
    tokens: list[tuple[str, str | None, str]] = []  # (literal before, pad, letter)
    pos = 0
    for m in _ESCAPE_RE.finditer(prefix):
        tokens.append((prefix[pos : m.start()], m.group(1), m.group(2)))
        pos = m.end()
    tail = prefix[pos:]
    parts: list[str] = []
    used: set[str] = set()
    optional_from: int | None = None
    ud_sep: str | None = None
    ud_user_first = True
    i = 0
    while i < len(tokens):
        literal, pad, letter = tokens[i]
        parts.append(re.escape(literal))
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        pair = {letter, nxt[2]} == {"u", "d"} if nxt is not None else False
        if pair and nxt is not None and not pad and not nxt[1] and nxt[0] and "ud" not in used:
            # %u<sep>%d (or %d<sep>%u): one group, split later (either name may contain the separator)
            ud_sep, ud_user_first = nxt[0], letter == "u"
            parts.append(rf"(?P<ud>.*?{re.escape(ud_sep)}.*?)")
            used.update({"ud", "user", "db"})
            i += 2
            continue
        i += 1
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
    parts.append(re.escape(tail))
    if optional_from is not None:
        head, rest = parts[:optional_from], parts[optional_from:]
        parts = [*head, "(?:", *rest, ")?"]
    body = "".join(parts)
    # Groups the prefix lacks are added as never-matching `(?P<x>){0}` so one call fetches them all.
    present = set(re.findall(r"\(\?P<(\w+)>", body))
    missing = "".join(f"(?P<{g}>){{0}}" for g in GROUPS if g not in present)
    # PostgreSQL writes "LEVEL:  message" (two spaces); tolerate one, and a space if the prefix lacks one.
    try:
        regex = re.compile(rf"^{missing}{body}\s?{_LEVELS}:\s+{_SQLSTATE}(?P<msg>.*)$", re.DOTALL)
    except re.error as exc:  # pragma: no cover - every fragment is escaped; kept as a clear error anyway
        raise PrefixError(f"log_line_prefix {prefix!r} cannot be compiled: {exc}") from exc
    return CompiledPrefix(regex, ud_sep, ud_user_first)


# PostgreSQL's default abbreviation set (src/timezone/tznames/Default), the zones servers commonly log in.
_ABBREVIATIONS: dict[str, float] = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1,
    "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "IST": 2, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
    "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "AST": -4, "ADT": -3,
    "NST": -3.5, "NDT": -2.5, "JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AWST": 8, "ACST": 9.5,
    "ACDT": 10.5, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "SAST": 2, "WAT": 1, "CAT": 2, "EAT": 3,
    "PKT": 5, "ICT": 7, "WIB": 7,
}  # fmt: skip
_NUM_RE = re.compile(r"([+-])(\d\d):?(\d\d)?$")


def parse_zone(name: str) -> tzinfo:
    """A time zone from an IANA name (`Europe/Berlin`), a numeric offset (`+05:30`) or an abbreviation
    (`CET`). Raises PrefixError for anything else."""
    text = name.strip()
    m = _NUM_RE.match(text)
    if m:
        return _offset(m)
    if text.upper() in _ABBREVIATIONS:
        return timezone(timedelta(hours=_ABBREVIATIONS[text.upper()]))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PrefixError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from exc


def _offset(m: re.Match[str]) -> timezone:
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    return timezone(-delta if m.group(1) == "-" else delta) if delta else UTC


class TimeParser:
    """Timestamp text of the prefix -> aware UTC datetime (None when it cannot be read).

    `log_timezone`: the server's zone when known; it decides what an abbreviation means (and its DST).
    Consecutive lines share a second, so a small cache makes this nearly free.
    """

    __slots__ = ("_cache", "_zone")

    def __init__(self, log_timezone: tzinfo | None = None) -> None:
        self._zone = log_timezone
        self._cache: dict[str, datetime | None] = {}

    def get(self, text: str) -> datetime | None:
        """The UTC time TEXT stands for."""
        if text in self._cache:
            return self._cache[text]
        value = self._parse(text)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[text] = value
        return value

    def _parse(self, text: str) -> datetime | None:
        stamp, _, rest = text.partition(" ")
        clock, _, zone = rest.partition(" ")
        try:
            naive = datetime.fromisoformat(f"{stamp} {clock}")
        except ValueError:
            return None
        return self._localize(naive, zone).astimezone(UTC)

    def _localize(self, naive: datetime, zone: str) -> datetime:
        m = _NUM_RE.match(zone)
        if m:
            return naive.replace(tzinfo=_offset(m))
        if zone in ("", "UTC", "GMT", "Z"):
            return naive.replace(tzinfo=self._zone if zone == "" and self._zone else UTC)
        if isinstance(self._zone, ZoneInfo):
            # the server's own zone: pick the side of a DST change whose abbreviation the line wrote
            for fold in (0, 1):
                aware = naive.replace(tzinfo=self._zone, fold=fold)
                if aware.tzname() == zone:
                    return aware
        hours = _ABBREVIATIONS.get(zone.upper())
        if hours is not None:
            return naive.replace(tzinfo=timezone(timedelta(hours=hours)))
        # an abbreviation we do not know: the server's zone if given, else UTC (RDS always logs UTC)
        return naive.replace(tzinfo=self._zone or UTC)
