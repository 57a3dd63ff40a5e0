"""The one way a hint points at the connection check, so each front end can say it in its own words.

Hints travel in snapshots that both the CLI (`snapshot`) and the console show. They say
"run `pgiam-tui check NAME`" (right in a shell); the console, where the check is one key away, shows the
same hint as "press c" (`for_console`).
"""

from __future__ import annotations

from pgiam_tui.fixquote import shell_word

__all__ = ["check_advice", "for_console"]


def check_advice(cluster: str) -> str:
    """ "run `pgiam-tui check NAME`", NAME quoted for the shell."""
    return f"run `pgiam-tui check {shell_word(cluster)}`"


def for_console(hint: str, cluster: str) -> str:
    """HINT as the console shows it: the check is "press c" there."""
    return hint.replace(check_advice(cluster), "press c (connection check)")
