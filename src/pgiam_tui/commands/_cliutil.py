"""Small helpers shared by the config+aws commands (token, profiles, discover, password)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pgiam_tui import textsafe

if TYPE_CHECKING:
    from pgiam_tui.config import Config


def fail(message: str, hint: str | None = None) -> None:
    """Print one line on stderr: `pgiam-tui: MESSAGE (hint: HINT)`; control characters made visible."""
    text = message if not hint else f"{message} (hint: {hint})"
    print(f"pgiam-tui: {textsafe.visible(text)}", file=sys.stderr)


def load_cli_config(explicit: str | None) -> Config:
    """The config for a command (raises ConfigError, which commands turn into exit 2)."""
    from pgiam_tui.config import load_config, resolve_config_path

    return load_config(resolve_config_path(explicit))


def terminal_mfa_prompt(prompt: str) -> str:
    """Ask for an MFA code on the terminal (no echo); refuses when there is no terminal."""
    import getpass

    from pgiam_tui.aws.errors import AwsCredentialError

    if not sys.stdin.isatty():
        raise AwsCredentialError(
            f"an MFA code is needed ({prompt.strip().rstrip(':')}) and there is no terminal to ask on",
            "other",
            "run the command in a terminal",
            None,
        )
    return getpass.getpass(prompt).strip()


def missing_sandbox(command: str) -> str:
    """The one line `sandbox` and `demo` print when the stand-in (its own distribution) is missing."""
    return (
        f"pgiam-tui {command}: the local sandbox is not installed; install it with "
        "`pip install -e ./sandbox -e '.[sandbox]'` from a source checkout (or run `make demo`)"
    )
