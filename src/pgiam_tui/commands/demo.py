"""`pgiam-tui demo`: the local sandbox (with its workload) and the console on it, in one command.

The sandbox runs in a temporary directory; its environment (AWS config files, endpoints, CA) is exported
into this process so the console's boto3 and psycopg use it. Quitting the console stops everything.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_AWS_OVERRIDES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
)


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
    import logging
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from pgiam_tui.sandbox import Sandbox, SandboxError

    if args.clusters < 1:
        print("pgiam-tui demo: --clusters must be at least 1", file=sys.stderr)
        return 2
    # moto's in-process server logs each AWS action it lacks with a traceback on stderr (through a handler
    # made before the console starts, so Textual's capture misses it): it would draw over the console.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix="pgiam-demo-"))
    sandbox = Sandbox(root, clusters=args.clusters, workload=True)
    print(f"pgiam-tui demo: starting the sandbox in {root} …", file=sys.stderr, flush=True)
    saved = dict(os.environ)
    try:
        try:
            sandbox.start()
        except SandboxError as exc:
            print(f"pgiam-tui demo: sandbox did not start: {exc}", file=sys.stderr)
            return 1
        # A developer's own AWS variables would override the sandbox's files (as in env.sh's users' shells).
        for name in _AWS_OVERRIDES:
            os.environ.pop(name, None)
        os.environ.update(sandbox.env)
        from pgiam_tui.commands.console import load, run_console

        config = load(str(sandbox.profiles_toml))
        if config is None:
            return 2
        # A private credential cache: assumed-role keys cached by an earlier demo (another moto) in
        # ~/.aws/cli/cache would otherwise be reused and rejected.
        return run_console(config, cache_dir=root / "aws-cli-cache")
    finally:
        sandbox.stop()
        os.environ.clear()
        os.environ.update(saved)
        if args.keep_dir:
            print(f"pgiam-tui demo: sandbox files kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
