"""AWS's reasons for IAM login failures (the `iam-db-auth-error` log export), joined onto PAM failure lines.

With the `iam-db-auth-error` export on, RDS writes one line per refused IAM login to CloudWatch group
`/aws/rds/cluster/ID/iam-db-auth-error` (or `/aws/rds/instance/ID/...`), e.g.

    2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' because
    the provided token is malformed or otherwise invalid. (Status Code: 400, Error Code: InvalidToken)

The client only ever sees `PAM authentication failed`; this line says why. `join_iam_reasons` pins each such
line to the PAM failure of the same user at (about) the same time, so the events pane can show the reason on
the failure itself. `failure_counts` summarises failures per user and source host.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from pgiam_tui.model import ConnEvent, EventKind, FailureCount

__all__ = [
    "IAM_CODE_KINDS",
    "IAM_KINDS",
    "failure_counts",
    "join_iam_reasons",
    "parse_iam_line",
]

#: AWS error code -> event kind (the five codes AWS documents for IAM database authentication).
IAM_CODE_KINDS: dict[str, EventKind] = {
    "InvalidToken": "iam_invalid_token",
    "ExpiredToken": "iam_expired_token",
    "NotAuthorized": "iam_not_authorized",
    "ThrottlingException": "iam_throttled",
    "InternalError": "iam_internal_error",
}
IAM_KINDS: frozenset[str] = frozenset(IAM_CODE_KINDS.values())

# Short, operator-facing reasons: what the code means and what usually causes it.
_REASONS: dict[str, str] = {
    "InvalidToken": "token malformed or invalid (signed for another host, port, region or user?)",
    "ExpiredToken": "token older than 15 minutes (reuse of an old token on reconnect, or clock skew)",
    "NotAuthorized": "IAM policy of the caller does not allow rds-db:connect on this user's ARN",
    "ThrottlingException": "too many new IAM connections per second on this instance",
    "InternalError": "internal error of the IAM auth service at RDS (retry)",
}

_CODE_RE = re.compile(r"Error Code:\s*(?P<code>\w+)")
_STATUS_RE = re.compile(r"Status Code:\s*(?P<status>\d{3})")
_USER_RE = re.compile(r"for user\s+(?:'(?P<q>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<bare>\S+))")
_CALLER_RE = re.compile(r"caller\s+'(?P<arn>[^']*)'")
_TIME_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:[,.](?P<frac>\d{1,6}))?(?P<tz>Z|[+-]\d\d:?\d\d)?"
)

#: How far apart (seconds) an iam-db-auth-error line and the PAM failure of the same login may be.
JOIN_WINDOW_S = 5.0


def _time(line: str) -> datetime | None:
    m = _TIME_RE.match(line)
    if m is None:
        return None
    try:
        naive = datetime.fromisoformat(m.group("ts").replace(" ", "T"))
    except ValueError:
        return None
    frac = m.group("frac")
    if frac:
        naive = naive.replace(microsecond=int(frac.ljust(6, "0")))
    tz = m.group("tz")
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return (naive - sign * offset).replace(tzinfo=UTC)
    # RDS writes these lines in UTC without a zone
    return naive.replace(tzinfo=UTC)


def parse_iam_line(
    line: str, *, fallback_time: datetime | None = None, instance: str | None = None
) -> ConnEvent:
    """One iam-db-auth-error line -> ConnEvent of kind iam_* (or `other` when no known error code is found).

    `iam_reason` carries "CODE: short explanation"; `caller_arn` is set for NotAuthorized. Never raises.
    """
    text = line.rstrip("\r\n")
    try:
        return _parse_iam(text, fallback_time, instance)
    except Exception:  # log text is untrusted; a line we cannot read is kept, never raised
        return ConnEvent(time=fallback_time, kind="other", source="iam_log", message=text, instance=instance)


def _parse_iam(text: str, fallback_time: datetime | None, instance: str | None) -> ConnEvent:
    when = _time(text) or fallback_time
    cm = _CODE_RE.search(text)
    code = cm.group("code") if cm else None
    kind: EventKind = IAM_CODE_KINDS.get(code or "", "other")
    um = _USER_RE.search(text)
    user = None
    if um is not None:
        user = um.group("q") if um.group("q") is not None else um.group("dq") or um.group("bare")
    am = _CALLER_RE.search(text)
    caller = am.group("arn").replace(" ", "") if am else None
    reason = f"{code}: {_REASONS[code]}" if code in _REASONS else None
    return ConnEvent(
        time=when,
        kind=kind,
        user=user,
        source="iam_log",
        message=text,
        instance=instance,
        iam_reason=reason,
        caller_arn=caller,
    )


def _attempt_key(ev: ConnEvent, index: int) -> tuple[object, ...]:
    # One failed login writes two lines (pam_authenticate failed + FATAL) with the same pid: one attempt.
    if ev.pid is not None:
        return (ev.instance, ev.pid, ev.user)
    return ("#", index)


def join_iam_reasons(events: Sequence[ConnEvent], *, window_s: float = JOIN_WINDOW_S) -> list[ConnEvent]:
    """Copy AWS's reason (and caller ARN) onto the auth_failed events of the same user and time.

    Each iam_* event is matched to at most one failed login attempt (same user, same instance when both name
    one, within `window_s`; in time order, the earliest attempt not yet matched) and every auth_failed line
    of that attempt gets `iam_reason`/`caller_arn`. Attempts that already carry a reason keep it. Returns a
    new list in the same order; the iam_* events themselves are kept.
    """
    attempts: dict[tuple[object, ...], list[int]] = {}
    for i, ev in enumerate(events):
        if ev.kind == "auth_failed" and ev.time is not None and ev.user is not None and ev.source != "client":
            attempts.setdefault(_attempt_key(ev, i), []).append(i)
    if not attempts:
        return list(events)
    # attempt -> (user, instance, time of its first line, already joined?)
    info = {
        key: (
            events[idx[0]].user,
            events[idx[0]].instance,
            min(t for j in idx if (t := events[j].time) is not None),
            any(events[j].iam_reason for j in idx),
        )
        for key, idx in attempts.items()
    }
    taken = {key for key, (_, _, _, joined) in info.items() if joined}
    out = list(events)
    iam = sorted(
        (ev for ev in events if ev.kind in IAM_KINDS and ev.time is not None and ev.user is not None),
        key=lambda e: e.time,  # type: ignore[arg-type, return-value]
    )
    window = timedelta(seconds=window_s)
    # per user, attempts sorted by time: each AWS line then looks only at its user's attempts in the window
    by_user: dict[str | None, list[tuple[datetime, tuple[object, ...]]]] = {}
    for key, (user, _, when, _) in info.items():
        by_user.setdefault(user, []).append((when, key))
    for lst in by_user.values():
        lst.sort(key=lambda item: item[0])
    for iev in iam:
        # In time order, each AWS line takes the earliest attempt still free within the window: in a burst of
        # failures of one user, lines and attempts then pair up in order instead of crossing over.
        assert iev.time is not None
        cands = by_user.get(iev.user, [])
        best: tuple[datetime, tuple[object, ...]] | None = None
        for when, key in cands[bisect.bisect_left(cands, iev.time - window, key=lambda item: item[0]) :]:
            if when > iev.time + window:
                break
            inst = info[key][1]
            if key in taken or (inst is not None and iev.instance is not None and inst != iev.instance):
                continue
            best = (when, key)
            break
        if best is None:
            continue
        taken.add(best[1])
        for j in attempts[best[1]]:
            out[j] = dataclasses.replace(out[j], iam_reason=iev.iam_reason, caller_arn=iev.caller_arn)
    return out


def failure_counts(
    events: Iterable[ConnEvent], *, now: datetime | None = None, window_s: float = 900.0
) -> tuple[FailureCount, ...]:
    """Failed logins per (user, source host) over the last `window_s` seconds (default 15 minutes).

    A login that wrote two failure lines (pam_authenticate + FATAL) counts once. Sorted by count, descending.
    The console's own attempts (source "client") are not counted: the server's lines already count them.
    """
    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=window_s)
    seen: dict[tuple[str | None, str | None], set[tuple[object, ...]]] = {}
    last: dict[tuple[str | None, str | None], datetime] = {}
    for i, ev in enumerate(events):
        if ev.kind != "auth_failed" or ev.source == "client" or ev.time is None or ev.time < since:
            continue
        key = (ev.user, ev.host)
        seen.setdefault(key, set()).add(_attempt_key(ev, i))
        if key not in last or ev.time > last[key]:
            last[key] = ev.time
    rows = [FailureCount(user=k[0], host=k[1], count=len(v), last=last.get(k)) for k, v in seen.items()]
    rows.sort(key=lambda r: (-r.count, r.user or "", r.host or ""))
    return tuple(rows)
