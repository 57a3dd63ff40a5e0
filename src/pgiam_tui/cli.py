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
from typing import Any

COMMANDS = (
    "check", "snapshot", "events", "token", "profiles", "discover", "config", "password",
    "record", "replay", "serve", "sandbox", "demo",
)  # fmt: skip


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ARGV, only the subcommand ARGV names is registered (start-up time: each
    command module is imported to register it), every one when ARGV names none or asks for help."""
    parser = argparse.ArgumentParser(
        prog="pgiam-tui",
        description="Watch RDS / Aurora PostgreSQL clusters with IAM database authentication.",
    )
    parser.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _commands_to_register(argv) if argv is not None else COMMANDS:
        module = importlib.import_module(f"pgiam_tui.commands.{name}")
        module.register(sub)
    _accept_config_everywhere(parser)
    return parser


_CONFIG_HELP = "profiles.toml (else $PGIAM_TUI_CONFIG, else the config dir)"


def _commands_to_register(argv: Sequence[str]) -> tuple[str, ...]:
    """The subcommands ARGV needs registered: the one it names; none when it names none (the console);
    every one for a top-level `--help` or a name that is no command (argparse then lists them all)."""
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            next(args, None)  # its value, whatever it looks like
        elif arg in ("-h", "--help"):
            return COMMANDS
        elif not arg.startswith("-"):
            return (arg,) if arg in COMMANDS else COMMANDS
    return ()


class _VersionAction(argparse.Action):
    """`--version`: the installed version, looked up only when asked for (importlib.metadata scans every
    installed distribution: tens of milliseconds on every start otherwise)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("nargs", None)
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"pgiam-tui {_version()}\n")  # on stdout, as argparse's own version action
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pgiam-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _accept_config_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` after the subcommand too (`pgiam-tui check NAME --config F`), in every subparser;
    absent there, it leaves the global one alone (SUPPRESS)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in dict.fromkeys(action.choices.values()):
            if not any("--config" in a.option_strings for a in child._actions):
                child.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=_CONFIG_HELP)
            _accept_config_everywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the command's status."""
    from pgiam_tui.textsafe import install_log_handler

    install_log_handler()  # log lines are an output too: escaped like the rest
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
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
