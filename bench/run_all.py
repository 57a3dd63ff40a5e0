"""Run every bench/bench_*.py and rewrite docs/BENCHMARKS.md with their figures, the date and the machine.

Each benchmark prints a markdown fragment (a heading and a table) to stdout; this runner collects them.
A benchmark that fails is reported as failed in the document (with the end of its stderr), never dropped.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
OUT = ROOT / "docs" / "BENCHMARKS.md"
# Extra arguments per benchmark: the console's launch is also measured on the live sandbox; the live
# attempts run is 4 minutes, not 10 (about 190 refused logins checked: enough to catch a wrong reason,
# and `make bench` stays well under 15 minutes).
ARGS = {"bench_ui": ["--sandbox"], "bench_attempts": ["--seconds", "240"]}


def compile_sources() -> None:
    """Byte-compile our own sources, as `pip install` does for an installed copy: the editable tree of a
    shell with PYTHONDONTWRITEBYTECODE set would otherwise be compiled again by every new process the
    benchmarks start (tens of milliseconds of start-up no installed user pays)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "src", "sandbox/src", "tools"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )


def machine_description() -> str:
    """CPU model, core count, memory and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}, Python {platform.python_version()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main() -> int:
    """Run the benchmarks one after another (they share 2 cores; running them together would skew figures)."""
    only = set(sys.argv[1:])
    compile_sources()
    load_before = load_average()
    parts: list[str] = []
    failed = 0
    for script in sorted(BENCH_DIR.glob("bench_*.py")):
        if only and script.stem not in only:
            continue
        print(f"== {script.name}", flush=True)
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(script), *ARGS.get(script.stem, [])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        took = time.monotonic() - start
        print(proc.stdout, flush=True)
        if proc.returncode != 0:
            failed += 1
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            print(tail, file=sys.stderr)
            parts.append(f"## {script.stem}\n\n**failed** (exit {proc.returncode}):\n\n```\n{tail}\n```\n")
        else:
            parts.append(proc.stdout.strip() + f"\n\n_({script.name}: {took:.1f} s wall)_\n")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {now}.\n\nMachine: {machine_description()}.\n\n"
        f"Load average (1 / 5 / 15 min) at the start: {load_before}; at the end: {load_average()}.\n\n"
        "Figures are from one run; ratios compare peers measured in the same run.\n"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(header + "\n" + "\n".join(parts))
    peers = next((p for p in parts if p.startswith("## Peers")), None)
    if peers is not None:  # the targets table of issue 11, once more at the end of the output
        print(peers)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
