"""Entry point `pgiam-tui`: the TUI by default; subcommands live in `pgiam_tui.commands.*`.

Each command module exposes `register(subparsers)` that adds its parser and sets `func=run`,
where `run(args) -> int` returns the exit code. Errors the user can fix are printed as one line,
never a traceback (exit 2 for usage/config errors, 1 for "did not connect / did not answer").
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = (
    "check", "snapshot", "token", "profiles", "discover", "password", "record", "replay", "sandbox", "demo",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="pgiam-tui",
        description="Watch RDS / Aurora PostgreSQL clusters with IAM database authentication.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="profiles.toml (else $PGIAM_TUI_CONFIG, else the config dir)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"pgiam_tui.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the command's status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        from pgiam_tui.commands import console

        func = console.run
    try:
        code = int(func(args))
    except KeyboardInterrupt:
        code = 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
