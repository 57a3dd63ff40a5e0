"""`X`: terminate every session idle in transaction for more than N on the selected cluster.

One confirmation lists them (pid, user, instance, how long idle, transaction age, query head); `+` / `-`
change N and the list with it; `y` terminates exactly those listed (and only while each is still idle in the
same transaction: the source checks), `n` / Esc leaves everything as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.activity_model import is_background
from pgiam_tui.ui.render import fmt_duration, safe_text
from pgiam_tui.ui.screens.modals import YesNoScreen

IDLE_TX_STATES = frozenset({"idle in transaction", "idle in transaction (aborted)"})
THRESHOLDS_S = (10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
DEFAULT_THRESHOLD_S = 60.0
QUERY_HEAD = 60


def idle_tx_older_than(rows: Iterable[SessionRow], seconds: float) -> tuple[SessionRow, ...]:
    """Client sessions idle in transaction for more than SECONDS (the server's own age of the idle state,
    as idle_in_transaction_session_timeout counts it), longest idle first."""
    found = [
        r
        for r in rows
        if r.state in IDLE_TX_STATES and not is_background(r) and (r.duration_s or 0.0) > seconds
    ]
    return tuple(sorted(found, key=lambda r: (-(r.duration_s or 0.0), r.instance, r.pid)))


def next_threshold(seconds: float, step: int) -> float:
    """The threshold STEP places from SECONDS among THRESHOLDS_S (clamped)."""
    here = min(range(len(THRESHOLDS_S)), key=lambda i: abs(THRESHOLDS_S[i] - seconds))
    return THRESHOLDS_S[max(0, min(len(THRESHOLDS_S) - 1, here + step))]


def idle_tx_text(cluster: str, sessions: tuple[SessionRow, ...], seconds: float) -> Text:
    """The question and the sessions it is about, one line each."""
    text = Text()
    older = f"idle in transaction for more than {fmt_duration(seconds)}"
    if not sessions:
        text.append("No session ", style="bold")
        text.append(f"{older} on ")
        text.append_text(safe_text(cluster, style="bold"))
        text.append(".\n")
        text.append("+ / - change the age; n or Esc closes.", style="dim")
        return text
    text.append(f"Terminate {len(sessions)} session{'s' if len(sessions) != 1 else ''} ", style="bold")
    text.append(f"{older} on ")
    text.append_text(safe_text(cluster, style="bold"))
    text.append("?\n\n")
    text.append(f"{'pid':>7}  {'user':<16} {'instance':<24} {'idle':>7} {'xact':>7}  query\n", style="bold")
    for row in sessions:
        text.append(f"{row.pid:>7}  ")
        for value, width in ((row.usename or "", 16), (row.instance, 24)):
            cell = safe_text(value)
            cell.truncate(width, overflow="ellipsis", pad=True)
            text.append_text(cell)
            text.append(" ")
        text.append(
            f"{fmt_duration(row.duration_s):>7} {fmt_duration(row.xact_duration_s):>7}  ", style="yellow"
        )
        text.append_text(safe_text(" ".join((row.query or "").split()), QUERY_HEAD, style="dim"))
        text.append("\n")
    text.append(
        "\npg_terminate_backend closes each session: its transaction rolls back and its locks go. A session "
        "that has moved on by then (committed, or running a query) is left alone.\n",
        style="dim",
    )
    text.append("+ / - change the age (the list follows).", style="dim")
    return text


@dataclass(frozen=True, slots=True)
class IdleTxAnswer:
    """The DBA's answer: the age chosen, and the sessions to terminate (empty when refused)."""

    threshold_s: float
    sessions: tuple[SessionRow, ...]


class IdleTxScreen(YesNoScreen[IdleTxAnswer]):
    """The one confirmation: the sessions idle in transaction for more than N, Yes / No."""

    BINDINGS: ClassVar[list[BindingType]] = [  # and YesNoScreen's y, n, Esc
        Binding("plus", "threshold(1)", "Older"),
        Binding("minus", "threshold(-1)", "Younger"),
    ]

    def __init__(self, cluster: str, rows: tuple[SessionRow, ...], threshold_s: float) -> None:
        super().__init__(classes="modal")
        self.cluster = cluster
        self.rows = rows
        self.threshold_s = threshold_s
        self.sessions = idle_tx_older_than(rows, threshold_s)

    def compose(self) -> ComposeResult:
        """Title, the list (scrolls when long), two buttons (No focused: Enter never confirms by accident)."""
        with Vertical(classes="dialog wide"):
            yield Label(Text("Terminate idle transactions", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(idle_tx_text(self.cluster, self.sessions, self.threshold_s), id="idle-tx-body")
            yield self.yes_no_buttons()

    def action_answer(self, yes: bool) -> None:
        """y: the sessions listed; n / Esc: none."""
        self.dismiss(IdleTxAnswer(self.threshold_s, self.sessions if yes else ()))

    def action_threshold(self, step: int) -> None:
        """A longer / shorter age, and the list for it."""
        self.threshold_s = next_threshold(self.threshold_s, step)
        self.sessions = idle_tx_older_than(self.rows, self.threshold_s)
        self.query_one("#idle-tx-body", Static).update(
            idle_tx_text(self.cluster, self.sessions, self.threshold_s)
        )
