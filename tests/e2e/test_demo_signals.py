"""SIGTERM, SIGHUP, SIGINT and a closed terminal end `pgiam-tui demo` and the console cleanly (real binary).

Before: every such ending left the demo's 7 PostgreSQL servers running (re-parented to PID 1) with their data
in /dev/shm and /tmp, and SIGTERM left the terminal in the alternate screen with mouse tracking on.
What the test holds the program to, by what it started (pids, paths, segments), never by process names:
no process left, no data directory, no shared-memory segment, the demo's temp dir gone, the terminal restored.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.tmux import Tmux, wait  # the `tmux` fixture: tests/conftest.py

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]
BINARY = Path(sys.executable).with_name("pgiam-tui")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(p) for p in text]
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


@dataclass
class Started:
    """What the demo started, read from /proc while it runs."""

    demo_pid: int
    servers: dict[int, Path]  # postmaster pid -> its data directory
    posix_segments: set[Path]  # /dev/shm/PostgreSQL.* the postmasters map
    sysv_segments: set[int]  # SysV shared memory ids created by the postmasters
    owned_dirs: set[Path]  # pgiam-pg-* directories stamped with the demo's pid (the template's included)


def _sysv_segments_of(pids: set[int]) -> set[int]:
    """shmid of the SysV segments whose creator (cpid) is one of PIDS (/proc/sysvipc/shm)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    header = lines[0].split()
    ids = set()
    for line in lines[1:]:
        row = dict(zip(header, line.split(), strict=False))
        if int(row["cpid"]) in pids:
            ids.add(int(row["shmid"]))
    return ids


def _read_started(demo_pid: int) -> Started:
    servers = {}
    for child in _children(demo_pid):
        argv = _cmdline(child)
        if "-D" in argv:
            servers[child] = Path(argv[argv.index("-D") + 1])
    segments: set[Path] = set()
    for pid in servers:
        maps = Path(f"/proc/{pid}/maps").read_text()
        segments |= {Path(m) for m in re.findall(r"(/dev/shm/PostgreSQL\.\d+)", maps)}
    owned = {
        base
        for place in (Path("/dev/shm"), Path("/tmp"))
        for base in place.glob("pgiam-pg-*")
        if _owner_pid(base) == demo_pid
    }
    return Started(demo_pid, servers, segments, _sysv_segments_of(set(servers)), owned)


def _owner_pid(base: Path) -> int | None:
    """The pid in a sandbox data dir's owner stamp ("<pid> <start time>"), see pgiam_sandbox.pg_host."""
    try:
        return int((base / "pgiam-owner").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _still_there(started: Started) -> list[str]:
    left = []
    for pid, data_dir in started.servers.items():
        # the same pid serving the same directory (a reused pid is someone else's)
        if str(data_dir) in _cmdline(pid):
            left.append(f"postgres pid {pid} ({data_dir})")
        if data_dir.exists():
            left.append(f"data directory {data_dir}")
    left += [f"directory {d}" for d in started.owned_dirs if d.exists()]
    left += [f"segment {p}" for p in started.posix_segments if p.exists()]
    left += [f"SysV shm id {i}" for i in started.sysv_segments & _sysv_segments_of(set(started.servers))]
    if Path(f"/proc/{started.demo_pid}").exists() and "demo" in _cmdline(started.demo_pid):
        left.append(f"the demo itself, pid {started.demo_pid}")
    return left


def _start_demo(tmux: Tmux, tmp_path: Path) -> Started:
    env = {"TERM": "xterm-256color", "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    tmux.start(BINARY, env, width=120, height=40, args=["demo", "--clusters", "2"])
    wait("the demo's console to show sessions", lambda: "oltp_rw_user" in tmux.screen(), 300)
    (shell,) = [int(tmux.fmt("#{pane_pid}"))]
    (demo_pid,) = [p for p in _children(shell) if "demo" in _cmdline(p)]
    started = _read_started(demo_pid)
    # 2 Aurora clusters (writer + reader each) and the RDS instance
    assert len(started.servers) == 5, started.servers
    assert started.posix_segments or started.sysv_segments  # the check below has something to check
    assert len(started.owned_dirs) > len(started.servers) // 2
    return started


def _assert_terminal_restored(tmux: Tmux) -> None:
    assert tmux.fmt("#{alternate_on}") == "0"
    assert tmux.fmt("#{mouse_any_flag}") == "0"
    assert tmux.fmt("#{cursor_flag}") == "1"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_to_demo_stops_everything_and_restores_the_terminal(
    tmux: Tmux, tmp_path: Path, signum: signal.Signals
) -> None:
    started = _start_demo(tmux, tmp_path)
    os.kill(started.demo_pid, signum)
    wait("the demo to exit", lambda: tmux.exit_status() is not None, 120)
    assert tmux.exit_status() == 128 + signum
    assert _still_there(started) == []
    _assert_terminal_restored(tmux)
    screen = tmux.screen()
    assert "Traceback" not in screen
    assert f"{signum.name} received; quitting" in screen
    assert "stopping the sandbox (5 PostgreSQL servers" in screen
    (root,) = re.findall(r"stopped in [\d.]+s; removed (/\S+)", screen)
    assert not Path(root).exists(), "the demo's temp dir was left behind"


def test_closing_the_terminal_stops_the_demo_and_everything_it_started(tmux: Tmux, tmp_path: Path) -> None:
    started = _start_demo(tmux, tmp_path)
    # As closing a terminal window does: the pty goes away and the kernel hangs up its processes.
    tmux.run("kill-pane", "-t", "ui")
    left: list[str] = []

    def all_gone() -> bool:
        left[:] = _still_there(started)
        return not left

    wait("the demo and all it started to be gone", all_gone, 120, detail=lambda: f"still there: {left}")


def test_sigterm_to_the_console_restores_the_terminal(
    tmux: Tmux, sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(sandbox_env, TERM="xterm-256color", HOME=str(tmp_path))
    env["PGIAM_TUI_CONFIG"] = str(sandbox.profiles_toml)
    tmux.start(BINARY, env)
    wait("activity rows", lambda: "oltp_rw_user" in tmux.screen())
    assert tmux.fmt("#{mouse_any_flag}") == "1"  # on while the console runs: the check below can fail
    (console_pid,) = _children(int(tmux.fmt("#{pane_pid}")))
    os.kill(console_pid, signal.SIGTERM)
    wait("the console to exit", lambda: tmux.exit_status() is not None, 60)
    assert tmux.exit_status() == 128 + signal.SIGTERM
    _assert_terminal_restored(tmux)
    assert "Traceback" not in tmux.screen()
