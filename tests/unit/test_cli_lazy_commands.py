"""The CLI registers (imports) only the command it runs: start-up time of `check`, `snapshot`, `token`."""

from __future__ import annotations

import argparse

import pytest

from pgiam_tui.cli import COMMANDS, _commands_to_register, build_parser

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["check", "pgdemo-1"], ("check",)),
        (["--config", "check", "snapshot"], ("snapshot",)),  # "check" here is the config file's name
        (["--config=profiles.toml", "token", "x"], ("token",)),
        (["snapshot", "--help"], ("snapshot",)),  # the command's own help
        ([], ()),  # the console
        (["--config", "f.toml"], ()),
        (["--help"], COMMANDS),
        (["-h", "check"], COMMANDS),
        (["chek", "x"], COMMANDS),  # a typo: argparse lists the real ones
    ],
)
def test_which_commands_are_registered(argv: list[str], expected: tuple[str, ...]) -> None:
    assert _commands_to_register(argv) == expected


def test_a_parser_for_one_command_still_parses_it_and_the_full_one_knows_all() -> None:
    args = build_parser(["check", "pgdemo-1"]).parse_args(["check", "pgdemo-1", "--json"])
    assert (args.command, args.name, args.json) == ("check", "pgdemo-1", True)
    with pytest.raises(SystemExit):  # only `check` was registered
        build_parser(["check", "x"]).parse_args(["snapshot"])
    assert _registered(build_parser()) == set(COMMANDS)
    assert _registered(build_parser(["check", "x"])) == {"check"}


def _registered(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)
