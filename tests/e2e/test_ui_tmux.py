"""Drive the real `pgiam-tui` binary in tmux: it starts, data appears, `q` exits 0, the terminal is restored.

The tmux server gets its own socket name (-L) and is killed by that name at the end, so nothing is left.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.tmux import Tmux, wait  # the `tmux` fixture: tests/conftest.py

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]
BINARY = Path(sys.executable).with_name("pgiam-tui")


def test_binary_config_error_is_one_line_exit_2(tmux: Tmux, tmp_path: Path) -> None:
    env = {"PGIAM_TUI_CONFIG": str(tmp_path / "missing.toml"), "TERM": "xterm-256color"}
    tmux.start(BINARY, env, width=300)
    wait("the program to exit", lambda: tmux.exit_status() is not None, 60)
    wait("the pane to close", lambda: tmux.fmt("#{pane_dead}") == "1", 60)
    assert tmux.exit_status() == 2
    # -J joins what the terminal wrapped: the message (it names the path twice) may be wider than the pane
    joined = tmux.run("capture-pane", "-p", "-J", "-t", "ui")
    text = [line for line in joined.splitlines() if line.strip() and "Pane is dead" not in line]
    assert len(text) == 1 and "missing.toml" in text[0] and "Traceback" not in text[0]


def test_binary_on_sandbox_starts_shows_data_and_quits_cleanly(
    tmux: Tmux, sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(sandbox_env)
    env["TERM"] = "xterm-256color"
    env["PGIAM_TUI_CONFIG"] = str(sandbox.profiles_toml)
    # a private HOME: ~/.aws/cli/cache may hold assumed-role keys of another sandbox's moto
    env["HOME"] = str(tmp_path)
    tmux.start(BINARY, env)
    wait("the console to start", lambda: "pgiam-tui" in tmux.screen())
    assert tmux.fmt("#{alternate_on}") == "1"
    first = sandbox.clusters[0].name
    wait("cluster list", lambda: first in tmux.screen())
    wait("activity rows of oltp_rw_user", lambda: "oltp_rw_user" in tmux.screen())
    tmux.run("send-keys", "-t", "ui", "q")
    wait("the program to exit", lambda: tmux.exit_status() is not None, 60)
    assert tmux.exit_status() == 0
    # terminal restored: normal screen, cursor visible, no mouse reporting left on
    assert tmux.fmt("#{alternate_on}") == "0"
    assert tmux.fmt("#{cursor_flag}") == "1"
    assert tmux.fmt("#{mouse_any_flag}") == "0"
    assert "oltp_rw_user" not in tmux.screen()


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line mentions `text` (to prove nothing of the demo is left running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_demo_runs_sandbox_and_console_and_quit_stops_everything(tmux: Tmux, tmp_path: Path) -> None:
    env = {"TERM": "xterm-256color", "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    tmux.start(BINARY, env, width=160, height=45, args=["demo"])
    wait(
        "the demo's sandbox to start and the console to show sessions",
        lambda: "oltp_rw_user" in tmux.screen(),
        240,
    )
    tmux.run("send-keys", "-t", "ui", "q")
    wait("the demo to exit", lambda: tmux.exit_status() is not None, 120)
    assert tmux.exit_status() == 0
    screen = tmux.screen()
    assert "Traceback" not in screen
    started = [line for line in screen.splitlines() if "starting the sandbox in" in line]
    assert started, screen
    root = next(word for word in started[0].split() if word.startswith("/"))
    assert not Path(root).exists(), "the demo's temp dir was left behind"
    assert _processes_mentioning(root) == [], "processes of the demo's sandbox left running"
