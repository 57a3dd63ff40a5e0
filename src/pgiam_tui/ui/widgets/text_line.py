"""A one-line text widget whose updates repaint it without re-laying-out the screen.

Static.update() asks for a layout refresh on every call; a pane title or the top bar changes every
round (counts, ages), and a layout refresh of the whole screen per round was a large part of the
console's CPU. This line has a fixed height of 1, so its text can change with a plain repaint, and
only when it really changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.css.scalar import Unit
from textual.widget import Widget
from textual.widgets import Static


class TextLine(Widget):
    """One line of (already safe) rich Text; `set` repaints only when the text changed."""

    DEFAULT_CSS = """
    TextLine {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, text: Text | str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text(text) if isinstance(text, str) else text

    @property
    def text(self) -> Text:
        """What the line shows."""
        return self._text

    def set(self, text: Text) -> None:
        """Show `text` (a repaint of this line only, and none when nothing changed)."""
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        """The text, cut at the edge rather than wrapped."""
        return self._text


def same_text(a: object, b: Text) -> bool:
    """A and B would draw the same: same characters, same spans, same base style (rich's `==` leaves
    the base style out)."""
    return isinstance(a, Text) and a.plain == b.plain and a.spans == b.spans and a.style == b.style


def update_static(static: Static, text: Text) -> None:
    """`static.update(text)` only when the text changed: each update re-lays-out the whole screen, and
    most rounds change nothing in a pane's title or summary. A Static of fixed height repaints alone."""
    if same_text(static.content, text):
        return
    height = static.styles.height
    fixed = height is not None and height.unit == Unit.CELLS
    static.update(text, layout=not fixed)
