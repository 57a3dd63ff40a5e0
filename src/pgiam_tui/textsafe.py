"""Untrusted text made safe to show: the one cleaner for every output (UI, CLI text, JSON, log lines).

Query text, application names, user names, log lines and AWS error messages are attacker-controllable. Shown
raw, an ESC/CSI sequence moves the cursor or recolours the screen, an OSC one retitles the terminal or writes
the clipboard, a C1 control (0x9b is an 8-bit CSI) does the same on terminals that honour them, a bidi
override reorders what the reader sees, and invisible characters (soft hyphen, tag characters, Hangul
fillers) hide or smuggle text. `visible` shows every such character as an escape instead.

One form, and it cannot be imitated. Every unsafe character becomes a backslash escape (`\\t`, `\\n`, `\\r`,
`\\xNN` below U+0100, `\\uNNNN`, `\\UNNNNNNNN`), and a literal backslash becomes `\\\\`. So a backslash in
the output always starts an escape written by us: a user name that literally reads `\\x1b[2J` is shown as
`\\\\x1b[2J`, never like the ESC it imitates, and two different texts never look the same (in the "escape"
and "keep_lines" layouts; "space" folds whitespace on purpose). The price is that a query's own `\\d` shows
as `\\\\d`; the forms Python and JSON readers already know were chosen over control pictures (`␛`), which
literal text can imitate. The corollary: text is cleaned exactly once, where it is shown. The model keeps
what the server said; a second pass would double every backslash.

JSON output (`to_json`) is the same idea in JSON's own escapes: `ensure_ascii`, plus DEL (JSON leaves it).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import unicodedata
from typing import Literal, TextIO

__all__ = [
    "ELLIPSIS",
    "Layout",
    "VisibleStderrHandler",
    "clip",
    "install_log_handler",
    "is_unsafe",
    "to_json",
    "visible",
]

ELLIPSIS = "…"

#: What happens to tab, line feed and carriage return: "escape" (\t \n \r: one line that shows them),
#: "space" (each becomes a space: one readable line), "keep_lines" (tab and LF kept as they are, CR escaped:
#: a CR alone can overwrite what was printed before it on the line).
Layout = Literal["escape", "space", "keep_lines"]

# C0/C1 controls and DEL (Cc), format characters such as bidi overrides/isolates, zero-width joiners,
# U+061C, U+00AD, U+180E, U+FFF9..FFFB and tag characters (Cf), line/paragraph separators (Zl, Zp),
# lone surrogates (Cs).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Characters of other categories that render as nothing and are used to hide or spoof text: the whole tag
# block (its unassigned code points too), the combining grapheme joiner, Khmer inherent vowels, Mongolian
# variation selectors, Hangul fillers.
_INVISIBLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0}
    | set(range(0xE0000, 0xE0080))
)
# What str.isprintable() lets through but we escape: the backslash (see above) and the printable invisibles.
_PRINTABLE_UNSAFE = re.compile(
    "[\\\\" + "".join(re.escape(chr(c)) for c in sorted(_INVISIBLE) if chr(c).isprintable()) + "]"
)
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def is_unsafe(ch: str) -> bool:
    """Whether the single character CH must not reach a terminal as it is."""
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES or ord(ch) in _INVISIBLE


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _pieces(text: str, layout: Layout) -> list[str]:
    """TEXT as shown, one piece per input character (so a cut never splits an escape)."""
    out: list[str] = []
    for ch in text:
        if ch in "\t\n\r":
            if layout == "space":
                out.append(" ")
            elif layout == "keep_lines" and ch != "\r":
                out.append(ch)
            else:
                out.append(_escape(ch))
        elif ch == "\\" or is_unsafe(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return out


def visible(text: str, *, limit: int | None = None, layout: Layout = "escape") -> str:
    """TEXT with every unsafe character (see `is_unsafe`) and every backslash shown as an escape.

    Tab, LF and CR follow LAYOUT. With LIMIT, the result is cut to at most LIMIT characters, ending in "…";
    the cut falls between escapes, never inside one.
    """
    # str.isprintable() is a fast C check, False for every unsafe category (and for a few harmless
    # characters, such as non-ASCII spaces, which the walk leaves alone); the regex finds the rest.
    if text.isprintable() and _PRINTABLE_UNSAFE.search(text) is None:
        if limit is not None and len(text) > limit:
            return text[: max(0, limit - 1)] + ELLIPSIS
        return text
    pieces = _pieces(text, layout)
    if limit is None:
        return "".join(pieces)
    kept: list[str] = []
    used = 0
    total = sum(len(p) for p in pieces)
    budget = limit if total <= limit else max(0, limit - 1)
    for piece in pieces:
        if used + len(piece) > budget:
            return "".join(kept) + ELLIPSIS
        kept.append(piece)
        used += len(piece)
    return "".join(kept)


def to_json(value: object, *, indent: int | None = None) -> str:
    """VALUE as JSON that is safe on a terminal: every non-ASCII character and every control escaped."""
    # ensure_ascii escapes C0, C1, bidi and everything non-ASCII as \\uXXXX; DEL is ASCII and left raw.
    return json.dumps(value, indent=indent, ensure_ascii=True).replace("\x7f", "\\u007f")


def clip(text: str, limit: int = 500) -> str:
    """TEXT cut to at most LIMIT characters, ending in "…": for messages kept in results, not escaped here
    (that happens once, where they are shown)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


class VisibleStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log records on stderr (WARNING and up), escaped like every other output: what Python's last-resort
    handler does when nothing is configured, but a server's message in a log line cannot drive the terminal.

    The stream is looked up at each record, as the last-resort handler does, so whoever redirects sys.stderr
    (Textual while the console runs, pytest) receives the lines.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self, logging.WARNING)

    @property
    def stream(self) -> TextIO:
        """Always the current sys.stderr."""
        return sys.stderr

    def format(self, record: logging.LogRecord) -> str:
        """One escaped line: the message and, when the record carries an exception, its type and text.
        Never a traceback (a library's warning with exc_info, e.g. botocore's failed credential refresh,
        must not print a stack over the user's terminal)."""
        text = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text = f"{text}: {type(exc).__name__}: {exc}"
        return visible(text, layout="keep_lines")


def install_log_handler() -> None:
    """Send the program's log records through `VisibleStderrHandler`, unless logging is already configured
    (a host application, or pytest's capture), which then stays in charge."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(VisibleStderrHandler())
