"""Parser throughput: RDS-format connection log lines per second (aim: over 100,000 lines/s).

Run: .venv/bin/python bench/bench_parser.py [--lines N]
Prints a markdown fragment (bench/run_all.py collects it into docs/BENCHMARKS.md): the connection-log parser,
the iam-db-auth-error parser, and joining AWS's reasons onto the PAM failures. Best of 3 runs each, so a
busy machine skews the figures less.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pgiam_tui.collect.attempts import join_attempts
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.logparse import LogLineParser
from pgiam_tui.model import ConnEvent

_H = "{ts} UTC:10.0.{a}.{b}({port})"
_SAMPLES = (
    _H + ":[unknown]@[unknown]:[{pid}]:LOG:  connection received: host=10.0.{a}.{b} port={port}",
    _H + ":pgmonitor@demo:[{pid}]:LOG:  connection authorized: user=pgmonitor "
    "database=demo application_name=pgiam-tui SSL enabled "
    "(protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)",
    "{ts} UTC:ec2-10-0-{a}-{b}.us-east-2.compute.amazonaws.com({port}):oltp_rw_user@demo:[{pid}]:LOG:  "
    "pam_authenticate failed: Permission denied",
    _H + ':oltp_rw_user@demo:[{pid}]:FATAL:  PAM authentication failed for user "oltp_rw_user"',
    _H + ":pgmonitor@demo:[{pid}]:LOG:  disconnection: session time: 0:00:{s:02d}.123 "
    "user=pgmonitor database=demo host=10.0.{a}.{b} port={port}",
    _H + ":app@demo:[{pid}]:LOG:  duration: 12.345 ms  statement: SELECT 1",
)


def make_lines(n: int) -> list[str]:
    """N realistic lines: a mix of every kind, timestamps advancing one second per 20 lines."""
    lines = []
    for i in range(n):
        sec = i // 20
        ts = f"2025-09-22 {(sec // 3600) % 24:02d}:{(sec // 60) % 60:02d}:{sec % 60:02d}"
        tpl = _SAMPLES[i % len(_SAMPLES)]
        lines.append(
            tpl.format(ts=ts, a=i % 250, b=(i // 250) % 250, port=30000 + i % 30000, pid=1000 + i, s=i % 60)
        )
    return lines


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _iam_lines(n: int) -> list[str]:
    t0 = datetime(2025, 9, 22, 12, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        t = t0 + timedelta(milliseconds=250 * i)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S") + f",{t.microsecond // 1000:03d}"
        out.append(
            f"{stamp} [ERROR] Failed to authenticate the connection request for user 'user_{i % 50}' because "
            "the "
            "token age is longer than 15 minutes. (Status Code: 400, Error Code: ExpiredToken)"
        )
    return out


def _join_input(n: int) -> list[ConnEvent]:
    """N failed logins (two lines each, like RDS writes) and N AWS reason lines, 50 users, 4 per second."""
    parser = LogLineParser()
    t0 = datetime(2025, 9, 22, 12, 0, tzinfo=UTC)
    events: list[ConnEvent] = []
    for i, line in enumerate(_iam_lines(n)):
        t = t0 + timedelta(milliseconds=250 * i)
        head = f"{t:%Y-%m-%d %H:%M:%S} UTC:10.0.0.1(4000):user_{i % 50}@demo:[{1000 + i}]:"
        events.append(
            replace(parser.parse(head + "LOG:  pam_authenticate failed: Permission denied"), instance="w")
        )
        events.append(
            replace(
                parser.parse(head + f'FATAL:  PAM authentication failed for user "user_{i % 50}"'),
                instance="w",
            )
        )
        events.append(replace(parse_iam_line(line), instance="w"))
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000)
    n = ap.parse_args().lines
    lines = make_lines(n)
    parser = LogLineParser()
    t_conn = _best(lambda: [parser.parse(line) for line in lines])
    iam = _iam_lines(20_000)
    t_iam = _best(lambda: [parse_iam_line(line) for line in iam])
    joined = _join_input(500)
    t_join = _best(lambda: join_attempts(joined))
    print("## parser: connection log lines\n")
    print("| what | figure | aim |")
    print("|---|---|---|")
    print(
        f"| RDS-format connection lines ({n:,}, every kind) | {n / t_conn:,.0f} lines/s | > 100,000 lines/s |"
    )
    print(f"| iam-db-auth-error lines ({len(iam):,}) | {len(iam) / t_iam:,.0f} lines/s | |")
    print(f"| join 1,000 PAM failure lines and 500 AWS reasons into attempts | {t_join * 1000:.1f} ms | |")


if __name__ == "__main__":
    main()
