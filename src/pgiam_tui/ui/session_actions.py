"""Acting on sessions from the console: the detail screen, cancel / terminate one backend, and terminate
every idle-in-transaction session of a cluster older than a threshold.

A mixin of the app (ui/app.py): every action here is gated the same way -- the cluster's `allow_actions`
(off by default: monitoring is read-only), then the monitoring user's membership of pg_signal_backend when
the server told us -- and always asks first. The source does the work; handlers never do I/O themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual import work
from textual.app import App

from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import ClusterSnapshot, ConnEvent
from pgiam_tui.textsafe import visible
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.modals import ConfirmScreen, backend_question, signal_refusal
from pgiam_tui.ui.source import BackendAction, SnapshotSource, action_event
from pgiam_tui.ui.widgets.activity import ActivityPane


class SessionActions(App[int]):
    """The app's actions on sessions (mixed into PgiamApp, which sets the attributes below)."""

    source: SnapshotSource
    cluster_configs: dict[str, ClusterConfig]
    latest: dict[str, ClusterSnapshot]
    local_events: dict[str, list[ConnEvent]]
    selected: str | None
    now: Callable[[], datetime]  # the app's clock (tests inject a fixed one)

    def _render_selected(self) -> None:
        """Re-render the selected cluster's panes (the app's)."""
        raise NotImplementedError

    def _activity_pane(self) -> ActivityPane:
        """The activity pane on screen: the all-clusters view's, else the main screen's."""
        if isinstance(self.screen, AllSessionsScreen):
            return self.screen.pane
        return self.query_one("#activity", ActivityPane)

    def on_session_chosen(self, message: SessionChosen) -> None:
        """Enter on a session: its detail screen."""
        snap = self.latest.get(message.cluster)
        if snap is None:
            return
        row_key = message.key.split("/", 1)[1] if "/" in message.key else message.key
        row = next((r for r in snap.activity if r.key == row_key), None)
        if row is None:
            self.notify("that session is gone", severity="warning")
            return
        self.push_screen(
            SessionDetailScreen(
                message.cluster, message.key, row, snap.activity, self._actions_allowed(message.cluster)
            )
        )

    def action_open_detail(self) -> None:
        """Open the detail of the row under the activity cursor."""
        loc = self._activity_pane().table.current()
        if loc is not None:
            self.post_message(SessionChosen(loc.cluster, loc.key))

    def _actions_allowed(self, name: str) -> bool:
        cfg = self.cluster_configs.get(name)
        if cfg is not None:
            return cfg.allow_actions
        snap = self.latest.get(name)
        return bool(snap and snap.actions_allowed)

    def action_signal_current(self, action: str) -> None:
        """k / t on the activity table or blocking tree: cancel / terminate the session under the cursor."""
        pane = self._activity_pane()
        loc = pane.blocking_tree.current() if pane.tree_shown else pane.table.current()
        if loc is None:
            self.notify("no session selected", severity="warning")
            return
        self.action_signal_backend(loc.cluster, loc.row.instance, loc.row.pid, action)

    def action_signal_backend(self, cluster: str, instance: str, pid: int, action: str) -> None:
        """Confirm, then cancel/terminate a backend -- only where the cluster's config allows it."""
        if action not in ("cancel", "terminate"):
            return
        if not self._actions_allowed(cluster):
            self.notify(
                f"{action} is disabled for {cluster}: set allow_actions = true in profiles.toml",
                severity="warning",
                markup=False,
            )
            return
        snap = self.latest.get(cluster)
        inst = next((i for i in snap.instances if i.id == instance), None) if snap else None
        if inst is not None and inst.health is not None and inst.health.can_signal is False:
            cfg = self.cluster_configs.get(cluster)
            refusal = signal_refusal(cluster, instance, action, cfg.user if cfg else None)
            self.notify(refusal, severity="warning", markup=False, timeout=10)
            return
        row = (
            next((r for r in snap.activity if r.instance == instance and r.pid == pid), None)
            if snap
            else None
        )
        state = row.state if row else None
        question = backend_question(cluster, instance, pid, action, state)
        idle_tx = action == "cancel" and (state or "").startswith("idle in transaction")
        kind: BackendAction = "cancel" if action == "cancel" and not idle_tx else "terminate"

        def answered(yes: bool | None) -> None:
            if yes:
                self.do_backend_action(cluster, instance, pid, kind)

        self.push_screen(ConfirmScreen(question), answered)

    @work(exit_on_error=False, group="actions", description="backend action")
    async def do_backend_action(self, cluster: str, instance: str, pid: int, action: BackendAction) -> None:
        """Ask the source, then record the outcome as an event of that cluster."""
        try:
            outcome = await self.source.backend_action(cluster, instance, pid, action)
        except Exception as exc:
            outcome = f"failed: {exc}"
            self.notify(visible(f"{action} pid {pid}: {exc}"), severity="error", markup=False)
        else:
            self.notify(visible(outcome), markup=False)
        if not self.source.records_actions:
            self.local_events.setdefault(cluster, []).append(
                action_event(cluster, instance, pid, action, outcome, self.now())
            )
            if cluster == self.selected:
                self._render_selected()
        else:
            await self.source.refresh_now(cluster)
