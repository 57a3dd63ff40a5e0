"""The console beside what a DBA would run instead, in one run, on the same sandbox sessions (issue 11).

- CPU per minute of `pgiam-tui` against pg_activity (2 s refresh both), as real processes in tmux for the same
  wall time, read from /proc/PID/stat: one cluster on the very server pg_activity watches, then 10 clusters
  x 500 sessions against pg_activity watching one of those servers;
- `check NAME` and `snapshot --cluster NAME` as new processes against the manual path
  (`aws rds generate-db-auth-token` + `psql`);
- console launch to first rows, `demo` to first rows and the demo's quit;
- RSS of the console watching 50 clusters; AWS requests per minute per account and region at 20 clusters,
  counted at the sandbox's moto server (`pgiam-tui sandbox aws-requests`).

The fleets: `sandbox up --clusters 10 --sessions 500 --servers 2 --no-workload` (every writer on one server
holding 500 idle sessions, every reader on another) and `--clusters 50 --servers 4 --sessions 20` with the
workload. Prints a markdown fragment (see bench/run_all.py); `--quick` shortens every window (trying it out).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pgiam_sandbox.environment import read_env_sh
from pgiam_sandbox.template_cache import CACHE_ENV

from pgiam_tui.aws.budget import DEFAULT_REQUESTS_PER_MINUTE
from run_all import compile_sources, load_average, machine_description  # bench/ is this script's directory

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QUICK = "--quick" in sys.argv
WINDOW_S = 15.0 if QUICK else 60.0  # CPU / AWS-request measuring window
ROUNDS = 2 if QUICK else 5
LAUNCHES = 1 if QUICK else 3
CLK_TCK = os.sysconf("SC_CLK_TCK")
TMUX = ["tmux", "-L", f"pgiam-bench-{os.getpid()}"]


# ------------------------------------------------------------------------------------------------ helpers


def psql_path() -> str:
    """psql from PATH or the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    raise SystemExit("psql not found")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


def wait_until(predicate: Callable[[], bool], limit_s: float, poll_s: float = 0.05) -> float | None:
    """Seconds until predicate() held, or None after limit_s."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if predicate():
            return time.perf_counter() - started
        time.sleep(poll_s)
    return None


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of a command and its stdout; SystemExit when it fails."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd[:3])} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout


class Pane:
    """One command in its own window of a private tmux server (200x50); ``pid`` is the command's own."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()) if k.isidentifier())
        shell = f"exec env -i {exports} {shlex.join(cmd)}"
        self.started = time.perf_counter()
        subprocess.run(
            [*TMUX, "new-session", "-d", "-s", name, "-x", "200", "-y", "50", shell], check=True, timeout=30
        )
        out = subprocess.run(
            [*TMUX, "display", "-p", "-t", name, "#{pane_pid}"], capture_output=True, text=True, check=True
        )
        self.pid = int(out.stdout.strip())

    def text(self) -> str:
        """What the pane shows now."""
        done = subprocess.run(
            [*TMUX, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True, check=False
        )
        return done.stdout

    def alive(self) -> bool:
        """The command still runs (and is no zombie)."""
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state not in ("Z", "X")

    def keys(self, *keys: str) -> None:
        """Type keys into the pane."""
        subprocess.run([*TMUX, "send-keys", "-t", self.name, *keys], check=False, timeout=30)

    def close(self) -> None:
        """SIGTERM the command by its pid, then remove the window."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            wait_until(lambda: not self.alive(), 20)
        subprocess.run([*TMUX, "kill-session", "-t", self.name], capture_output=True, check=False)


@contextlib.contextmanager
def sandbox_up(directory: Path, *args: str) -> Iterator[tuple[dict[str, Any], dict[str, str], float]]:
    """`pgiam-tui sandbox up` in its own process: (sandbox.json, env for clients, seconds to `ready`)."""
    errors = (directory.parent / f"{directory.name}.stderr").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "pgiam-tui"), "sandbox", "up", "--dir", str(directory), *args],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line == "ready\n":
                break
        else:
            raise SystemExit(f"sandbox up {' '.join(args)} failed: {errors.name}")
        ready = time.perf_counter() - started
        info = json.loads((directory / "sandbox.json").read_text())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGIAM_"))}
        env.update(read_env_sh(directory / "env.sh"))
        env["HOME"] = str(directory / "home")  # a private ~/.aws/cli/cache for the AWS CLI
        env["TERM"] = "xterm-256color"
        yield info, env, ready
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        errors.close()


def profiles_for(directory: Path, names: list[str]) -> Path:
    """A copy of the sandbox's profiles.toml with only the clusters NAMES."""
    text = (directory / "profiles.toml").read_text()
    head, *blocks = text.split("[[clusters]]")
    kept = [b for b in blocks if any(line == f'name = "{n}"' for n in names for line in b.splitlines())]
    out = directory / f"profiles-{len(names)}.toml"
    out.write_text(head + "".join("[[clusters]]" + b for b in kept))
    return out


def console_pane(name: str, env: dict[str, str], config: Path) -> Pane:
    """The console on CONFIG in a pane."""
    return Pane(name, [str(BIN / "pgiam-tui"), "--config", str(config)], env)


def shows(pane: Pane, marker: str) -> Callable[[], bool]:
    """Predicate: the pane shows MARKER."""
    return lambda: marker in pane.text()


# ------------------------------------------------------------------------------------------ measurements


def cpu_side_by_side(
    env: dict[str, str], config: Path, server: dict[str, Any], marker: str
) -> tuple[float, float, float]:
    """(console CPU s/min, pg_activity CPU s/min, console first rows s): both running for WINDOW_S."""
    console = console_pane("console", env, config)
    activity = Pane(
        "pg_activity",
        [
            str(BIN / "pg_activity"),
            "--refresh",
            "2",
            "-h",
            server["pg_socket_dir"],
            "-p",
            str(server["pg_port"]),
            "-U",
            "sandbox_admin",
            "-d",
            "demo",
        ],
        env,
    )
    try:
        first = wait_until(shows(console, marker), 120)
        if first is None or wait_until(shows(activity, "idle"), 60) is None:
            raise SystemExit(f"no rows: console\n{console.text()}\npg_activity\n{activity.text()}")
        time.sleep(4)  # both in their steady state
        mine, theirs = cpu_seconds(console.pid), cpu_seconds(activity.pid)
        time.sleep(WINDOW_S)
        mine, theirs = cpu_seconds(console.pid) - mine, cpu_seconds(activity.pid) - theirs
    finally:
        console.close()
        activity.close()
    per_min = 60.0 / WINDOW_S
    return mine * per_min, theirs * per_min, first


def launch_to_rows(env: dict[str, str], config: Path, marker: str) -> float:
    """Median seconds from spawning the console to MARKER on screen."""
    times = []
    for i in range(LAUNCHES):
        pane = console_pane(f"launch{i}", env, config)
        try:
            took = wait_until(shows(pane, marker), 120)
            if took is None:
                raise SystemExit(f"console never showed rows:\n{pane.text()}")
            times.append(took)
        finally:
            pane.close()
    return statistics.median(times)


def new_process_paths(env: dict[str, str], info: dict[str, Any], name: str) -> dict[str, float]:
    """Median seconds of check, snapshot and the manual path (token, then psql), each a new process."""
    c = next(c for c in info["clusters"] if c["name"] == name)
    aws = [str(BIN / "aws"), "rds", "generate-db-auth-token", "--hostname", c["endpoint"], "--port", "5432"]
    aws += ["--region", c["region"], "--username", "pgmonitor", "--profile", "instancecrossaccount"]
    conninfo = f"host={c['endpoint']} hostaddr=127.0.0.1 port={c['listen_port']} user=pgmonitor dbname=demo"
    psql_env = dict(env, PGSSLMODE="verify-full", PGSSLROOTCERT=info["ca_path"])
    query = "select pid, usename, application_name, state, query from pg_stat_activity"
    check = [str(BIN / "pgiam-tui"), "check", name]
    snapshot = [str(BIN / "pgiam-tui"), "snapshot", "--cluster", name, "--json"]
    timed(check, env)  # warm-ups: the credential caches of both paths filled, as in daily use
    timed(aws, env)
    figures: dict[str, list[float]] = {"check": [], "snapshot": [], "aws": [], "psql": [], "manual": []}
    for _ in range(ROUNDS):
        figures["check"].append(timed(check, env)[0])
        figures["snapshot"].append(timed(snapshot, env)[0])
        t_aws, token = timed(aws, env)
        psql_env["PGPASSWORD"] = token.strip()
        t_psql, out = timed([psql_path(), conninfo, "-X", "-A", "-t", "-c", query], psql_env)
        assert "idle-app" in out, out[:500]
        figures["aws"].append(t_aws)
        figures["psql"].append(t_psql)
        figures["manual"].append(t_aws + t_psql)
    return {k: statistics.median(v) for k, v in figures.items()}


def aws_requests(directory: Path, env: dict[str, str]) -> dict[tuple[str, str], int]:
    """Requests so far per (account, region), from the sandbox's counter."""
    _, out = timed([str(BIN / "pgiam-tui"), "sandbox", "aws-requests", "--dir", str(directory)], env)
    totals: dict[tuple[str, str], int] = {}
    for row in json.loads(out):
        key = (row["account"], row["region"])
        totals[key] = totals.get(key, 0) + int(row["requests"])
    return totals


def watch_fleet(directory: Path, env: dict[str, str], config: Path, marker: str) -> tuple[float, float, dict]:
    """Console on CONFIG for WINDOW_S: (RSS MB at the end, peak RSS MB, AWS req/min per account, region)."""
    pane = console_pane("fleet", env, config)
    try:
        if wait_until(shows(pane, marker), 180) is None:
            raise SystemExit(f"console never showed rows:\n{pane.text()}")
        time.sleep(4)
        before = aws_requests(directory, env)
        time.sleep(WINDOW_S)
        after = aws_requests(directory, env)
        rss, peak = memory_mb(pane.pid)
    finally:
        pane.close()
    per_min = {k: (n - before.get(k, 0)) * 60.0 / WINDOW_S for k, n in after.items()}
    return rss, peak, per_min


def demo_rows_and_quit(env: dict[str, str]) -> tuple[float, float, str]:
    """(seconds to first rows, seconds from `q` to exit, the last line it printed) of `pgiam-tui demo`,
    with the bench's template cache (the sandboxes before it filled it: a second demo, not a first)."""
    clean = {k: v for k, v in env.items() if not k.startswith(("AWS_", "PGIAM_"))}
    clean[CACHE_ENV] = os.environ[CACHE_ENV]
    pane = Pane("demo", ["sh", "-c", f"{shlex.quote(str(BIN / 'pgiam-tui'))} demo; sleep 30"], clean)
    try:
        rows = wait_until(shows(pane, "oltp-app"), 180)
        if rows is None:
            raise SystemExit(f"demo never showed rows:\n{pane.text()}")
        time.sleep(2)
        pane.keys("q")
        # the shell's `sleep 30` keeps the pane: wait until the demo (the shell's child) has gone
        gone = wait_until(lambda: not _children(pane.pid, "pgiam-tui"), 60)
        quit_s = gone if gone is not None else float("nan")
        lines = [line for line in pane.text().splitlines() if line.strip()]
    finally:
        pane.close()
    return rows, quit_s, lines[-1] if lines else ""


def _children(pid: int, name: str) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                if name.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


# ---------------------------------------------------------------------------------------------- report


def verdict(value: float, limit: float) -> str:
    """ "yes", or by how much VALUE misses LIMIT: in percent below twice the limit, else as a multiple."""
    if value <= limit:
        return "yes"
    over = value / limit
    return f"no ({(over - 1) * 100:.0f} % over)" if over < 2 else f"no ({over:.1f}× the target)"


def ratio_row(measure: str, mine: float, peer: float | None, unit: str, target: float, peer_name: str) -> str:
    """A table row: measure | pgiam-tui | peer | ratio | target | met."""
    if peer is None or peer <= 0:
        return f"| {measure} | {mine:.2f} {unit} | {peer_name}: n/a | n/a | ≤ {target:g}× | n/a |"
    ratio = mine / peer
    met = verdict(ratio, target)
    peer_cell = f"{peer_name}: {peer:.2f} {unit}"
    return f"| {measure} | {mine:.2f} {unit} | {peer_cell} | {ratio:.2f}× | ≤ {target:g}× | {met} |"


def limit_row(measure: str, value: float, unit: str, limit: float) -> str:
    """A table row for an absolute target."""
    met = verdict(value, limit)
    return f"| {measure} | {value:.2f} {unit} | — | — | ≤ {limit:g} {unit} | {met} |"


def main() -> int:
    """Run everything and print the markdown fragment."""
    if shutil.which("tmux") is None or not (BIN / "pg_activity").exists():
        raise SystemExit("bench_peers needs tmux and pg_activity (make bench installs the bench extra)")
    compile_sources()
    # a session that lives as long as the bench: tmux's server exits with its last session, and a pane
    # opened just then ("server exited unexpectedly") would fail the run
    subprocess.run([*TMUX, "new-session", "-d", "-s", "keeper", "sleep 86400"], check=True, timeout=30)
    load_start, started_at = load_average(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    # The seeded PostgreSQL template, cached between runs, in a cache of this bench's own: the first sandbox
    # builds it, the second and the demo copy it, whatever the user's ~/.cache holds (the demo's private
    # HOME would otherwise make every measured demo build it afresh).
    os.environ[CACHE_ENV] = str(work / "template-cache")
    rows: list[str] = []
    notes: list[str] = []
    try:
        d1 = work / "fleet10"
        with sandbox_up(d1, "--clusters", "10", "--sessions", "500", "--servers", "2", "--no-workload") as (
            info,
            env,
            ready10,
        ):
            rds = next(c for c in info["clusters"] if c["name"] == "pgdemo-rds")
            server = rds["instances"][0]
            one = profiles_for(d1, ["pgdemo-rds"])
            ten = profiles_for(d1, [f"pgdemo-{i}" for i in range(1, 11)])
            cpu1, act1, _ = cpu_side_by_side(env, one, server, "idle-app")
            what = "console CPU, 1 cluster (same server, 500 sessions)"
            rows.append(ratio_row(what, cpu1, act1, "s/min", 1.5, "pg_activity"))
            cpu10, act10, _ = cpu_side_by_side(env, ten, server, "idle-app")
            what = "console CPU, 10 clusters × 500 sessions"
            rows.append(ratio_row(what, cpu10, act10, "s/min", 3.0, "pg_activity on one server"))
            paths = new_process_paths(env, info, "pgdemo-rds")
            manual = paths["manual"]
            rows.append(
                ratio_row("`check NAME`, new process", paths["check"], manual, "s", 1.0, "aws + psql")
            )
            what = "`snapshot --cluster NAME`, new process"
            rows.append(ratio_row(what, paths["snapshot"], manual, "s", 1.0, "aws + psql"))
            notes.append(
                f"manual path = `aws rds generate-db-auth-token` {paths['aws']:.2f} s + `psql` "
                f"{paths['psql']:.2f} s (median of {ROUNDS}, warm caches, new processes)"
            )
            launch = launch_to_rows(env, one, "idle-app")
            rows.append(limit_row("console launch to first rows (1 cluster, live sandbox)", launch, "s", 1.0))
        d2 = work / "fleet50"
        with sandbox_up(d2, "--clusters", "50", "--servers", "4", "--sessions", "20") as (info, env, ready50):
            every = profiles_for(d2, [c["name"] for c in info["clusters"]])
            rss, peak, _ = watch_fleet(d2, env, every, "idle-app")
            rows.append(
                limit_row(f"RSS, console watching {len(info['clusters'])} clusters", rss, "MB", 150.0)
            )
            notes.append(f"peak RSS of that console: {peak:.0f} MB")
            twenty = profiles_for(d2, [f"pgdemo-{i}" for i in range(1, 21)])
            _, _, per_min = watch_fleet(d2, env, twenty, "idle-app")
            worst = max(per_min.values(), default=0.0)
            what = "AWS requests/min, 20 clusters, busiest account+region (the README's default budget)"
            rows.append(limit_row(what, worst, "/min", float(DEFAULT_REQUESTS_PER_MINUTE)))
            for (account, region), n in sorted(per_min.items()):
                notes.append(f"AWS requests/min at 20 clusters: account {account}, {region}: {n:.0f}")
        demo_rows, demo_quit, last_line = demo_rows_and_quit(env)
        rows.append(limit_row("`demo` to first rows (template cached)", demo_rows, "s", 4.0))
        notes.append(f"quitting the demo (`q` to exit): {demo_quit:.1f} s; last line: `{last_line.strip()}`")
        notes.append(
            f"`sandbox up --clusters 10 --sessions 500 --servers 2` ready in {ready10:.1f} s (PostgreSQL's "
            f"template built: initdb + seed); `--clusters 50 --servers 4 --sessions 20` in {ready50:.1f} s "
            "(template cached)"
        )
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print("## Peers: the console beside pg_activity, psql and the AWS CLI (bench/bench_peers.py)\n")
    print(
        f"One run, same sandbox sessions for both columns; CPU over {WINDOW_S:.0f} s of wall time with both "
        "tools running side by side in tmux at a 2 s refresh (user + system CPU from /proc/PID/stat). "
        "pg_activity connects over the unix socket as superuser and by default lists only non-idle sessions; "
        "the console connects through the TLS front door with IAM tokens and lists every session.\n"
    )
    print(f"Machine: {machine_description()}.\n")
    print(
        f"Started {started_at}; load average (1 / 5 / 15 min) {load_start} at the start, {load_average()} "
        "at the end (2 cores: a load above 2 means other work shared the machine and inflated the times; "
        "the ratios compare tools measured side by side).\n"
    )
    print("| measure | pgiam-tui | peer | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
