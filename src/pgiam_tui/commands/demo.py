"""`pgiam-tui demo`: the local sandbox (with its workload) and the console on it, in one command.

The sandbox runs in a temporary directory; its environment (AWS config files, endpoints, CA) is exported
into this process so the console's boto3 and psycopg use it. Quitting the console, closing the terminal
(SIGHUP), SIGTERM or SIGINT stop everything: the PostgreSQL servers by the pids the sandbox holds, then its
directory is removed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgiam_tui.commands._cliutil import missing_sandbox
from pgiam_tui.commands._signals import ExitSignals, exit_code, leave_terminal_program, say

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox


def register(subparsers: Any) -> None:
    """Add the `demo` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="start the sandbox with its workload and open the console on it",
        description="Local AWS + RDS stand-in with a workload, and the console watching it. "
        "Quit the console (q), close the terminal or send SIGTERM to stop everything.",
    )
    p.add_argument("--clusters", type=int, default=3, metavar="N", help="Aurora clusters (default 3)")
    p.add_argument("--keep-dir", action="store_true", help="keep the sandbox directory after quitting")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, run the console on its profiles.toml, stop the sandbox on exit or on a signal."""
    try:
        from pgiam_sandbox import Sandbox
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("pgiam_sandbox"):
            raise
        print(missing_sandbox("demo"), file=sys.stderr)
        return 2
    if args.clusters < 1:
        print("pgiam-tui demo: --clusters must be at least 1", file=sys.stderr)
        return 2
    # Handlers before anything is started: SIGTERM/SIGHUP/SIGINT at any moment end in _stop below.
    with ExitSignals() as signals:
        root = Path(tempfile.mkdtemp(prefix="pgiam-demo-"))
        sandbox = Sandbox(root, clusters=args.clusters, workload=True)
        try:
            code = _start_and_watch(sandbox, root, signals)
        finally:
            _stop(sandbox, root, keep_dir=args.keep_dir)
        return leave_terminal_program(code)


def _start_and_watch(sandbox: Sandbox, root: Path, signals: ExitSignals) -> int:
    from pgiam_sandbox import SandboxError
    from pgiam_sandbox.environment import exported

    from pgiam_tui.commands.console import load, run_console

    say(f"pgiam-tui demo: starting the sandbox in {root} …")
    try:
        sandbox.start()
    except SandboxError as exc:
        say(f"pgiam-tui demo: sandbox did not start: {exc}")
        return 1
    if signals.received is not None:
        say(f"pgiam-tui demo: {signals.name} received while starting; not opening the console")
        return exit_code(signals.received)
    # The sandbox's env also points the credential cache at its own dir (PGIAM_TUI_AWS_CLI_CACHE) and
    # its moto sends werkzeug's messages to DIR/moto.log, not over the console.
    with exported(sandbox.env):
        config = load(str(sandbox.profiles_toml))
        if config is None:
            return 2
        code = run_console(config, signals=signals)
    if signals.received is not None:
        say(f"pgiam-tui demo: {signals.name} received; quitting")
    return code


def _stop(sandbox: Sandbox, root: Path, *, keep_dir: bool) -> None:
    """Stop every process, thread and socket of the sandbox (by what it holds), saying so; remove ROOT."""
    servers = sum(len(c.instances) for c in sandbox.clusters)
    what = f"{servers} PostgreSQL servers, front doors, workload, fake AWS" if servers else "what started"
    say(f"pgiam-tui demo: stopping the sandbox ({what}) …")
    began = time.monotonic()
    sandbox.stop()
    if keep_dir:
        say(f"pgiam-tui demo: stopped in {time.monotonic() - began:.1f}s; files kept in {root}")
        return
    shutil.rmtree(root, ignore_errors=True)
    left = " (some files could not be removed)" if root.exists() else ""
    say(f"pgiam-tui demo: stopped in {time.monotonic() - began:.1f}s; removed {root}{left}")
