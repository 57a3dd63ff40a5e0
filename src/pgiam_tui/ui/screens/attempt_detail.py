"""Detail of one connection attempt (or one event of the console itself): every field, AWS's reason, the
caller ARN and the raw log lines, as plain text (never markup; controls shown, never interpreted)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from pgiam_tui.model import Attempt, ConnEvent
from pgiam_tui.ui.render import fmt_datetime, fmt_duration, safe_text


def _line(text: Text, label: str, value: str | None) -> None:
    text.append(f"\n  {label:<12}", style="dim")
    text.append_text(safe_text(value, none="-"))


def attempt_text(a: Attempt) -> Text:
    """Everything about one attempt."""
    text = Text()
    style = "green" if not a.failed else "bold red"
    text.append("Login attempt  ", style="bold")
    text.append(a.outcome.value, style=style)
    text.append("\n")
    _line(text, "time", fmt_datetime(a.time))
    _line(text, "user", a.user)
    _line(text, "database", a.database)
    _line(text, "client", f"{a.host}:{a.port}" if a.host and a.port else a.host)
    _line(text, "pid", str(a.pid) if a.pid is not None else None)
    _line(text, "instance", a.instance)
    _line(text, "method", a.method)
    ssl = a.ssl
    if ssl is not None:
        shown = "no" if ssl.get("enabled") is False else ", ".join(f"{k}={v}" for k, v in ssl.items())
        _line(text, "ssl", shown)
    _line(text, "session", fmt_duration(a.session_s) if a.session_s is not None else None)
    _line(text, "source", a.source)
    if a.aws_code or a.caller_arn:
        text.append("\n\nAWS (iam-db-auth-error)", style="bold")
        _line(text, "code", a.aws_code)
        _line(text, "reason", a.aws_reason)
        _line(text, "caller", a.caller_arn)
    text.append("\n\nLog lines", style="bold")
    for raw in a.lines:
        text.append("\n")
        text.append_text(safe_text(raw, multiline=True))
    return text


def event_text(e: ConnEvent) -> Text:
    """Everything about one event of the console itself."""
    text = Text()
    text.append(f"Console event  {e.kind}", style="bold")
    text.append("\n")
    _line(text, "time", fmt_datetime(e.time))
    _line(text, "user", e.user)
    _line(text, "database", e.database)
    _line(text, "host", e.host)
    _line(text, "instance", e.instance)
    _line(text, "pid", str(e.pid) if e.pid is not None else None)
    text.append("\n\n")
    text.append_text(safe_text(e.message, multiline=True))
    return text


class AttemptDetailScreen(Screen[None]):
    """Full-screen detail of one row of the events pane."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back"),
        Binding("y", "copy", "Copy lines"),
    ]

    def __init__(self, attempt: Attempt | None, event: ConnEvent | None = None) -> None:
        super().__init__()
        self.attempt = attempt
        self.event = event

    def compose(self) -> ComposeResult:
        """Scrollable text and the footer."""
        with VerticalScroll(id="detail-scroll"):
            yield Static(self._text(), id="detail-body")
        yield Footer()

    def _text(self) -> Text:
        if self.attempt is not None:
            return attempt_text(self.attempt)
        if self.event is not None:
            return event_text(self.event)
        return Text("nothing to show")

    def action_copy(self) -> None:
        """Copy the raw lines (OSC 52 via Textual)."""
        lines = (
            self.attempt.lines if self.attempt is not None else (self.event.message,) if self.event else ()
        )
        self.app.copy_to_clipboard("\n".join(lines))
        self.notify("log lines copied to the clipboard")

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)
