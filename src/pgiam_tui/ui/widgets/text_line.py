"""A one-line text widget whose updates repaint it without re-laying-out the screen.

Static.update() asks for a layout refresh on every call; a pane title or the top bar changes every
round (counts, ages), and a layout refresh of the whole screen per round was a large part of the
console's CPU. This line has a fixed height of 1, so its text can change with a plain repaint, and
only when it really changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


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
