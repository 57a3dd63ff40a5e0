"""A pane with a table and a one-line filter input: `/` opens it, Enter applies, Esc closes."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events
from textual.containers import Vertical
from textual.widgets import Input

from pgiam_tui.textsafe import visible


class FilterablePane(Vertical):
    """Shared filter-input behaviour of the activity and events panes.

    Subclasses name their input (FILTER_INPUT_ID), give the current filter's text, apply a new one
    (raising ValueError with a one-line message for a bad expression), and redraw their title.
    """

    FILTER_INPUT_ID: ClassVar[str]

    @property
    def table(self) -> Any:
        """The pane's table (must offer reapply() and focus())."""
        raise NotImplementedError

    def current_filter_text(self) -> str:
        """The text of the filter in force."""
        raise NotImplementedError

    def set_filter(self, text: str) -> None:
        """Parse and apply TEXT; ValueError (one line) when it is not a valid filter."""
        raise NotImplementedError

    def _update_title(self) -> None:
        raise NotImplementedError

    def _filter_input(self) -> Input:
        return self.query_one(f"#{self.FILTER_INPUT_ID}", Input)

    def open_filter(self) -> None:
        """Show and focus the filter input."""
        inp = self._filter_input()
        inp.value = self.current_filter_text()
        inp.display = True
        inp.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply the filter (a bad expression is a one-line notice, the old filter stays)."""
        if event.input.id != self.FILTER_INPUT_ID:
            return
        event.stop()
        try:
            self.set_filter(event.value)
        except ValueError as exc:
            self.notify(visible(str(exc)), severity="error", markup=False)
            return
        event.input.display = False
        self.table.reapply()
        self.table.focus()
        self._update_title()

    def on_key(self, event: events.Key) -> None:
        """Escape in the filter input closes it."""
        inp = self._filter_input()
        if event.key == "escape" and inp.has_focus:
            inp.display = False
            self.table.focus()
            event.stop()
