"""`pgiam-tui demo`: the local sandbox (with its workload) and the console on it, in one command.

The sandbox runs in a temporary directory; its environment (AWS config files, endpoints, CA) is exported
into this process so the console's boto3 and psycopg use it. Quitting the console stops everything.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pgiam_tui.commands._cliutil import missing_sandbox


def register(subparsers: Any) -> None:
    """Add the `demo` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="start the sandbox with its workload and open the console on it",
        description="Local AWS + RDS stand-in with a workload, and the console watching it. "
        "Quit the console (q) to stop everything.",
    )
    p.add_argument("--clusters", type=int, default=3, metavar="N", help="Aurora clusters (default 3)")
    p.add_argument("--keep-dir", action="store_true", help="keep the sandbox directory after quitting")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, run the console on its profiles.toml, stop the sandbox on exit."""
    import shutil
    import tempfile
    from pathlib import Path

    try:
        from pgiam_sandbox import Sandbox, SandboxError
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("pgiam_sandbox"):
            raise
        print(missing_sandbox("demo"), file=sys.stderr)
        return 2
    from pgiam_sandbox.environment import exported

    if args.clusters < 1:
        print("pgiam-tui demo: --clusters must be at least 1", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="pgiam-demo-"))
    sandbox = Sandbox(root, clusters=args.clusters, workload=True)
    print(f"pgiam-tui demo: starting the sandbox in {root} …", file=sys.stderr, flush=True)
    try:
        try:
            sandbox.start()
        except SandboxError as exc:
            print(f"pgiam-tui demo: sandbox did not start: {exc}", file=sys.stderr)
            return 1
        from pgiam_tui.commands.console import load, run_console

        # The sandbox's env also points the credential cache at its own dir (PGIAM_TUI_AWS_CLI_CACHE) and
        # its moto sends werkzeug's messages to DIR/moto.log, not over the console.
        with exported(sandbox.env):
            config = load(str(sandbox.profiles_toml))
            if config is None:
                return 2
            return run_console(config)
    finally:
        sandbox.stop()
        if args.keep_dir:
            print(f"pgiam-tui demo: sandbox files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
