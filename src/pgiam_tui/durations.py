"""Durations as users write them on the command line and in the config: `90s`, `10m`, `2h`, `1d`, `1h30m`.

One parser for every option that takes a duration (`events --since`, `record --duration`, ...), so the same
spelling works everywhere. A bare number is seconds. Errors are one line naming the bad text and the form.
"""

from __future__ import annotations

import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
FORM = "a duration such as 90s, 10m, 2h, 1d or 1h30m"


class DurationError(ValueError):
    """Text that is not a duration (the message is one line for the user)."""


def parse_duration(text: str) -> float:
    """Seconds in TEXT (`90s`, `10m`, `2h`, `1h30m`, or a bare number of seconds); > 0.

    >>> parse_duration("1h30m")
    5400.0
    """
    raw = text.strip().lower()
    if not raw:
        raise DurationError(f"empty duration: expected {FORM}")
    try:
        seconds = float(raw)
    except ValueError:
        if not _WHOLE.fullmatch(raw):
            raise DurationError(f"not a duration: {text!r} (expected {FORM})") from None
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(raw))
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise DurationError(f"duration must be positive: {text!r} (expected {FORM})")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest spelling parse_duration reads back: 5400 -> `1h30m`, 90 -> `1m30s`, 0.5 -> `500ms`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
