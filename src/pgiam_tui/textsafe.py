"""Untrusted text made safe to print: the one place that decides which characters are shown as escapes.

Query text, application names, user names, log lines and AWS error messages are attacker-controllable. Printed
raw, an ESC/CSI sequence moves the cursor or recolours the screen, an OSC one retitles the terminal or
writes the clipboard, a C1 control (0x9b is an 8-bit CSI) does the same on terminals that honour them, and
a bidi override reorders what the reader sees. `visible` shows every such character as an escape instead.

Used by the CLI (check, snapshot, profiles, errors), the diagnostics and the log parser. The UI keeps its
own Rich-based rendering (ui/render.py: control pictures such as ␛ rather than backslash escapes).
"""

from __future__ import annotations

import unicodedata
from typing import Literal

__all__ = ["ELLIPSIS", "Layout", "is_unsafe", "visible"]

ELLIPSIS = "…"

#: What happens to tab, line feed and carriage return: "escape" (\t \n \r: one line that shows them),
#: "space" (each becomes a space: one readable line), "keep_lines" (tab and LF kept as they are, CR escaped:
#: a CR alone can overwrite what was printed before it on the line).
Layout = Literal["escape", "space", "keep_lines"]

# C0/C1 controls (Cc), format characters such as bidi overrides/isolates and zero-width joiners (Cf),
# line/paragraph separators (Zl, Zp) and lone surrogates (Cs).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_unsafe(ch: str) -> bool:
    """Whether the single character CH must not reach a terminal as it is."""
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, *, limit: int | None = None, layout: Layout = "escape") -> str:
    """TEXT with every unsafe character (see `is_unsafe`) shown as an escape such as \\x1b or \\u202e.

    Tab, LF and CR follow LAYOUT. With LIMIT, the result is cut to at most LIMIT characters, ending in "…".
    """
    # str.isprintable() is a fast C check, False for every unsafe character (and for a few harmless ones,
    # such as non-ASCII spaces, which the walk below leaves alone).
    if not text.isprintable():
        out: list[str] = []
        for ch in text:
            if ch in "\t\n\r":
                if layout == "space":
                    out.append(" ")
                elif layout == "keep_lines" and ch != "\r":
                    out.append(ch)
                else:
                    out.append(_escape(ch))
            elif ch.isprintable() or not is_unsafe(ch):
                out.append(ch)
            else:
                out.append(_escape(ch))
        text = "".join(out)
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 1)] + ELLIPSIS
    return text
