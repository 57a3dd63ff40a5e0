"""A private tmux server for driving the real binary in a terminal (tests/e2e).

Each Tmux has its own socket name (-L), killed by that name at the end, so no tmux server is left behind.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path


class Tmux:
    """One private tmux server (socket name unique per test)."""

    def __init__(self, conf_dir: Path) -> None:
        self.socket = f"pgiam-ui-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # remain-on-exit from the start: the pane (exit status, final screen) outlives the program
        self.conf = conf_dir / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        self.rc_file = conf_dir / "exit-status"

    def exit_status(self) -> int | None:
        """The program's exit status once it has exited."""
        try:
            return int(self.rc_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout

    def start(
        self, binary: Path, env: dict[str, str], width: int = 120, height: int = 40, args: Sequence[str] = ()
    ) -> None:
        """Run `binary` in the pane; its exit status goes to a file (tmux's pane_dead_status is racy)."""
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        # the short sleep: tmux drops the output of a program that exits at once
        script = '"$0" "$@"; echo $? > "$RC_FILE"; sleep 1'
        env_args += ["-e", f"RC_FILE={self.rc_file}"]
        command = ["sh", "-c", script, str(binary), *args]
        self.run("-f", str(self.conf), "new-session", "-d", "-s", "ui", "-x", str(width), "-y", str(height),
                 *env_args, *command)  # fmt: skip

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-S", "-200", "-t", "ui")

    def fmt(self, spec: str) -> str:
        return self.run("display-message", "-p", "-t", "ui", spec).strip()

    def kill(self) -> None:
        """Kill this test's tmux server by its socket name, and remove the socket file it leaves."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        tmpdir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (tmpdir / self.socket).unlink(missing_ok=True)


def wait(
    what: str, cond: Callable[[], bool], limit_s: float = 90.0, detail: Callable[[], str] | None = None
) -> None:
    """Poll `cond` until true; fail naming `what` and DETAIL's text (a bound, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            extra = f" ({detail()})" if detail is not None else ""
            raise AssertionError(f"timed out waiting for: {what}{extra}")
        time.sleep(0.3)
