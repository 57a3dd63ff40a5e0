"""A pane with a table and a one-line filter input: `/` opens it, the table follows as you type.

Filtering is live: each change of the input (re)starts a short timer and the filter in the input when
it fires is applied, so a fast typist costs one re-filter, not one per key, and no key is lost (the
value applied is always the input's current one). Enter applies at once and closes; Esc closes and
keeps the filter as typed. A filter that does not parse yet (`user:` while typing) leaves the last good
one in force and says why under the input.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input

from pgiam_tui.textsafe import visible

FILTER_DEBOUNCE_S = 0.15  # quiet time after a key before the table re-filters


class FilterablePane(Vertical):
    """Shared filter-input behaviour of the filterable panes.

    Subclasses name their input (FILTER_INPUT_ID), give the current filter's text, apply a new one
    (raising ValueError with a one-line message for a bad expression), and redraw their title.
    """

    FILTER_INPUT_ID: ClassVar[str]

    _debounce: Timer | None = None

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
        inp.border_subtitle = ""
        inp.display = True
        # Focus now, not after the queued keys: Widget.focus() defers to the message queue, so keys
        # typed right after `/` would still go to the table (a filter typed quickly was lost).
        self.screen.set_focus(inp)

    def _stop_debounce(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None

    def _apply(self, text: str) -> str | None:
        """Apply `text` as the filter; the error message when it is not valid (the old filter stays)."""
        try:
            self.set_filter(text)
        except ValueError as exc:
            return str(exc)
        self.table.reapply()
        self._update_title()
        return None

    def _apply_typed(self) -> None:
        self._debounce = None
        inp = self._filter_input()
        if not inp.display:
            return
        error = self._apply(inp.value)
        inp.border_subtitle = error or ""

    def on_input_changed(self, event: Input.Changed) -> None:
        """Live filtering: re-filter once typing pauses."""
        if event.input.id != self.FILTER_INPUT_ID:
            return
        event.stop()
        if self._debounce is None:
            self._debounce = self.set_timer(FILTER_DEBOUNCE_S, self._apply_typed)
        else:
            self._debounce.reset()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply at once and close (a bad expression is a one-line notice; the input stays open)."""
        if event.input.id != self.FILTER_INPUT_ID:
            return
        event.stop()
        self._stop_debounce()
        error = self._apply(event.value)
        if error is not None:
            event.input.border_subtitle = error
            self.notify(visible(error), severity="error", markup=False)
            return
        self._close_filter()

    def _close_filter(self) -> None:
        inp = self._filter_input()
        inp.display = False
        inp.border_subtitle = ""
        self.screen.set_focus(self.table)

    def on_key(self, event: events.Key) -> None:
        """Escape in the filter input closes it, keeping the last valid filter typed."""
        inp = self._filter_input()
        if event.key == "escape" and inp.has_focus:
            event.stop()
            if self._debounce is not None:
                self._stop_debounce()
                self._apply(inp.value)
            self._close_filter()
