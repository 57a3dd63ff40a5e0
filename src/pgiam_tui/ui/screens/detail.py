"""Session detail: full query text wrapped, timings, the blocking chain; copy; cancel / terminate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.activity_model import blocked_by_row, blocking_chain
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.render import fmt_datetime, fmt_duration, safe_text


def copy_notice(length: int, environ: Mapping[str, str]) -> str:
    """What `y` did: an OSC 52 request, which the terminal may drop (tmux does unless set-clipboard is on)."""
    text = f"query ({length} characters) sent to the terminal's clipboard with OSC 52"
    if environ.get("TMUX"):
        return text + "; under tmux it arrives only with `set -g set-clipboard on`"
    return text + "; a terminal without OSC 52 support ignores it"


def _line(text: Text, label: str, value: str | None) -> None:
    text.append(f"\n  {label:<16}", style="dim")
    text.append_text(safe_text(value, none="-"))


def _session_line(text: Text, r: SessionRow, prefix: str) -> None:
    text.append(f"\n  {prefix}pid {r.pid} ", style="bold")
    text.append_text(safe_text(r.usename, 24, none="?"))
    text.append(f"  {r.state or ''}  {fmt_duration(r.duration_s)}  ", style="dim")
    text.append_text(safe_text(r.query, 100))


def detail_text(cluster: str, row: SessionRow, rows: Sequence[SessionRow], *, present: bool = True) -> Text:
    """Everything about one session, as plain text (the query wraps; controls shown, never interpreted)."""
    text = session_text(cluster, row, rows, present=present)
    text.append_text(query_text(row))
    return text


def query_text(row: SessionRow) -> Text:
    """The query part of the detail: heading and the whole text, wrapped."""
    text = Text()
    text.append("\n\nQuery", style="bold")
    if row.query_truncated:
        text.append("  (truncated by track_activity_query_size)", style="yellow")
    text.append("\n")
    text.append_text(safe_text(row.query, multiline=True, none="-"))
    return text


def session_text(cluster: str, row: SessionRow, rows: Sequence[SessionRow], *, present: bool = True) -> Text:
    """The detail without the query: who, timings, blocking (small; redrawn each round)."""
    text = Text()
    text.append(f"Session pid {row.pid}", style="bold")
    text.append(" on ", style="dim")
    text.append_text(safe_text(f"{cluster} / {row.instance}"))
    if not present:
        text.append("   (gone: no longer in pg_stat_activity)", style="bold yellow")
    text.append("\n")
    _line(text, "user", row.usename)
    _line(text, "database", row.datname)
    _line(text, "application", row.application_name)
    client = row.client_hostname or row.client_addr
    _line(text, "client", f"{client}:{row.client_port}" if client else None)
    _line(text, "state", row.state)
    _line(text, "wait", f"{row.wait_event_type}:{row.wait_event}" if row.wait_event_type else None)
    _line(text, "backend type", row.backend_type)
    _line(text, "query id", str(row.query_id) if row.query_id is not None else None)
    text.append("\n\nTimings", style="bold")
    _line(text, "backend start", fmt_datetime(row.backend_start))
    _line(text, "xact start", fmt_datetime(row.xact_start))
    _line(text, "query start", fmt_datetime(row.query_start))
    _line(text, "state change", fmt_datetime(row.state_change))
    _line(text, "query running", fmt_duration(row.duration_s) or None)
    _line(text, "xact running", fmt_duration(row.xact_duration_s) or None)
    text.append("\n\nBlocking", style="bold")
    chain = blocking_chain(row, rows)
    waiting = blocked_by_row(row, rows)
    if row.blocked_by:
        text.append(f"\n  waits for pid(s) {', '.join(map(str, row.blocked_by))}", style="red")
    for i, r in enumerate(chain):
        _session_line(text, r, "  " * i + "↳ blocked by ")
    for r in waiting:
        _session_line(text, r, "← blocks ")
    if not row.blocked_by and not waiting:
        text.append("\n  not blocked, blocks nobody", style="dim")
    return text


class SessionDetailScreen(Screen[None]):
    """Full-screen detail of one session; follows the session across refreshes."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("detail")

    def __init__(
        self, cluster: str, key: str, row: SessionRow, rows: Sequence[SessionRow], allow_actions: bool
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.key = key
        self.row = row
        self.rows = tuple(rows)
        self.allow_actions = allow_actions
        self.present = True
        self._shown: Text | None = None

    def compose(self) -> ComposeResult:
        """Scrollable text and the footer."""
        with VerticalScroll(id="detail-scroll"), Vertical(id="detail-body"):
            yield Static(self._text(), id="detail-session")
            # the query apart: a 1 MB query is laid out again only when it changed, not every round
            yield Static(query_text(self.row), id="detail-query")
        yield Footer()

    def _text(self) -> Text:
        text = session_text(self.cluster, self.row, self.rows, present=self.present)
        if not self.allow_actions:
            text.append("\n\ncancel/terminate disabled for this cluster (allow_actions = false)", style="dim")
        return text

    def update_rows(self, rows: Sequence[SessionRow]) -> None:
        """A new snapshot of the cluster: follow the session (or mark it gone)."""
        before = self.row
        self.rows = tuple(rows)
        for r in rows:
            if r.key == self.row.key:
                self.row, self.present = r, True
                break
        else:
            self.present = False
        text = self._text()
        if text != self._shown:
            self._shown = text
            self.query_one("#detail-session", Static).update(text)
        if (self.row.query, self.row.query_truncated) != (before.query, before.query_truncated):
            self.query_one("#detail-query", Static).update(query_text(self.row))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide cancel/terminate where the config does not allow actions."""
        if action == "signal":
            return self.allow_actions and self.present
        return True

    def action_copy(self) -> None:
        """Copy the full query text (OSC 52 via Textual), saying how: nothing confirms that it arrived."""
        self.app.copy_to_clipboard(self.row.query or "")
        self.notify(copy_notice(len(self.row.query or ""), os.environ), timeout=8)

    def action_signal(self, action: str) -> None:
        """Cancel/terminate through the app (confirmation first)."""
        row = self.row
        self.app.call_later(
            self.app.run_action, f"signal_backend({self.cluster!r}, {row.instance!r}, {row.pid}, {action!r})"
        )

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
