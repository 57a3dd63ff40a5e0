"""How the activity table shows query text (pg_activity's `v`): truncated, wrapped, or full.

- truncated: one line per session, the query cut to its column (the default: most sessions on screen);
- wrapped: the whole query, whitespace folded, wrapped inside the query column (the columns stay aligned);
- full: the whole query as written -- its own line breaks and indentation kept -- on the lines under the
  session's row, across the table's whole width (an ORM's formatted SQL, a long CTE).

Kept apart from the widget: the wrapping and the line <-> row arithmetic are tested without a screen.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Literal, get_args

from rich.cells import cell_len, chop_cells

from pgiam_tui.textsafe import visible

QueryDisplay = Literal["truncated", "wrapped", "full"]
QUERY_DISPLAYS: tuple[QueryDisplay, ...] = get_args(QueryDisplay)
FULL_INDENT = "  "  # the full text's lines start a little in, so rows stay apart at a glance
MAX_QUERY_LINES = 200  # past this a query is cut (the detail screen and `y` have it all)
TAB = "    "


def next_display(mode: QueryDisplay) -> QueryDisplay:
    """The display after MODE (`v` cycles truncated -> wrapped -> full -> truncated)."""
    return QUERY_DISPLAYS[(QUERY_DISPLAYS.index(mode) + 1) % len(QUERY_DISPLAYS)]


def wrap_cells(text: str, width: int) -> list[str]:
    """TEXT (one line, already safe) in lines of at most WIDTH cells, broken at spaces where it can; a word
    longer than a line is cut (by cells: wide characters count two)."""
    if width <= 0:
        return [text]
    body = text.lstrip(" ")
    indent = text[: len(text) - len(body)]
    if indent and len(indent) < width // 2:
        # an indented line of SQL keeps its indentation, on each of its pieces
        return [indent + line for line in wrap_cells(body, width - len(indent))]
    text = body
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_len(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        pieces = chop_cells(word, width) if cell_len(word) > width else [word]
        lines.extend(pieces[:-1])
        line = pieces[-1] if pieces else ""
    lines.append(line)
    return lines


def wrapped_query(query: str | None, width: int) -> tuple[str, ...]:
    """The query folded to one line of words, wrapped to WIDTH cells (at least one line)."""
    if not query:
        return ("",)
    words = visible(query, layout="space").split()
    lines = wrap_cells(" ".join(words), width)
    return tuple(lines[:MAX_QUERY_LINES])


def full_query(query: str | None, width: int) -> tuple[str, ...]:
    """The query as written (line breaks and indentation kept, controls made visible), each of its lines
    wrapped to WIDTH cells after FULL_INDENT; empty for no query."""
    if not query or not query.strip():
        return ()
    text = visible(query.strip("\n"), layout="keep_lines").replace("\t", TAB)
    room = max(1, width - len(FULL_INDENT))
    out: list[str] = []
    for source_line in text.split("\n"):
        out.extend(FULL_INDENT + piece for piece in wrap_cells(source_line.rstrip(), room))
        if len(out) >= MAX_QUERY_LINES:
            break
    return tuple(out[:MAX_QUERY_LINES])


class RowLines:
    """Where each row starts among the table's body lines when rows have several lines.

    `tops[i]` is the first body line of row i; `tops[-1]` the number of body lines. Rebuilt on demand
    after `forget()` (a round, a sort, a resize or a display change)."""

    def __init__(self) -> None:
        self._tops: list[int] | None = None

    def forget(self) -> None:
        """Heights may have changed."""
        self._tops = None

    def tops(self, count: int, height_of: Callable[[int], int]) -> list[int]:
        """Start lines of COUNT rows (plus the end), heights from HEIGHT_OF(index)."""
        if self._tops is None or len(self._tops) != count + 1:
            tops = [0]
            at = 0
            for index in range(count):
                at += max(1, height_of(index))
                tops.append(at)
            self._tops = tops
        return self._tops

    @staticmethod
    def row_at(tops: list[int], line: int) -> tuple[int, int]:
        """(row index, line within the row) of body LINE (past the end: the row count, 0)."""
        if line >= tops[-1]:
            return len(tops) - 1, 0
        index = bisect_right(tops, line) - 1
        return index, line - tops[index]
