"""Small modal screens: confirmation, connection check, MFA code, help."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from pgiam_tui.fixquote import sql_ident
from pgiam_tui.textsafe import visible
from pgiam_tui.ui.render import safe_text
from pgiam_tui.ui.source import CheckProgressSink, CheckStepView, CheckView

AnswerType = TypeVar("AnswerType")

STEP_MARKS = {"ok": ("✔", "bold green"), "failed": ("✖", "bold red"), "skipped": ("–", "dim")}


class YesNoScreen(ModalScreen[AnswerType]):
    """A question answered Yes (y) / No (n, Esc); No is focused, so that Enter never confirms by accident.

    Subclasses compose their question and end with `yes_no_buttons()`, and say what an answer gives in
    `action_answer`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def yes_no_buttons(self, *, danger: bool = True) -> Horizontal:
        """The two buttons, Yes in red when saying yes does harm."""
        return Horizontal(
            Button("Yes (y)", variant="error" if danger else "primary", id="confirm-yes"),
            Button("No (n)", id="confirm-no"),
            classes="buttons",
        )

    def on_mount(self) -> None:
        """Focus No."""
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Button -> answer."""
        self.action_answer(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        """Dismiss with what YES (or no) means."""
        raise NotImplementedError


class ConfirmScreen(YesNoScreen[bool]):
    """Yes/No question; dismisses with True only on an explicit yes."""

    def __init__(self, question: Text, *, danger: bool = True) -> None:
        super().__init__(classes="modal")
        self.question = question
        self.danger = danger

    def compose(self) -> ComposeResult:
        """Question and two buttons."""
        with Vertical(classes="dialog"):
            yield Static(self.question, id="confirm-question")
            yield self.yes_no_buttons(danger=self.danger)

    def action_answer(self, yes: bool) -> None:
        """Key or button -> answer."""
        self.dismiss(yes)


# What a running step is doing, so a step that hangs (a tunnel that accepts TCP and never answers) shows it.
RUNNING = {
    "config": "reading the config…",
    "credentials": "asking AWS who we are…",
    "discovery": "describing the cluster…",
    "token": "signing a token…",
    "address": "resolving the address…",
    "tcp": "connecting (TCP)…",
    "tls": "connecting (TLS handshake)…",
    "authentication": "connecting (login)…",
    "session": "inspecting the session…",
    "members": "checking every member…",
}


def _step_text(text: Text, step: CheckStepView) -> None:
    mark, style = STEP_MARKS.get(step.status, ("?", "yellow"))
    text.append(f"\n {mark} ", style=style)
    text.append(visible(step.name)[:28].ljust(28))
    ms = f"{step.ms:.0f} ms" if step.ms is not None else ""
    text.append(f"  {ms}", style="dim")
    if step.detail:
        text.append("\n     ")
        text.append_text(safe_text(step.detail, multiline=True))
    if step.hint and step.status != "ok":
        text.append("\n     fix: ", style="yellow")
        text.append_text(safe_text(step.hint, multiline=True))


def progress_text(cluster: str, done: list[CheckStepView], running: str | None) -> Text:
    """The check while it runs: the steps finished so far, then the one running now."""
    text = Text()
    text.append("… ", style="bold yellow")
    text.append_text(safe_text(cluster, style="bold"))
    text.append(": checking\n", style="bold")
    for step in done:
        _step_text(text, step)
    if running is not None:
        text.append("\n … ", style="bold yellow")
        text.append(visible(running)[:28].ljust(28))
        text.append("  " + RUNNING.get(running, "running…"), style="yellow")
    return text


def check_text(view: CheckView) -> Text:
    """The steps of a connection check, one per line, with detail and hint; then the cause sentence, its
    evidence, the candidate causes and the fix, as `pgiam-tui check` prints them."""
    text = Text()
    head = "connected" if view.ok else ("connected, with a problem" if view.connected else "cannot connect")
    text.append(f"{'✔' if view.ok else '✖'} ", style="bold green" if view.ok else "bold red")
    text.append_text(safe_text(view.cluster, style="bold"))
    text.append(f": {head}\n", style="bold")
    for step in view.steps:
        _step_text(text, step)
    if view.cause:
        text.append("\n\ncause: ", style="bold red")
        sentence = view.cause_text or view.cause
        text.append_text(safe_text(sentence, multiline=True))
        if view.cause_text and view.cause != view.cause_text:
            text.append(f" [{visible(view.cause)}]", style="dim")
    if view.evidence:
        source = {"aws_log": "AWS's iam-db-auth-error log", "inference": "inference"}.get(
            view.evidence_source or "", "the steps above"
        )
        text.append(f"\nevidence (from {source}):", style="bold")
        for line in view.evidence:
            text.append("\n  - ")
            text.append_text(safe_text(line, multiline=True))
    if view.candidates:
        text.append("\ncandidate causes, most likely first:", style="bold")
        for i, line in enumerate(view.candidates, 1):
            text.append(f"\n  {i}. ")
            text.append_text(safe_text(line, multiline=True))
    if view.fix:
        text.append("\nfix:   ", style="bold yellow")
        text.append_text(safe_text(view.fix, multiline=True))
    return text


class CheckScreen(ModalScreen[None]):
    """Runs the connection check of one cluster in a worker and shows each step as it finishes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,c", "close", "Close")]

    def __init__(self, cluster: str, run: Callable[[CheckProgressSink], Awaitable[CheckView]]) -> None:
        super().__init__(classes="modal")
        self.cluster = cluster
        self._run = run
        self.result: CheckView | None = None
        self.done: list[CheckStepView] = []
        self.running: str | None = None

    def compose(self) -> ComposeResult:
        """Title and a scrolling body."""
        with Vertical(classes="dialog wide"):
            yield Label(
                Text.assemble(("Connection check — ", "bold"), safe_text(self.cluster)),
                classes="dialog-title",
            )
            with VerticalScroll():
                yield Static(progress_text(self.cluster, [], None), id="check-body")
            yield Static(Text("Esc closes", style="dim"))

    def on_mount(self) -> None:
        """Start the check."""
        self.run_check()

    def _progress(self, name: str, step: CheckStepView | None) -> None:
        # Called on the app's event loop by the running check (the worker is async, not a thread).
        if self.result is not None:
            return
        if step is None:
            self.running = name
        else:
            self.done.append(step)
            self.running = None
        self.query_one("#check-body", Static).update(progress_text(self.cluster, self.done, self.running))

    @work(exclusive=True, exit_on_error=False, group="check", description="connection check")
    async def run_check(self) -> None:
        """Await the source's check (async; boto3 runs in threads inside it), showing progress."""
        body = self.query_one("#check-body", Static)
        try:
            self.result = await self._run(self._progress)
        except Exception as exc:  # shown as one line, never a traceback
            body.update(Text.assemble(("✖ check could not run: ", "bold red"), safe_text(str(exc), 300)))
            return
        body.update(check_text(self.result))

    def action_close(self) -> None:
        """Close (a running check is cancelled with the screen's workers)."""
        self.dismiss(None)


class MfaScreen(ModalScreen[str | None]):
    """Asks for an MFA code (the SessionFactory's mfa_prompt waits for it from a boto3 thread)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str) -> None:
        super().__init__(classes="modal")
        # botocore's own prompt text, e.g. "Enter MFA code for arn:aws:iam::111111111111:mfa/dba: "
        self.prompt = prompt.strip().rstrip(":")

    def compose(self) -> ComposeResult:
        """Prompt and a masked input."""
        with Vertical(classes="dialog"):
            yield Label("MFA code needed", classes="dialog-title")
            yield Static(safe_text(self.prompt, 200))
            yield Input(placeholder="123456", password=True, id="mfa-code", max_length=12)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return the code."""
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """No code."""
        self.dismiss(None)


def ask_mfa_blocking(app: App[Any], prompt: str, timeout_s: float = 600.0) -> str:
    """Ask for an MFA code in a modal from a non-UI thread (boto3's); blocks that thread until answered."""
    done = threading.Event()
    answer: list[str | None] = []

    def got(value: str | None) -> None:
        answer.append(value)
        done.set()

    app.call_from_thread(app.push_screen, MfaScreen(prompt), got)
    done.wait(timeout=timeout_s)
    if not answer or not answer[0]:
        raise RuntimeError("no MFA code entered")
    return answer[0]


def backend_question(cluster: str, instance: str, pid: int, action: str, state: str | None = None) -> Text:
    """The confirmation question for cancel / terminate (STATE: the session's, when known).

    Cancelling a session that is idle in transaction does nothing (it runs no query): the question then says
    so and offers to terminate it instead, which is what ends its transaction."""
    question = Text()
    idle_tx = action == "cancel" and (state or "").startswith("idle in transaction")
    if idle_tx:
        question.append(f"Backend pid {pid}", style="bold")
        question.append(" on ")
        question.append_text(safe_text(f"{cluster} / {instance}"))
        question.append(" is idle in transaction: it has no running query to cancel.\n")
        question.append("Terminate it instead? ", style="bold")
        question.append(
            "pg_terminate_backend closes the session; its transaction rolls back and its locks go.",
            style="dim",
        )
        return question
    question.append(f"{action.capitalize()} backend pid {pid}", style="bold")
    question.append(" on ")
    question.append_text(safe_text(f"{cluster} / {instance}"))
    question.append("?\n")
    question.append(
        "pg_cancel_backend stops its current query."
        if action == "cancel"
        else "pg_terminate_backend closes the whole session (its transaction rolls back).",
        style="dim",
    )
    return question


def signal_refusal(cluster: str, instance: str, action: str, user: str | None) -> str:
    """Why cancel / terminate cannot work before it is tried: the monitoring user may not signal backends."""
    who = user or "the monitoring user"
    fix = f"GRANT pg_signal_backend TO {sql_ident(user)};" if user else "GRANT pg_signal_backend TO <user>;"
    return (
        f"{action} on {cluster} / {instance} cannot work: {who} is not a member of pg_signal_backend "
        f"(fix, as an administrator: {fix})"
    )
