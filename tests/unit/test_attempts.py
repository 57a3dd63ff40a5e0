"""Joining the lines of one login into an attempt, AWS's reason on the right one, forged lines not counted.

Lines are written as RDS writes them (`%t:%r:%u@%d:[%p]:`, the messages of the AWS blog scenario and of
AWS's iam-db-auth-error documentation); each test builds a log, then reads it in one batch and in rounds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pgiam_tui.collect.attempts import AttemptJoiner, failure_counts, join_attempts
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.logparse import LogLineParser
from pgiam_tui.model import ConnEvent, Outcome

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CODES = {
    "InvalidToken": (400, "the provided token is malformed or otherwise invalid"),
    "ExpiredToken": (400, "the provided token has expired"),
    "NotAuthorized": (403, "the IAM policy assumed by the caller 'arn:aws:sts::1:assumed-role/r/s' is not "
                      "authorized to perform `rds-db:connect` on the DB instance"),
}  # fmt: skip


def _rds(when: datetime, port: int, user: str, pid: int, message: str) -> str:
    stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp}:10.0.0.9({port}):{user}@demo:[{pid}]:{message}"


def _aws(when: datetime, user: str, code: str) -> str:
    status, words = CODES[code]
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f",{when.microsecond // 1000:03d}"
    return (
        f"{stamp} [ERROR] Failed to authenticate the connection request for user '{user}' because {words}. "
        f"(Status Code: {status}, Error Code: {code})"
    )


def _refused_login(when: datetime, port: int, pid: int, code: str) -> tuple[list[ConnEvent], ConnEvent]:
    """The three RDS lines of a refused IAM login (CloudWatch's ms timestamps) and AWS's line."""
    parser = LogLineParser()
    lines = [
        (_rds(when, port, "[unknown]", pid, f"LOG:  connection received: host=10.0.0.9 port={port}"), when),
        (_rds(when, port, "app", pid, "LOG:  pam_authenticate failed: Permission denied"), when),
        (_rds(when, port, "app", pid, 'FATAL:  PAM authentication failed for user "app"'), when),
    ]
    events = [parser.parse(text, instance="db-1", fallback_time=at) for text, at in lines]
    aws = parse_iam_line(_aws(when + timedelta(milliseconds=3), "app", code), instance="db-1")
    return events, aws


def _burst(n: int, seed: int) -> tuple[list[tuple[list[ConnEvent], ConnEvent]], dict[int, str]]:
    rng = random.Random(seed)
    logins, truth = [], {}
    when = T0
    for i in range(n):
        when += timedelta(milliseconds=rng.choice([40, 300, 900, 1700, 4000]))
        code = rng.choice(list(CODES))
        port = 40000 + i
        truth[port] = code
        logins.append(_refused_login(when, port, 5000 + i, code))
    return logins, truth


def _codes(attempts: tuple[object, ...]) -> dict[int, str | None]:
    return {a.port: a.aws_code for a in attempts}  # type: ignore[attr-defined]


def test_a_refused_iam_login_is_one_attempt_with_awss_reason() -> None:
    events, aws = _refused_login(T0, 41000, 77, "NotAuthorized")
    (attempt,) = join_attempts([*events, aws])
    assert (attempt.outcome, attempt.user, attempt.host, attempt.port, attempt.pid) == (
        Outcome.FAILED, "app", "10.0.0.9", 41000, 77)  # fmt: skip
    assert (attempt.method, attempt.aws_code) == ("iam", "NotAuthorized")
    assert attempt.caller_arn == "arn:aws:sts::1:assumed-role/r/s"
    assert len(attempt.lines) == 4 and attempt.message.startswith("FATAL:  PAM authentication failed")


def test_round_by_round_equals_one_batch_and_every_reason_is_right() -> None:
    logins, truth = _burst(120, seed=7)
    batch = join_attempts([e for evs, aws in logins for e in (*evs, aws)])
    assert _codes(batch) == truth
    # live: each round brings some logins, and AWS's lines arrive one or two rounds late
    rng = random.Random(11)
    joiner = AttemptJoiner()
    late: list[ConnEvent] = []
    for evs, aws in logins:
        joiner.add([*evs, *late])
        late = [aws] if rng.random() < 0.5 else [*late, aws]
        joiner.attempts()  # a round renders what it has
    joiner.add(late)
    assert _codes(joiner.attempts()) == truth


def test_a_reason_already_used_is_not_paired_again_in_a_later_round() -> None:
    # round 1: login A and AWS's line for A; round 2: login B, whose own line has not arrived yet
    (a_events, a_aws), (b_events, b_aws) = (
        _refused_login(T0, 41000, 1, "ExpiredToken"),
        _refused_login(T0 + timedelta(seconds=2), 41001, 2, "InvalidToken"),
    )
    joiner = AttemptJoiner()
    joiner.add([*a_events, a_aws])
    joiner.add(b_events)
    assert _codes(joiner.attempts()) == {41000: "ExpiredToken", 41001: None}
    joiner.add([b_aws])
    assert _codes(joiner.attempts()) == {41000: "ExpiredToken", 41001: "InvalidToken"}


def test_authorized_then_refused_is_refused_and_failed_logins_have_one_count() -> None:
    # PostgreSQL logs `connection authorized` before it checks rolcanlogin (utils/init/postinit.c)
    parser = LogLineParser()
    lines = [
        _rds(T0, 42000, "[unknown]", 9, "LOG:  connection received: host=10.0.0.9 port=42000"),
        _rds(T0, 42000, "nologin", 9, "LOG:  connection authorized: user=nologin database=demo"),
        _rds(T0, 42000, "nologin", 9, 'FATAL:  role "nologin" is not permitted to log in'),
        _rds(T0, 42001, "[unknown]", 10, "LOG:  connection received: host=10.0.0.9 port=42001"),
        _rds(T0, 42001, "app", 10, "LOG:  connection authorized: user=app database=demo"),
    ]
    attempts = join_attempts(parser.parse_lines(lines))
    assert [a.outcome for a in attempts] == [Outcome.REFUSED, Outcome.OK]
    counts = failure_counts(attempts, now=T0)
    assert [(c.user, c.count) for c in counts] == [("nologin", 1)]


def test_forged_line_claiming_another_clients_session_is_not_counted() -> None:
    # The client (10.0.0.9:43001, pid 13) sent a user name holding a line break and a whole fake entry: the
    # first line claims pid 12 (received from port 43000), the second pid 13 for 6.6.6.6.
    parser = LogLineParser()
    evil = (
        'x@demo:[12]:FATAL:  PAM authentication failed for user "root"\n'
        "2026-03-01 12:00:00 UTC:6.6.6.6(4444):root"
    )
    lines = [
        _rds(T0, 43000, "[unknown]", 12, "LOG:  connection received: host=10.0.0.9 port=43000"),
        _rds(T0, 43000, "[unknown]", 13, "LOG:  connection received: host=10.0.0.9 port=43001"),
        f"2026-03-01 12:00:00 UTC:10.0.0.9(43001):{evil}@demo:[13]:FATAL:  PAM authentication failed for "
        'user "x"',
    ]
    joiner = AttemptJoiner()
    checked = joiner.add(parser.parse_lines("\n".join(lines).split("\n")))
    attempts = joiner.attempts()
    assert not any(a.host == "6.6.6.6" or a.user == "root" for a in attempts)
    assert joiner.forged >= 1
    assert all(e.user != "root" or e.kind == "other" for e in checked)


def test_outcome_for_a_session_never_received_is_not_counted() -> None:
    parser = LogLineParser()
    early = T0 - timedelta(minutes=5)
    lines = [
        _rds(early, 44000, "[unknown]", 20, "LOG:  connection received: host=10.0.0.9 port=44000"),
        _rds(early, 44000, "app", 20, "LOG:  connection authorized: user=app database=demo"),
        # the client's own connection (pid 98), then a FATAL for pid 99, never received, in a log that has
        # logged every connection for five minutes
        _rds(T0, 44998, "[unknown]", 98, "LOG:  connection received: host=10.0.0.9 port=44998"),
        _rds(T0, 44999, "root", 99, 'FATAL:  PAM authentication failed for user "root"'),
    ]
    joiner = AttemptJoiner()
    joiner.add(parser.parse_lines(lines))
    assert [a.user for a in joiner.attempts()] == ["app"]
    assert joiner.forged == 1
