"""Detail of one database user on the IAM pane: roles, the IAM principals allowed to connect as it (with the
policy and resource granting each, conditions, last use), and its findings. Esc closes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pgiam_tui.model import DbUser
from pgiam_tui.ui.render import fmt_ago, fmt_datetime, safe_text
from pgiam_tui.ui.widgets.iam import finding_text


def user_detail_text(cluster: str, user: DbUser, now: datetime, *, iam_readable: bool) -> Text:
    """Everything the IAM pane knows about USER, as plain text (names from the server never as markup)."""
    text = Text()
    text.append("Database user ", style="bold")
    text.append_text(safe_text(user.name, style="bold"))
    text.append(" on ", style="dim")
    text.append_text(safe_text(cluster))
    text.append("\n")
    text.append("\n  rds_iam         ", style="dim")
    text.append("yes (logs in with IAM tokens only)" if user.rds_iam else "no (password login)")
    text.append("\n  can log in      ", style="dim")
    text.append("yes" if user.can_login else "no")
    text.append("\n  member of       ", style="dim")
    text.append_text(safe_text(", ".join(user.member_of) or None, none="-", multiline=True))
    if user.superuser_like:
        text.append("\n  rds_superuser-like privileges", style="yellow")
    text.append(
        f"\n\nIAM principals allowed to rds-db:connect as it ({len(user.iam_principals)})", style="bold"
    )
    if not iam_readable:
        text.append("\n  IAM could not be read: principals unknown", style="yellow")
    elif not user.iam_principals:
        text.append("\n  none", style="dim")
    for g in user.iam_principals:
        text.append("\n  ")
        text.append_text(safe_text(g.principal_arn, style="bold"))
        text.append("\n    policy        ", style="dim")
        text.append_text(safe_text(g.policy_name))
        text.append("\n    resource      ", style="dim")
        text.append_text(safe_text(g.resource))
        if g.conditional:
            text.append("\n    conditional   ", style="dim")
            text.append("yes: the statement has a Condition (holds only when it matches)", style="yellow")
        text.append("\n    last use      ", style="dim")
        if g.last_used is not None:
            text.append(f"{fmt_datetime(g.last_used)} ({fmt_ago(g.last_used, now)})")
        else:
            text.append("unknown (Access Advisor gave no date)", style="dim")
    text.append(f"\n\nFindings ({len(user.findings)})", style="bold")
    if not user.findings:
        text.append(": none", style="dim")
    for f in user.findings:
        text.append("\n")
        text.append_text(finding_text(f))
    return text


class IamUserScreen(ModalScreen[None]):
    """One database user's IAM detail."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
    ]
    DEFAULT_CSS = """
    IamUserScreen { align: center middle; }
    IamUserScreen > VerticalScroll {
        width: 90%; height: 80%; border: round $accent; background: $panel; padding: 0 1;
    }
    """

    def __init__(self, cluster: str, user: DbUser, now: datetime, *, iam_readable: bool) -> None:
        super().__init__()
        self.text = user_detail_text(cluster, user, now, iam_readable=iam_readable)

    def compose(self) -> ComposeResult:
        """The detail text in a scrolling box."""
        with VerticalScroll():
            yield Static(self.text, id="iam-user-detail")
            yield Static(Text("Esc closes", style="dim"))
