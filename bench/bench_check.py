"""`check` wall time on a healthy sandbox cluster beside the manual path, and token generation time.

The manual path is what on-call does today: `aws rds generate-db-auth-token ...`, then `psql -c 'select 1'`
with the token as password (PGSSLMODE=verify-full, PGSSLROOTCERT, hostaddr = the front door). Both paths run
warm: the AWS CLI cache (~/.aws/cli/cache, shared by both) holds the assumed role after a first round.
Prints a markdown fragment (see bench/run_all.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ROUNDS = 5
TOKENS = 2000


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    raise SystemExit("psql not found")


def _timed(cmd: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, input=stdin, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return elapsed, done.stdout


def main() -> None:
    from pgiam_sandbox import Sandbox

    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.aws.tokens import make_token
    from pgiam_tui.config import load_config
    from pgiam_tui.diagnose import run_check

    work = Path(tempfile.mkdtemp(prefix="bench-check-"))
    sandbox = Sandbox(work / "sandbox", clusters=1, workload=False)
    sandbox.start()
    try:
        env = dict(os.environ)
        env.update(sandbox.env)
        env["HOME"] = str(work / "home")  # a private ~/.aws/cli/cache, shared by pgiam-tui and aws
        os.environ.update(env)
        sb = next(c for c in sandbox.clusters if c.kind == "aurora")
        cfg = load_config(sandbox.profiles_toml).cluster(sb.name)

        # check, as a user runs it (a fresh process each time) and in-process (what the console's modal costs)
        check_cmd = [str(BIN / "pgiam-tui"), "check", sb.name]
        _timed(check_cmd, env)  # warm-up: fills the CLI cache
        cli_times = [_timed(check_cmd, env)[0] for _ in range(ROUNDS)]
        sessions = SessionFactory(cache_dir=work / "home" / ".aws" / "cli" / "cache")
        in_process = []
        for _ in range(ROUNDS + 1):
            started = time.perf_counter()
            result = asyncio.run(run_check(cfg, sessions))
            in_process.append(time.perf_counter() - started)
            assert result.ok, result.cause_text
        in_process = in_process[1:]
        steps = {s.name: s.ms for s in result.steps}

        # the manual path
        aws_cmd = [
            str(BIN / "aws"),
            "rds",
            "generate-db-auth-token",
            "--hostname",
            sb.endpoint,
            "--port",
            "5432",
            "--region",
            sb.region,
            "--username",
            "pgmonitor",
            "--profile",
            "instancecrossaccount",
        ]
        psql_env = dict(env)
        psql_env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=str(sandbox.ca_path))
        conninfo = (
            f"host={sb.endpoint} hostaddr=127.0.0.1 port={sb.listen_port} user=pgmonitor dbname={sb.database}"
        )
        psql_cmd = [_psql(), conninfo, "-X", "-A", "-t", "-c", "select 1"]
        _timed(aws_cmd, env)
        manual_aws, manual_psql = [], []
        for _ in range(ROUNDS):
            t_aws, token = _timed(aws_cmd, env)
            psql_env["PGPASSWORD"] = token.strip()
            t_psql, out = _timed(psql_cmd, psql_env)
            assert out.strip() == "1", out
            manual_aws.append(t_aws)
            manual_psql.append(t_psql)
        manual = [a + p for a, p in zip(manual_aws, manual_psql, strict=True)]

        # token generation after warm-up
        session = sessions.session(cfg.profile)
        make_token(session, sb.endpoint, 5432, "pgmonitor", sb.region)
        started = time.perf_counter()
        for _ in range(TOKENS):
            make_token(session, sb.endpoint, 5432, "pgmonitor", sb.region)
        per_token_us = (time.perf_counter() - started) / TOKENS * 1e6
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print("## check: connection check vs. the manual path\n")
    print(f"Healthy sandbox Aurora cluster, warm AWS CLI cache, median of {ROUNDS} runs.\n")
    print("| path | wall time |")
    print("|---|---|")
    print(f"| `pgiam-tui check {sb.name}` (new process) | {med(cli_times) * 1000:.0f} ms |")
    print(f"| `run_check` in-process (console modal) | {med(in_process) * 1000:.0f} ms |")
    print(f"| `aws rds generate-db-auth-token` | {med(manual_aws) * 1000:.0f} ms |")
    print(f"| `psql -c 'select 1'` (verify-full, hostaddr) | {med(manual_psql) * 1000:.0f} ms |")
    print(f"| manual path total | {med(manual) * 1000:.0f} ms |")
    print(f"| ratio check (new process) / manual | {med(cli_times) / med(manual):.2f} |")
    print(f"| token generation after warm-up ({TOKENS} tokens) | {per_token_us:.0f} µs per token |")
    print("\nSteps of the last in-process check (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))


if __name__ == "__main__":
    main()
