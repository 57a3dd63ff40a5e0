"""The one error base class: what went wrong (one line), where (the step) and what to do (the hint).

Config, AWS, database and check errors derive from it, so every command prints them the same way
(`pgiam-tui: MESSAGE (hint: HINT)`, exit 2 or 1) and the console and `--json` carry the same three fields.
Nothing here imports anything of ours: it is part of the shared vocabulary.
"""

from __future__ import annotations

from typing import ClassVar


class PgiamError(Exception):
    """A failure the user can act on. str() is MESSAGE; never carries a token or password."""

    #: the step reported when the raiser names none (each subclass names its own)
    default_step: ClassVar[str] = "error"

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or ""
        self.step = step or self.default_step

    def __str__(self) -> str:
        return self.message
