"""Parse PostgreSQL log entries (RDS format or any `log_line_prefix`) into `model.ConnEvent`.

RDS and Aurora write every line with the fixed prefix `%t:%r:%u@%d:[%p]:`, e.g.

    2019-09-29 10:13:24 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):pgmonitor@pgbench:[29443]:LOG:  \
    pam_authenticate failed: Permission denied

Self-managed servers use whatever `log_line_prefix` says; `LogLineParser(prefix)` compiles it once
(collect/logprefix.py). The messages are read by collect/logmessages.py. All three `log_error_verbosity`
levels are understood (verbose writes `FATAL:  28000: …` and a `LOCATION:` line).

An entry can span lines. PostgreSQL puts a tab after every line break inside a message, but writes the
prefix's fields (`%u`, `%d`) as the client sent them: a user name holding a line break starts a line of its
own that only *looks* like a new entry. `entries()` joins such a line back onto the fragment before it (the
fragment does not parse on its own; the two together do), so a forged line can never be read as a login of
its own. Log text is untrusted: a line that does not fit is kept as kind `other`; parsing never raises.
Text is kept as the server wrote it; every output escapes it once (`pgiam_tui.textsafe`).

Speed matters (a busy server logs thousands of connections a minute), so the hot path is one regex match,
a cached timestamp and a few `str` prefix tests.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from pgiam_tui.collect.logmessages import classify
from pgiam_tui.collect.logprefix import GROUPS, CompiledPrefix, PrefixError, TimeParser, compile_prefix
from pgiam_tui.model import ConnEvent, EventKind

__all__ = [
    "RDS_PREFIX",
    "LogEntry",
    "LogLineParser",
    "PrefixError",
    "compile_prefix",
    "parse_line",
    "split_user_db",
]

RDS_PREFIX = "%t:%r:%u@%d:[%p]:"
_UNKNOWN = {"", "[unknown]", "[local]"}
_ONE_SECOND = timedelta(seconds=1)


def _name(text: str | None) -> str | None:
    """A user, database or host name as written, None for PostgreSQL's placeholders."""
    if text is None or text in _UNKNOWN:
        return None
    return text


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log entry as read: its text (lines joined by LF), the source's timestamp, instance and source."""

    text: str
    time: datetime | None
    instance: str | None
    source: str


def split_user_db(
    combined: str,
    separator: str,
    *,
    user_first: bool = True,
    user_hint: str | None = None,
    db_hint: str | None = None,
    known_databases: Collection[str] = (),
) -> tuple[str, str]:
    """Split `%u<sep>%d` text where either name may contain the separator.

    The message's own fields decide first (`user=`/`database=`, `for user "…"`), then a database name the
    collector knows; else the last separator is taken (e-mail-style user names hold `@`; database names
    rarely do).
    """
    cuts = [i for i in range(len(combined)) if combined.startswith(separator, i)]
    options = []
    for i in cuts:
        a, b = combined[:i], combined[i + len(separator) :]
        options.append((a, b) if user_first else (b, a))
    if not options:
        return combined, ""
    for user, db in options:
        if user_hint is not None and user == user_hint and (db_hint is None or db == db_hint):
            return user, db
    for user, db in options:
        if db_hint is not None and db == db_hint:
            return user, db
    for user, db in reversed(options):
        if db in known_databases:
            return user, db
    return options[-1] if user_first else options[0]


class LogLineParser:
    """Parse entries written with one `log_line_prefix` (default: RDS's `%t:%r:%u@%d:[%p]:`).

    `parse(text)` never raises and always returns a ConnEvent (kind `other` when the entry does not fit).
    `log_timezone`: the server's zone, when known (decides what `CET` or `EST` in a timestamp means).
    `known_databases`: database names that resolve a `%u@%d` ambiguity (names seen in `database=` fields are
    added as they are read). A bad prefix raises PrefixError at construction.
    """

    def __init__(
        self,
        prefix: str = RDS_PREFIX,
        *,
        source: str = "cloudwatch",
        instance: str | None = None,
        log_timezone: tzinfo | None = None,
        known_databases: Iterable[str] = (),
    ) -> None:
        self.prefix = prefix
        self.source = source
        self.instance = instance
        self._compiled: CompiledPrefix = compile_prefix(prefix)
        self._re = self._compiled.regex
        self._times = TimeParser(log_timezone)
        self.known_databases: set[str] = set(known_databases)

    def parse(
        self,
        line: str,
        *,
        source: str | None = None,
        instance: str | None = None,
        fallback_time: datetime | None = None,
    ) -> ConnEvent:
        """One entry (one line, or several joined by LF) -> ConnEvent.

        `fallback_time` (e.g. CloudWatch's event timestamp) is used when the entry carries no parseable time,
        and to add the milliseconds a `%t` timestamp lacks when it falls within the same second.
        """
        src = source or self.source
        inst = instance if instance is not None else self.instance
        if line[-1:] == "\n":
            line = line.rstrip("\r\n")
        try:
            return self._parse(line, src, inst, fallback_time)
        except Exception:  # the contract is "never raises"; a parser bug must not stop collection
            return ConnEvent(
                fallback_time, EventKind.OTHER, source=src, message=line, instance=inst, raw=line
            )

    def matches(self, text: str) -> bool:
        """Whether TEXT starts an entry of this prefix."""
        return self._re.match(text) is not None

    def entries(self, lines: Iterable[LogEntry]) -> Iterator[LogEntry]:
        """Physical lines -> log entries (per instance, in order).

        A line starting with a tab continues the entry before it (PostgreSQL's continuation lines). A line
        that does not parse starts a pending fragment; when the next line parses and the two together parse
        as one entry, they are one entry (a user name with a line break, however the rest of it looks).
        """
        # instance -> (the lines of the entry being built, whether they parse as an entry so far)
        pending: dict[str | None, tuple[list[LogEntry], bool]] = {}
        for line in lines:
            text = line.text.rstrip("\r\n")
            if not text or text.isspace():
                continue
            line = LogEntry(text, line.time, line.instance, line.source)
            held = pending.get(line.instance)
            if held is not None and text.startswith("\t"):
                held[0].append(line)
                continue
            if held is not None and not held[1]:
                # the entry so far is a fragment: it may only be complete with this line
                merged = [*held[0], line]
                if self.matches(_join(merged)):
                    pending[line.instance] = (merged, True)
                    continue
            if held is not None:
                yield _entry(held[0])
            pending[line.instance] = ([line], self.matches(text))
        for held_lines, _ in pending.values():
            yield _entry(held_lines)

    def parse_lines(
        self, lines: Iterable[str], *, source: str | None = None, instance: str | None = None
    ) -> Iterator[ConnEvent]:
        """Parse the lines of one log (multi-line entries joined; blank lines skipped)."""
        src = source or self.source
        raw = (LogEntry(text, None, instance, src) for text in lines)
        for entry in self.entries(raw):
            yield self.parse(entry.text, source=entry.source, instance=entry.instance)

    def _time(self, ts: str | None, epoch: str | None, fallback: datetime | None) -> datetime | None:
        when: datetime | None = None
        if ts is not None:
            when = self._times.get(ts)
        elif epoch is not None:
            try:
                when = datetime.fromtimestamp(float(epoch), UTC)
            except (ValueError, OverflowError, OSError):
                when = None
        if when is None:
            return fallback
        # `%t` has whole seconds; the source's own time (CloudWatch, ms) in that same second is finer
        if fallback is not None and when.microsecond == 0 and when <= fallback < when + _ONE_SECOND:
            return fallback
        return when

    def _parse(self, line: str, src: str, inst: str | None, fallback: datetime | None) -> ConnEvent:
        raw = line
        m = self._re.match(line)
        if m is None:
            return ConnEvent(fallback, EventKind.OTHER, source=src, message=raw, instance=inst, raw=raw)
        ts, epoch, user, db, ud, rhost, rport, rhost2, host, pid_s, ecode = m.group(*GROUPS)
        level, msg, sqlstate = m.group("level"), m.group("msg"), m.group("sqlstate") or ecode
        when = self._time(ts, epoch, fallback)
        # continuation lines: PostgreSQL put a tab after each line break of the message
        text = msg.replace("\n\t", "\n")
        facts = classify(level, text)
        if ud is not None and self._compiled.ud_separator is not None:
            user, db = split_user_db(
                ud,
                self._compiled.ud_separator,
                user_first=self._compiled.ud_user_first,
                user_hint=facts.user,
                db_hint=facts.database,
                known_databases=self.known_databases,
            )
        if facts.database and len(self.known_databases) < 1000:
            self.known_databases.add(facts.database)
        # the message's own fields name the user and database (a prefix field may be cut by a separator)
        user = facts.user if facts.user is not None else user
        db = facts.database if facts.database is not None else db
        host = facts.host or rhost or rhost2 or host or None
        port = facts.port or (int(rport) if rport else None)
        return ConnEvent(
            when,
            facts.kind,
            _name(user),
            _name(db),
            _name(host),
            port,
            int(pid_s) if pid_s else None,
            facts.ssl,
            src,
            f"{level}:  {text}",
            inst,
            None,
            None,
            facts.session_time,
            raw,
            facts.method,
            sqlstate,
        )


def _join(lines: list[LogEntry]) -> str:
    return "\n".join(x.text for x in lines)


def _entry(lines: list[LogEntry]) -> LogEntry:
    first = lines[0]
    return LogEntry(_join(lines), first.time, first.instance, first.source)


def parse_line(line: str, *, source: str = "cloudwatch", instance: str | None = None) -> ConnEvent:
    """Parse one RDS-format entry with a fresh default parser (convenience for tests and one-offs)."""
    return LogLineParser().parse(line, source=source, instance=instance)
