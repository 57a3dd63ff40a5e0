"""`pgiam-tui config example|path`: the documented example config, and where the config is looked for.

A pip user has no source checkout: `config example > ~/.config/pgiam-tui/profiles.toml` is how they start
(or `discover --write`, which finds their clusters).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `config` command."""
    parser = subparsers.add_parser(
        "config",
        help="print the documented example config, or where the config is looked for",
        description="`config example` prints profiles.example.toml (every key documented); "
        "`config path` prints the config file this run would read.",
    )
    parser.add_argument("action", choices=("example", "path"), help="what to print")
    parser.set_defaults(func=run)


def example_text() -> str:
    """The documented example config shipped with the package."""
    from importlib.resources import files

    return files("pgiam_tui").joinpath("profiles.example.toml").read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """Exit 0."""
    if args.action == "example":
        print(example_text(), end="")
        return 0
    from pgiam_tui.config import resolve_config_path

    print(resolve_config_path(args.config))
    return 0
