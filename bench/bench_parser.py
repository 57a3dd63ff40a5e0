"""Parser throughput: RDS-format connection log lines per second (aim: over 100,000 lines/s).

Run: .venv/bin/python bench/bench_parser.py [--lines N]
Prints one line: `parser: N lines in S s = R lines/s` (best of 3 runs, so a busy machine skews it less).
"""

from __future__ import annotations

import argparse
import time

from pgiam_tui.collect.logparse import LogLineParser

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000)
    n = ap.parse_args().lines
    lines = make_lines(n)
    best = float("inf")
    for _ in range(3):
        parser = LogLineParser()
        t0 = time.perf_counter()
        for line in lines:
            parser.parse(line)
        best = min(best, time.perf_counter() - t0)
    print(f"parser: {n} lines in {best:.3f} s = {n / best:,.0f} lines/s (aim > 100,000)")


if __name__ == "__main__":
    main()
