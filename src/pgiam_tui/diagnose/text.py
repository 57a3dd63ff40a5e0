"""Plain-text hygiene for strings that come from servers, logs or exceptions (the check's policy)."""

from __future__ import annotations

from pgiam_tui import textsafe


def visible(text: str, limit: int = 500) -> str:
    """TEXT on one line with control characters shown as escapes (\\n, \\x1b...), cut at LIMIT characters."""
    return textsafe.visible(text, limit=limit)
