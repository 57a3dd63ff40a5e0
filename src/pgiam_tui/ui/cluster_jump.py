"""Type-to-jump in the cluster list: `'`, then the first letters of a cluster's name (or any part of it).

No timeout (what a slow typist at 3 a.m. needs): name characters (letters, digits, `-`, `_`, `.`, `:`)
extend what was typed and Backspace shortens it, the cursor following at each key; Enter keeps the cluster
found, Esc goes back to the one selected before, and any other key (arrows, Tab, `/`) ends the jump and then
does its usual work. A name that starts with the text wins over one that merely contains it; among equals,
the one higher in the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

from pgiam_tui.textsafe import visible

NAME_PUNCTUATION = frozenset("-_.:")
PROMPT_STYLE = "bold reverse"


def find_cluster(names: Sequence[str], typed: str) -> str | None:
    """The first of NAMES starting with TYPED (case-insensitive), else the first containing it."""
    if not typed:
        return None
    wanted = typed.casefold()
    folded = [(n, n.casefold()) for n in names]
    starts = next((n for n, f in folded if f.startswith(wanted)), None)
    if starts is not None:
        return starts
    return next((n for n, f in folded if wanted in f), None)


def is_name_character(character: str | None) -> bool:
    """Whether a typed character extends the name (letters, digits, - _ . :)."""
    if character is None or len(character) != 1:
        return False
    return character.isalnum() or character in NAME_PUNCTUATION


@dataclass(frozen=True, slots=True)
class JumpOutcome:
    """What one key did: whether the jump used it, whether the jump is over, where the cursor goes."""

    consumed: bool
    done: bool
    target: str | None = None


class ClusterJump:
    """One jump in progress over the list's NAMES (in list order); BEFORE is the cluster selected before."""

    def __init__(self, names: Sequence[str], before: str | None) -> None:
        self.names = list(names)
        self.before = before
        self.typed = ""
        self.found: str | None = None

    def key(self, key: str, character: str | None) -> JumpOutcome:
        """Handle one key (Textual's key name and the character it types, if any)."""
        if key == "escape":
            return JumpOutcome(True, True, self.before)
        if key == "enter":
            return JumpOutcome(True, True)
        if key == "backspace":
            self.typed = self.typed[:-1]
            self.found = find_cluster(self.names, self.typed)
            return JumpOutcome(True, False, self.found or (self.before if not self.typed else None))
        if is_name_character(character):
            self.typed += character or ""
            self.found = find_cluster(self.names, self.typed)
            return JumpOutcome(True, False, self.found)
        return JumpOutcome(False, True)

    def prompt(self) -> Text:
        """The header line while typing: `jump: ord▏ → orders-prod`, or why nothing moved."""
        text = Text(no_wrap=True, end="")
        text.append(" jump: ", style=PROMPT_STYLE)
        text.append(self.typed + "▏", style="bold")
        if not self.typed:
            text.append(" type a name · Enter · Esc", style="dim")
        elif self.found is None:
            text.append(" no match", style="bold red")
        else:
            text.append(" → ")
            text.append(visible(self.found), style="bold")
        return text
