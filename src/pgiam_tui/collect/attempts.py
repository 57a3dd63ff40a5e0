"""Connection attempts: the lines of one login joined into one `model.Attempt`, and AWS's reason on it.

One login writes several lines: `connection received` (client host and port), on PostgreSQL 14+ `connection
authenticated` (the method), then `connection authorized` (with the SSL details) or the refusal (RDS writes
`pam_authenticate failed` and a FATAL; PostgreSQL a FATAL, maybe a DETAIL), later `disconnection` (with the
session time). They share the backend's pid (and the client's host:port), so they are joined by pid per
instance; a new `connection received` on a pid starts a new attempt (pids are reused).

RDS's `iam-db-auth-error` log says why an IAM login was refused, without pid or client address: it is joined
to the failed IAM login of the same user and instance closest in time (within `join_window_s`), each AWS line
used at most once and each login given at most one line. The assignment is recomputed over everything
still held on every `add()`, greedily by time distance: the same lines give the same pairs whether they came
in one batch (`pgiam-tui events`, `snapshot`) or round by round (the console), and a line that arrives late
moves to the login it belongs to instead of leaving a wrong reason in place.

Forged lines (a user name with a line break can write text that looks like a new entry, see logparse.py)
are not counted: a line whose pid belongs to a session of another client address, or an outcome line for a
pid never received while this log is known to log every `connection received`, is set aside (`forged`).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pgiam_tui.collect.iam_log import IAM_KINDS, KIND_CODES, aws_words
from pgiam_tui.collect.logmessages import session_seconds
from pgiam_tui.model import Attempt, ConnEvent, EventKind, FailureCount, Outcome

__all__ = ["JOIN_WINDOW_S", "AttemptJoiner", "failure_counts", "join_attempts"]

#: How far apart (seconds) an iam-db-auth-error line and the PAM failure of the same login may be.
JOIN_WINDOW_S = 5.0
#: PostgreSQL's authentication_timeout (default 60 s): the longest a login may take after it was received.
SESSION_CHECK_S = 60.0

_LOGIN_KINDS = frozenset(
    {
        EventKind.RECEIVED,
        EventKind.AUTHENTICATED,
        EventKind.AUTHORIZED,
        EventKind.READY,
        EventKind.AUTH_FAILED,
        EventKind.REFUSED,
        EventKind.DISCONNECTED,
    }
)
_DECISIONS = frozenset({EventKind.AUTHORIZED, EventKind.AUTH_FAILED, EventKind.REFUSED, EventKind.READY})
_DETAIL_LEVELS = ("DETAIL:", "HINT:", "LOCATION:", "CONTEXT:")
_MIN = datetime.min.replace(tzinfo=UTC)
_Key = tuple[object, ...]


@dataclass(slots=True)
class _Login:
    """An attempt being built from its lines."""

    seq: int
    instance: str | None
    pid: int | None
    source: str
    time: datetime | None
    anchored: bool  # began with its `connection received` line
    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str | None = None
    outcome: Outcome | None = None
    decided_at: datetime | None = None
    fatal: bool = False
    method: str | None = None
    ssl: dict[str, object] | None = None
    message: str = ""
    session_s: float | None = None
    ended: bool = False
    last: datetime | None = None
    suspect: bool = False  # an outcome for a pid never received (see _logs_every_connection)
    decided_order: int = 0  # when its outcome line was read, among all logins (ties of decided_at)
    lines: list[str] = field(default_factory=list)


def _event_id(ev: ConnEvent) -> _Key:
    return (ev.source, ev.instance, ev.time, ev.kind, ev.pid, ev.raw or ev.message)


class AttemptJoiner:
    """Joins connection-log events (and iam-db-auth-error events) into attempts, incrementally.

    `add(events)` takes the events of one read (any order across reads; a log line seen before is ignored,
    AWS's lines are taken as given: identical ones are distinct refusals, and the sources never repeat one)
    and returns them with forged ones relabelled `other`; `attempts()` gives the attempts whose outcome is
    known, oldest first; `trim(horizon)` forgets what is older. The console's own events (source `client`) and
    actions are not log lines and are ignored.
    """

    def __init__(self, *, join_window_s: float = JOIN_WINDOW_S, max_attempts: int = 5000) -> None:
        self.join_window = timedelta(seconds=join_window_s)
        self.max_attempts = max_attempts
        self._logins: list[_Login] = []
        self._current: dict[_Key, _Login] = {}  # session key -> its latest login
        self._aws: list[ConnEvent] = []
        self._seen: set[_Key] = set()
        self._first_received: dict[str | None, datetime] = {}  # instance -> earliest `received` seen
        self._last_received: dict[str | None, datetime] = {}  # instance -> latest `received` seen
        self._seq = 0
        self._decisions = 0
        self._foreign = 0  # lines that claimed the session of another client

    # -- input ------------------------------------------------------------------------------------------

    def add(self, events: Iterable[ConnEvent]) -> list[ConnEvent]:
        """Feed EVENTS; returns them (new ones only) with lines found forged relabelled as kind `other`."""
        fresh = []
        for ev in events:
            if ev.kind in IAM_KINDS:
                # two refusals of one user in the same millisecond write identical AWS lines: both count
                fresh.append(ev)
                continue
            eid = _event_id(ev)
            if eid in self._seen:
                continue
            self._seen.add(eid)
            fresh.append(ev)
        # stable: lines of the same second keep the order the log wrote them in
        fresh.sort(key=lambda e: e.time or _MIN)
        out: list[ConnEvent] = []
        for ev in fresh:
            if ev.kind in IAM_KINDS:
                if ev.user is not None and ev.time is not None:
                    self._aws.append(ev)
            elif ev.kind in _LOGIN_KINDS and ev.source not in ("client", "console"):
                if not self._take(ev):
                    self._foreign += 1
                    ev = dataclasses.replace(ev, kind=EventKind.OTHER)
            elif ev.kind == EventKind.OTHER and ev.pid is not None and ev.message.startswith(_DETAIL_LEVELS):
                login = self._current.get(self._key(ev))
                if login is not None and login.outcome is not Outcome.OK:
                    login.lines.append(ev.raw or ev.message)
            out.append(ev)
        return out

    def _key(self, ev: ConnEvent) -> _Key:
        if ev.pid is not None:
            return (ev.instance, ev.pid)
        if ev.port is not None:
            return (ev.instance, "addr", ev.host, ev.port)
        stamp = ev.time.replace(microsecond=0) if ev.time else None
        return (ev.instance, "user", ev.user, stamp)

    def _take(self, ev: ConnEvent) -> bool:
        """Add one login line to its attempt; False when the line is forged (not counted)."""
        key = self._key(ev)
        login = self._current.get(key)
        if ev.kind == EventKind.RECEIVED:
            self._note_received(ev)
            if login is not None and _received_late(login, ev):
                # its other lines came first (CloudWatch may deliver out of order): this is where it began
                login.anchored, login.time, login.host, login.port = True, ev.time, ev.host, ev.port
                login.lines.insert(0, ev.raw or ev.message)
                return True
            login = self._start(ev, key, anchored=True)
            login.lines.append(ev.raw or ev.message)
            return True
        if login is not None and _other_client(login, ev):
            return False  # claims the session of another client address
        new_backend = login is not None and (
            login.ended
            or (login.fatal and ev.kind in _DECISIONS)
            or (login.outcome is Outcome.OK and ev.kind == EventKind.AUTHORIZED)
        )
        if login is None or new_backend:
            if ev.kind == EventKind.DISCONNECTED:
                return True  # a session that began before what was read: not an attempt seen
            login = self._start(ev, key, anchored=False)
            # an outcome for a session never received, in a log that logs every connection: held back
            login.suspect = ev.kind in _DECISIONS and self._logs_every_connection(ev)
        self._apply(login, ev)
        return True

    def _note_received(self, ev: ConnEvent) -> None:
        if ev.time is not None:
            first = self._first_received.get(ev.instance)
            if first is None or ev.time < first:
                self._first_received[ev.instance] = ev.time
            last = self._last_received.get(ev.instance)
            if last is None or ev.time > last:
                self._last_received[ev.instance] = ev.time

    def _logs_every_connection(self, ev: ConnEvent) -> bool:
        """Whether this log logged connections from long enough before EV that EV's must be there, and still
        does (a connection was received shortly before EV: log_connections was not switched off since)."""
        first = self._first_received.get(ev.instance)
        last = self._last_received.get(ev.instance)
        if first is None or last is None or ev.time is None or ev.pid is None:
            return False
        check = timedelta(seconds=SESSION_CHECK_S)
        return ev.time - first > check and ev.time - last <= check

    def _start(self, ev: ConnEvent, key: _Key, *, anchored: bool) -> _Login:
        self._seq += 1
        login = _Login(self._seq, ev.instance, ev.pid, ev.source, ev.time, anchored, ev.host, ev.port)
        login.last = ev.time
        self._logins.append(login)
        self._current[key] = login
        return login

    def _apply(self, login: _Login, ev: ConnEvent) -> None:
        login.lines.append(ev.raw or ev.message)
        login.last = ev.time or login.last
        login.host = login.host or ev.host
        login.port = login.port or ev.port
        # later lines name the user better (the FATAL's quoted name after the prefix's, the message's own)
        login.user = ev.user if ev.user is not None else login.user
        login.database = ev.database if ev.database is not None else login.database
        login.method = ev.method or login.method
        kind = ev.kind
        if kind in (EventKind.AUTHORIZED, EventKind.READY):
            if kind == EventKind.AUTHORIZED:
                login.ssl = ev.ssl
            if login.outcome is None:
                login.outcome, login.decided_at, login.message = Outcome.OK, ev.time, ev.message
        elif kind in (EventKind.AUTH_FAILED, EventKind.REFUSED):
            is_fatal = ev.message.startswith("FATAL")
            if login.outcome is None or login.outcome is Outcome.OK:
                login.outcome = Outcome.FAILED if kind == EventKind.AUTH_FAILED else Outcome.REFUSED
                login.decided_at, login.message = ev.time, ev.message
                self._decisions += 1
                login.decided_order = self._decisions
            elif is_fatal and not login.fatal:
                login.message = ev.message  # the FATAL after RDS's `pam_authenticate failed` reads best
            login.fatal = login.fatal or is_fatal
        elif kind == EventKind.DISCONNECTED:
            login.session_s = session_seconds(ev.session_time)
            login.ended = True

    # -- output -----------------------------------------------------------------------------------------

    @property
    def forged(self) -> int:
        """Lines not counted as logins: they claimed another client's session, or one never received."""
        return self._foreign + sum(1 for x in self._logins if x.suspect and not x.anchored)

    def trim(self, horizon: datetime) -> None:
        """Forget attempts and AWS lines last seen before HORIZON (and the oldest past the cap)."""
        keep = [x for x in self._logins if x.last is None or x.last >= horizon]
        if len(keep) > self.max_attempts:
            keep = keep[-self.max_attempts :]
        self._logins = keep
        alive = {id(x) for x in keep}
        self._current = {k: v for k, v in self._current.items() if id(v) in alive}
        self._aws = [e for e in self._aws if e.time is not None and e.time >= horizon]
        self._seen = {k for k in self._seen if not isinstance(k[2], datetime) or k[2] >= horizon}

    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt whose outcome is known, oldest first, with AWS's reason where one was joined."""
        reasons = self._assign()
        out = []
        for login in self._logins:
            if login.outcome is None or (login.suspect and not login.anchored):
                continue
            out.append(_attempt(login, reasons.get(login.seq)))
        out.sort(key=lambda a: a.time or _MIN)
        return tuple(out)

    def _assign(self) -> dict[int, ConnEvent]:
        """login seq -> its AWS line: closest pairs first, each line and each login used once."""
        by_user: dict[str, list[tuple[datetime, int, _Login]]] = {}
        for login in self._logins:
            if login.outcome is Outcome.FAILED and login.method in ("pam", "iam") and login.user is not None:
                when = login.decided_at or login.time
                if when is not None:
                    by_user.setdefault(login.user, []).append((when, login.seq, login))
        for lst in by_user.values():
            lst.sort(key=lambda item: (item[0], item[1]))
        pairs: list[tuple[float, datetime, int, int, _Login]] = []
        for index, aws in enumerate(self._aws):
            assert aws.time is not None and aws.user is not None
            cands = by_user.get(aws.user, [])
            lo = bisect.bisect_left(cands, aws.time - self.join_window, key=lambda item: item[0])
            for when, seq, login in cands[lo:]:
                if when > aws.time + self.join_window:
                    break
                if login.instance is not None and aws.instance is not None and login.instance != aws.instance:
                    continue
                pairs.append((abs((aws.time - when).total_seconds()), aws.time, index, seq, login))
        pairs.sort(key=lambda p: (p[0], p[1], p[3]))
        used_lines: set[int] = set()
        matched: dict[int, tuple[_Login, int]] = {}
        for _, _, index, seq, login in pairs:
            if index in used_lines or seq in matched:
                continue
            used_lines.add(index)
            matched[seq] = (login, index)
        return self._uncross(matched)

    def _uncross(self, matched: dict[int, tuple[_Login, int]]) -> dict[int, ConnEvent]:
        """The matched logins and lines of each user and instance re-paired in time order: RDS writes a
        login's AWS line and its PAM lines together, so two logins a millisecond apart keep their order
        even when time stamps rounded to the millisecond make the closest pair the crossed one."""
        groups: dict[tuple[object, ...], list[tuple[_Login, int]]] = {}
        for login, index in matched.values():
            groups.setdefault((login.user, login.instance), []).append((login, index))
        chosen: dict[int, ConnEvent] = {}
        for members in groups.values():
            # same millisecond: the order the log wrote them in (its refusal lines, AWS's lines) decides
            logins = sorted(
                (x[0] for x in members), key=lambda x: (x.decided_at or x.time or _MIN, x.decided_order)
            )
            lines = sorted((x[1] for x in members), key=lambda i: (self._aws[i].time or _MIN, i))
            for login, index in zip(logins, lines, strict=True):
                chosen[login.seq] = self._aws[index]
        return chosen


def _received_late(login: _Login, ev: ConnEvent) -> bool:
    """Whether EV (a `connection received`) is the earlier start of LOGIN, read after its other lines."""
    if login.anchored or login.time is None or ev.time is None or ev.time > login.time:
        return False
    return login.host is None or ev.host is None or (login.host, login.port) == (ev.host, ev.port)


def _other_client(login: _Login, ev: ConnEvent) -> bool:
    """Whether EV names a client address other than the one its session was received from."""
    if login.host is None or ev.host is None or ev.kind == EventKind.RECEIVED:
        return False
    return login.host != ev.host or (login.port is not None and ev.port is not None and login.port != ev.port)


def _attempt(login: _Login, aws: ConnEvent | None) -> Attempt:
    # On RDS and Aurora, PAM is how IAM database authentication reaches PostgreSQL: a PAM login is an IAM one.
    method = "iam" if login.method == "pam" or aws is not None else login.method
    lines = list(login.lines)
    if aws is not None:
        lines.append(aws.raw or aws.message)
    assert login.outcome is not None
    return Attempt(
        time=login.time,
        outcome=login.outcome,
        user=login.user,
        database=login.database,
        host=login.host,
        port=login.port,
        pid=login.pid,
        method=method,
        ssl=dict(login.ssl) if login.ssl is not None else None,
        aws_code=KIND_CODES.get(aws.kind) if aws is not None else None,
        aws_reason=aws_words(aws.message) if aws is not None else None,
        caller_arn=aws.caller_arn if aws is not None else None,
        message=login.message,
        session_s=login.session_s,
        instance=login.instance,
        source=login.source,
        lines=tuple(lines),
    )


def join_attempts(events: Iterable[ConnEvent]) -> tuple[Attempt, ...]:
    """The attempts of EVENTS in one go (what `pgiam-tui events` and tests use)."""
    joiner = AttemptJoiner()
    joiner.add(events)
    return joiner.attempts()


def failure_counts(
    attempts: Iterable[Attempt], *, now: datetime | None = None, window_s: float = 900.0
) -> tuple[FailureCount, ...]:
    """Failed logins (`Attempt.failed`) per (user, client host) over the last `window_s` seconds.

    Sorted by count, descending. This is the one count of failed logins: the cluster list, the events
    footer and `snapshot` all show it.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=window_s)
    counts: dict[tuple[str | None, str | None], int] = {}
    last: dict[tuple[str | None, str | None], datetime] = {}
    for a in attempts:
        if not a.failed or a.time is None or a.time < since:
            continue
        key = (a.user, a.host)
        counts[key] = counts.get(key, 0) + 1
        if key not in last or a.time > last[key]:
            last[key] = a.time
    rows = [FailureCount(user=k[0], host=k[1], count=n, last=last.get(k)) for k, n in counts.items()]
    rows.sort(key=lambda r: (-r.count, r.user or "", r.host or ""))
    return tuple(rows)
