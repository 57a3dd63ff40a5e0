"""Plain-text hygiene for strings that come from servers, logs or exceptions."""

from __future__ import annotations

import unicodedata


def visible(text: str, limit: int = 500) -> str:
    """TEXT on one line with control characters shown as escapes (\\n, \\x1b...), cut at LIMIT characters."""
    out: list[str] = []
    for ch in text:
        if ch in "\r\n\t":
            out.append({"\r": "\\r", "\n": "\\n", "\t": "\\t"}[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    flat = "".join(out)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
