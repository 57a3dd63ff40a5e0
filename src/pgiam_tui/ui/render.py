"""Safe rendering of untrusted text, plus small formatters shared by the widgets.

Every string that comes from a database, a log line or AWS is attacker-controllable (query text,
application_name, user names, log messages). It is always turned into a `rich.text.Text` through
`safe_text` -- never passed to anything that parses markup -- and its control characters are made
visible by `pgiam_tui.textsafe` (the one cleaner, same escapes as the CLI), so an ESC sequence cannot move
the cursor, retitle the terminal (OSC) or hide text, and a bidi override cannot reorder what the DBA reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.style import Style, StyleType
from rich.text import Text

from pgiam_tui.textsafe import visible


def safe_text(
    s: str | None,
    max_len: int | None = None,
    *,
    style: StyleType = "",
    multiline: bool = False,
    none: str = "",
) -> Text:
    """Untrusted `s` as a plain `Text` (never markup), controls made visible, cut at `max_len` with "…"."""
    if s is None:
        return Text(none, style="dim")
    shown = visible(s, limit=max_len, layout="keep_lines" if multiline else "escape")
    # Text(...) stores the string as-is: no markup parsing, no emoji codes.
    return Text(shown, style=style, no_wrap=not multiline, end="")


class CellText(Text):
    """The Text of one table cell: one line, one style, no spans, already cut to length.

    Rich's Text rendering (wrapping, justification, span division) costs about 3x the rest of a
    DataTable cell's rendering; a cell never needs it, so this yields its one segment directly.
    DataTable still pads and crops the line to the column width (by cell width, so wide characters
    are handled).
    """

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        style = self.style
        if isinstance(style, str):
            yield Segment(self.plain, console.get_style(style) if style else None)
        else:
            yield Segment(self.plain, style)


class SortCell:
    """A table cell: already-safe plain text, a style and its own sort key (DataTable.sort only sees cells).

    The base of the two kinds of cells: `TextCell` (fixed values, made by `cell`) and the activity table's
    live cells, whose values are computed only when a row is drawn. Deliberately not a Text: building a
    rich Text per cell dominated a 10,000-row update; the Text is made only when the DataTable renders
    the cell (visible rows), via __rich__. `plain` is never markup.
    """

    __slots__ = ()

    @property
    def plain(self) -> str:
        """The text shown (controls already made visible)."""
        raise NotImplementedError

    @property
    def sort_key(self) -> Any:
        """What sorting compares (comparable with the other cells' keys of its column)."""
        raise NotImplementedError

    @property
    def style(self) -> str | Style:
        """The Rich style of the whole cell."""
        raise NotImplementedError

    def __rich__(self) -> Text:
        """The cell as plain Text (no markup parsing)."""
        return CellText(self.plain, style=self.style, no_wrap=True, end="")

    def __str__(self) -> str:
        return self.plain

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.plain!r}, {self.sort_key!r}, {self.style!r})"


class TextCell(SortCell):
    """A cell with fixed text, sort key and style."""

    __slots__ = ("plain", "sort_key", "style")

    def __init__(self, text: str, sort_key: object, style: str | Style = "") -> None:
        self.plain = text  # type: ignore[misc]  # a slot in place of the base's read-only property
        self.sort_key = sort_key  # type: ignore[misc]
        self.style = style  # type: ignore[misc]


def cell(
    s: str | None, sort_key: object | None = None, *, style: str = "", max_len: int | None = None
) -> SortCell:
    """A safe DataTable cell (plain text, controls visible) with a sort key (defaults to the text)."""
    shown = "" if s is None else visible(s, limit=max_len)
    if sort_key is None:
        sort_key = (1, shown.lower()) if s is not None else (0, "")
    return TextCell(shown, sort_key, style)


def num_key(value: float | int | None) -> tuple[int, float]:
    """Sort key for an optional number: missing values first (ascending)."""
    return (0, 0.0) if value is None else (1, float(value))


def fmt_duration(seconds: float | None) -> str:
    """Compact duration: 0.4s, 12s, 3m05s, 2h03m, 3d04h."""
    if seconds is None:
        return ""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def fmt_countdown(until: datetime | None, now: datetime) -> str:
    """Time left until `until` as m:ss ("expired" when past, "" when unknown)."""
    if until is None:
        return ""
    left = until - now
    if left <= timedelta(0):
        return "expired"
    total = int(left.total_seconds())
    minutes, sec = divmod(total, 60)
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{minutes}:{sec:02d}"


def fmt_time(value: datetime | None) -> str:
    """HH:MM:SS in UTC (the RDS log prefix is in UTC too)."""
    if value is None:
        return ""
    return value.strftime("%H:%M:%S")


def fmt_datetime(value: datetime | None) -> str:
    """Full timestamp for the detail screen."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def fmt_ago(value: datetime | None, now: datetime) -> str:
    """'5m ago' style relative time."""
    if value is None:
        return "never"
    return fmt_duration((now - value).total_seconds()) + " ago"
