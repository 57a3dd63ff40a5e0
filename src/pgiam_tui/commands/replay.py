"""`pgiam-tui replay FILE`: the console on a recording made by `pgiam-tui record`, with time travel.

Exit 0 when the user quits, 2 when FILE is not a readable recording (missing, not a recording, or recorded in
a format this version cannot read: the message names both versions). A torn last line is skipped, never fatal.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `replay` command."""
    parser = subparsers.add_parser(
        "replay",
        help="the console on a recording (step, play at 1x/10x, jump to a time); read-only",
        description="Open a recording made by `pgiam-tui record` in the console: ] / [ step a moment, "
        "space plays, 1 / 0 play at 1x / 10x, j jumps to a time. Cancel, terminate and check are disabled.",
    )
    parser.add_argument("file", metavar="FILE", help="a recording (.jsonl, .jsonl.gz, .jsonl.zst)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the recording, then run the replay console until the user quits."""
    from pathlib import Path

    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.recording import RecordingError, read_recording

    try:
        recording = read_recording(Path(args.file))
    except RecordingError as exc:
        fail(str(exc))
        return 2
    if not recording.snapshots:
        fail(f"{args.file}: the recording holds no snapshot yet")
        return 2
    from pgiam_tui.commands._signals import ExitSignals, leave_terminal_program
    from pgiam_tui.ui.replay import ReplayApp

    # As the live console: SIGTERM/SIGHUP/SIGINT and a closed terminal end it through Textual's own exit
    with ExitSignals() as signals:
        code = int(signals.run_app(ReplayApp(recording, str(args.file))) or 0)
    return leave_terminal_program(code)
