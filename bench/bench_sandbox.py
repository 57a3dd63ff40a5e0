"""The sandbox itself: start-up and stop time of `pgiam-tui sandbox up`, and what its RDS front door costs.

- Start-up: wall time from launching `pgiam-tui sandbox up` (default topology: 3 Aurora clusters x writer +
  reader, plus one RDS for PostgreSQL instance, workload off) to its `ready` line, first with an empty
  template cache (initdb + seed), then with the template that run cached; stop: SIGTERM to exit.
- Connect and `select 1`, side by side in one run against the same PostgreSQL server (pgdemo-1's writer):
  * direct: TCP to PostgreSQL, scram as `app_password_user`, no TLS (what the front door relays to);
  * front door, password user: TLS verify-full to the front door, which relays scram over TCP;
  * front door, IAM: TLS verify-full, IAM token verified by the front door (SigV4 against moto, policy,
    IAM flag), then relayed over the unix socket as `pgmonitor`; the token is made before the timer starts;
  * front door, IAM without TLS: the relay's own cost, apart from TLS's.
  Round trips are medians of many `select 1` on one open connection; connects are medians of fresh ones.
Prints a markdown fragment (bench/run_all.py collects it); no assertions.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg
from pgiam_sandbox.template_cache import CACHE_ENV

CONNECTS = 20
ROUND_TRIPS = 2000
CLI = [sys.executable, "-m", "pgiam_tui.cli"]


def start_sandbox(directory: Path, template_cache: Path) -> tuple[subprocess.Popen[str], float]:
    """Launch `sandbox up` (its PostgreSQL template cached in TEMPLATE_CACHE) and wait for `ready`; returns
    the process and the seconds it took."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env[CACHE_ENV] = str(template_cache)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, "sandbox", "up", "--dir", str(directory), "--no-workload"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready":
            return proc, time.perf_counter() - started
    proc.wait()
    raise SystemExit(f"sandbox up exited {proc.returncode} before ready")


def stop_sandbox(proc: subprocess.Popen[str]) -> float:
    """SIGTERM the sandbox (by the pid we hold) and time its exit."""
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.perf_counter() - started


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(conninfo: dict[str, Any]) -> tuple[float, float]:
    """(median connect ms, median select-1 round trip µs) for one way of connecting."""
    connects = []
    for _ in range(CONNECTS):
        t0 = time.perf_counter()
        with psycopg.connect(**conninfo, autocommit=True):
            connects.append(time.perf_counter() - t0)
    trips = []
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(100):  # warm-up
            cur.execute("select 1")
            cur.fetchone()
        for _ in range(ROUND_TRIPS):
            t0 = time.perf_counter()
            cur.execute("select 1")
            cur.fetchone()
            trips.append(time.perf_counter() - t0)
    return median_ms(connects), statistics.median(trips) * 1e6


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pgiam-bench-sandbox-") as tmp:
        # A template cache of the bench's own: the first start builds the template (a user's first run),
        # the measured one copies it (every later run), whatever the user's ~/.cache holds.
        cache = Path(tmp) / "template-cache"
        first, first_s = start_sandbox(Path(tmp) / "first", cache)
        stop_sandbox(first)
        directory = Path(tmp) / "sb"
        proc, startup_s = start_sandbox(directory, cache)
        try:
            info = json.loads((directory / "sandbox.json").read_text())
            cluster = info["clusters"][0]
            writer = next(i for i in cluster["instances"] if i["role"] == "writer")
            os.environ["AWS_CONFIG_FILE"] = str(directory / "aws" / "config")
            os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(directory / "aws" / "credentials")
            session = boto3.Session(profile_name="instancecrossaccount")
            rds = session.client("rds", region_name=cluster["region"])
            tls = {"sslmode": "verify-full", "sslrootcert": info["ca_path"]}
            front = {
                "host": writer["endpoint"],
                "hostaddr": "127.0.0.1",
                "port": writer["listen_port"],
                "dbname": "demo",
                **tls,
            }
            direct = {
                "host": "127.0.0.1",
                "port": writer["pg_port"],
                "dbname": "demo",
                "user": "app_password_user",
                "password": "app-password",
                "sslmode": "disable",
            }
            token = rds.generate_db_auth_token(writer["endpoint"], 5432, "pgmonitor", cluster["region"])
            rows = {
                "direct to PostgreSQL (TCP, scram, no TLS)": measure(direct),
                "front door, password user (TLS + relayed scram)": measure(
                    {**front, "user": "app_password_user", "password": "app-password"}
                ),
                "front door, IAM token (TLS + SigV4 + policy check)": measure(
                    {**front, "user": "pgmonitor", "password": token}
                ),
                # the relay alone: the same IAM login without TLS (the front door allows it, as RDS does
                # unless rds.force_ssl is on), to separate the relay's cost from TLS's
                "front door, IAM token, no TLS (relay cost alone)": measure(
                    {
                        **front,
                        "sslmode": "disable",
                        "sslrootcert": None,
                        "user": "pgmonitor",
                        "password": token,
                    },
                ),
            }
        finally:
            stop_s = stop_sandbox(proc)
    base_connect, base_trip = rows["direct to PostgreSQL (TCP, scram, no TLS)"]
    print("## Sandbox: start-up and the RDS front door\n")
    print("| measure | value | aim |\n|---|---|---|")
    topology = "3 Aurora clusters x 2 + 1 RDS instance, no workload"
    print(f"| `sandbox up` to `ready`, first run: template built ({topology}) | {first_s:.1f} s | |")
    print(f"| `sandbox up` to `ready`, template cached ({topology}) | {startup_s:.1f} s | < 10 s |")
    print(f"| stop after SIGTERM | {stop_s:.1f} s | |")
    print("\n| path | connect (median) | ratio | `select 1` round trip (median) | ratio |")
    print("|---|---|---|---|---|")
    for name, (connect_ms, trip_us) in rows.items():
        print(
            f"| {name} | {connect_ms:.1f} ms | {connect_ms / base_connect:.1f}x | "
            f"{trip_us:.0f} µs | {trip_us / base_trip:.2f}x |"
        )
    print(f"\n{CONNECTS} connects and {ROUND_TRIPS} round trips per path.")
    print("Aim: relay round trip under 2x direct (the no-TLS row is the relay alone).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
