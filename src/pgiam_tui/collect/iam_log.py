"""AWS's reasons for IAM login failures (the `iam-db-auth-error` log export), joined onto PAM failure lines.

With the `iam-db-auth-error` export on, RDS writes one line per refused IAM login to CloudWatch group
`/aws/rds/cluster/ID/iam-db-auth-error` (or `/aws/rds/instance/ID/...`), e.g.

    2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' because
    the provided token is malformed or otherwise invalid. (Status Code: 400, Error Code: InvalidToken)

The client only ever sees `PAM authentication failed`; this line says why. collect/attempts.py joins each
such line to the one failed login it belongs to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pgiam_tui.model import ConnEvent, EventKind

__all__ = ["IAM_CODE_KINDS", "IAM_KINDS", "KIND_CODES", "aws_words", "parse_iam_line"]

#: AWS error code -> event kind (the five codes AWS documents for IAM database authentication).
IAM_CODE_KINDS: dict[str, EventKind] = {
    "InvalidToken": EventKind.IAM_INVALID_TOKEN,
    "ExpiredToken": EventKind.IAM_EXPIRED_TOKEN,
    "NotAuthorized": EventKind.IAM_NOT_AUTHORIZED,
    "ThrottlingException": EventKind.IAM_THROTTLED,
    "InternalError": EventKind.IAM_INTERNAL_ERROR,
}
#: event kind -> AWS error code
KIND_CODES: dict[str, str] = {kind.value: code for code, kind in IAM_CODE_KINDS.items()}
IAM_KINDS: frozenset[str] = frozenset(KIND_CODES)

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
_USER_RE = re.compile(
    r"for user\s+(?:'(?P<q>.*?)'(?= because)|'(?P<q2>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<bare>\S+))"
)
_CALLER_RE = re.compile(r"caller\s+'(?P<arn>[^']*)'")
_BECAUSE_RE = re.compile(r"\bbecause (?P<words>.*?)\.?\s*\(Status Code", re.DOTALL)
_TIME_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:[,.](?P<frac>\d{1,6}))?(?P<tz>Z|[+-]\d\d:?\d\d)?"
)


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
        return ConnEvent(
            time=fallback_time,
            kind=EventKind.OTHER,
            source="iam_log",
            message=text,
            instance=instance,
            raw=text,
        )


def aws_words(message: str) -> str | None:
    """AWS's own reason in an iam-db-auth-error line (the words after "because")."""
    m = _BECAUSE_RE.search(message)
    return m.group("words").strip() if m else None


def _parse_iam(text: str, fallback_time: datetime | None, instance: str | None) -> ConnEvent:
    when = _time(text) or fallback_time
    cm = _CODE_RE.search(text)
    code = cm.group("code") if cm else None
    kind = IAM_CODE_KINDS.get(code or "", EventKind.OTHER)
    um = _USER_RE.search(text)
    user = None
    if um is not None:
        user = next((g for g in um.group("q", "q2", "dq", "bare") if g is not None), None)
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
        raw=text,
        method="iam",
    )
