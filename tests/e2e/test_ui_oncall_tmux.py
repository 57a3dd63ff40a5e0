"""The real `pgiam-tui` binary in tmux (80x24, 120x40, 200x50): type-to-jump in the cluster list (`'`) and the
query display (`v`), on a recording (`pgiam-tui replay`: the console itself, no servers needed).

`X` needs a live cluster: tests/integration/test_idle_tx_terminate.py drives it against a real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgiam_devtools.sample import LONG_NAMES, long_named, sample_snapshots, session

from helpers.tmux import Tmux, wait  # the `tmux` fixture: tests/conftest.py
from pgiam_tui.recording import FORMAT, RecordingHeader, RecordingWriter

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]
BINARY = Path(sys.executable).with_name("pgiam-tui")
START = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
FORMATTED = (
    "SELECT o.id, o.qty\n"
    "FROM pgdemo.orders o\n"
    "WHERE o.status IN ('open', 'paid', 'shipped', 'returned', 'lost', 'found', 'refunded')\n"
    "ORDER BY o.created_at DESC LIMIT 100"
)


def _recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl.gz"
    snaps = long_named(sample_snapshots())
    long_one = session(snaps[0].instances[0].id, 4190, "oltp_ro_user", "active", FORMATTED, duration_s=900.0)
    first = dataclasses.replace(snaps[0], activity=(*snaps[0].activity, long_one))
    with RecordingWriter(path, RecordingHeader(format=FORMAT, version="test", started_at=START)) as writer:
        for j, snap in enumerate((first, *snaps[1:])):
            writer.write(dataclasses.replace(snap, collected_at=START + timedelta(milliseconds=10 * j)))
    return path


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
def test_jump_and_query_display_on_the_real_binary(tmux: Tmux, tmp_path: Path, size: tuple[int, int]) -> None:
    width, height = size
    env = {"TERM": "xterm-256color", "HOME": str(tmp_path), "PGIAM_TUI_CONFIG": str(tmp_path / "none.toml")}
    tmux.start(BINARY, env, width=width, height=height, args=["replay", str(_recording(tmp_path))])
    ledger = LONG_NAMES["pgdemo-rds"]

    def screen() -> str:
        return tmux.screen()

    wait("the console on the recording", lambda: "Activity" in screen() and "4190" in screen(), detail=screen)
    tmux.run("send-keys", "-t", "ui", ">")  # the last moment: every cluster of the recording is known
    wait("every cluster listed", lambda: "moment 3/3" in screen(), detail=screen)
    # typed as fast as tmux can: no letter may miss the jump or act as a key of its own (g, r)
    tmux.run("send-keys", "-t", "ui", "-l", "'ledg")
    wait("the jump line", lambda: f"jump: ledg▏ → {ledger}" in screen(), detail=screen)
    wait("the panes on the cluster found", lambda: f"Activity — {ledger}" in screen(), detail=screen)
    tmux.run("send-keys", "-t", "ui", "Escape")  # back where it was
    wait("back on the first cluster", lambda: "jump:" not in screen() and "4190" in screen(), detail=screen)

    # rows of the activity pane that hold query text alone (its own column, under its session's row): a
    # truncated display has none (each row starts with its pid). Read before `v` is sent: after it, the
    # screen may already be wrapped (failed that way once in a full run)
    continued = re.compile(r"││ {8,}[A-Za-z('.]")
    assert not continued.search(screen())
    tmux.run("send-keys", "-t", "ui", "v")
    wait("the query wrapped in its column", lambda: len(continued.findall(screen())) >= 2, detail=screen)
    tmux.run("send-keys", "-t", "ui", "v")
    wait("the query as written", lambda: "  FROM pgdemo.orders o" in screen(), detail=screen)
    tmux.run("send-keys", "-t", "ui", "v")
    wait("truncated again", lambda: "  FROM pgdemo.orders o" not in screen(), detail=screen)

    tmux.run("send-keys", "-t", "ui", "q")
    wait("the program to exit", lambda: tmux.exit_status() is not None, 60)
    assert tmux.exit_status() == 0
