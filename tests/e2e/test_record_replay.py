"""`record` on the sandbox as a real process, then `replay` of that file in a real terminal (tmux).

What is recorded is what the console would show (the same Monitor), so the recording must hold every cluster's
sessions and events; no token may reach it; a copy cut mid-line replays up to the cut.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.tmux import Tmux, wait  # the `tmux` fixture: tests/conftest.py
from pgiam_tui.recording import read_recording

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = [pytest.mark.timeout(300)]
BINARY = Path(sys.executable).with_name("pgiam-tui")


def _env(sandbox: Sandbox, sandbox_env: dict[str, str], home: Path) -> dict[str, str]:
    env = {**os.environ, **sandbox_env, "PGIAM_TUI_CONFIG": str(sandbox.profiles_toml), "HOME": str(home)}
    env["TERM"] = "xterm-256color"
    return env


@pytest.fixture(scope="module")
def recording(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A recording of every sandbox cluster, stopped by SIGINT once every cluster has sessions on file."""
    home = tmp_path_factory.mktemp("record-home")
    path = home / "fleet.jsonl.gz"
    proc = subprocess.Popen(
        [str(BINARY), "record", str(path), "--duration", "4m"],
        env=_env(sandbox, sandbox_env, home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    names = {c.name for c in sandbox.clusters}
    try:

        def every_cluster_with_sessions() -> bool:
            if not path.exists():
                return False
            snaps = read_recording(path).snapshots
            busy = {s.name for s in snaps if s.status == "ok" and s.activity}
            return names <= busy and len(snaps) >= 4 * len(names)

        wait("every cluster recorded with sessions, a few rounds each", every_cluster_with_sessions, 180)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped (signal SIGINT)" in err
    return path


def test_record_writes_what_the_console_shows(recording: Path, sandbox: Sandbox) -> None:
    rec = read_recording(recording)
    assert rec.header.clusters == tuple(c.name for c in sandbox.clusters)
    assert rec.header.config_digest and rec.header.config_digest.startswith("sha256:")
    assert rec.skipped == 0 and not rec.torn_tail
    users = {r.usename for s in rec.snapshots for r in s.activity}
    assert "oltp_rw_user" in users
    # jq reads it: every line is one JSON object
    import gzip

    lines = gzip.decompress(recording.read_bytes()).decode("ascii").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert json.loads(lines[1])["name"] in rec.header.clusters


def test_no_token_or_secret_reaches_a_recording(recording: Path, sandbox_env: dict[str, str]) -> None:
    import gzip

    text = gzip.decompress(recording.read_bytes()).decode("ascii")
    for needle in ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Action=connect"):
        assert needle not in text
    for key in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if sandbox_env.get(key):
            assert sandbox_env[key] not in text


def test_bad_input_is_one_line_exit_2(tmp_path: Path, sandbox: Sandbox, sandbox_env: dict[str, str]) -> None:
    env = _env(sandbox, sandbox_env, tmp_path)
    cases = [
        (["record", str(tmp_path / "r.jsonl"), "--duration", "soon"], "not a duration"),
        (["record", str(tmp_path / "r.jsonl"), "--cluster", "nope"], "no cluster named 'nope'"),
        (["record", str(tmp_path / "missing-dir" / "r.jsonl")], "cannot write"),
        (["replay", str(tmp_path / "none.jsonl")], "no such file"),
    ]
    for args, needle in cases:
        done = subprocess.run([str(BINARY), *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_replay_in_a_terminal_steps_through_time_and_survives_a_cut(
    recording: Path, tmux: Tmux, tmp_path: Path, sandbox: Sandbox
) -> None:
    import gzip

    # a copy cut in the middle of its last line, as a crash mid-write would leave it (uncompressed here)
    plain = gzip.decompress(recording.read_bytes())
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(plain[: len(plain) - 100])
    env = {"TERM": "xterm-256color", "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    tmux.start(BINARY, env, width=160, height=45, args=["replay", str(cut)])
    wait("the replay to start", lambda: "REPLAY" in tmux.screen(), 60)
    assert "skipped 1 torn line" in tmux.screen()
    wait("the recorded clusters in the list", lambda: "pgdemo" in tmux.screen(), 30)
    # the activity pane's title counts the recorded sessions shown ("12/16 sessions")
    wait("recorded sessions on screen", lambda: _sessions_shown(tmux.screen()) > 0 or _step(tmux), 60)
    total = int(_moment(tmux.screen())[1])
    tmux.run("send-keys", "-t", "ui", ">")
    wait("the last moment", lambda: _moment(tmux.screen())[0] == str(total), 30)
    tmux.run("send-keys", "-t", "ui", "[")
    wait("one moment back", lambda: _moment(tmux.screen())[0] == str(total - 1), 30)
    tmux.run("send-keys", "-t", "ui", "q")
    wait("replay to exit", lambda: tmux.exit_status() is not None, 60)
    assert tmux.exit_status() == 0
    assert tmux.fmt("#{alternate_on}") == "0"


def _sessions_shown(screen: str) -> int:
    import re

    found = re.search(r"(\d+)/\d+ sessions", screen)
    return int(found.group(1)) if found else 0


def _step(tmux: Tmux) -> bool:
    tmux.run("send-keys", "-t", "ui", "]")
    return False


def _moment(screen: str) -> tuple[str, str]:
    import re

    found = re.search(r"moment (\d+)/(\d+)", screen)
    assert found, screen
    return found.group(1), found.group(2)
