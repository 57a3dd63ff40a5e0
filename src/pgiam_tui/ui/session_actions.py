"""Acting on sessions from the console: the detail screen, cancel / terminate one backend, and terminate
the sessions of a cluster idle in transaction for longer than a threshold (`X`).

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
from pgiam_tui.model import ClusterSnapshot, ConnEvent, SessionRow
from pgiam_tui.textsafe import visible
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.idle_tx import DEFAULT_THRESHOLD_S, IdleTxAnswer, IdleTxScreen
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
    idle_tx_threshold_s: float = DEFAULT_THRESHOLD_S  # X: "idle in transaction for more than ..."

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

    def _refused(self, cluster: str, action: str, instance: str | None = None) -> bool:
        """Say why ACTION cannot run on CLUSTER, if it cannot: the cluster's allow_actions is off, or the
        server said the monitoring user may not signal backends on INSTANCE (on any instance when None)."""
        if not self._actions_allowed(cluster):
            self.notify(
                f"{action} is disabled for {cluster}: set allow_actions = true in profiles.toml",
                severity="warning",
                markup=False,
            )
            return True
        snap = self.latest.get(cluster)
        instances = [i for i in snap.instances if instance is None or i.id == instance] if snap else []
        barred = next((i for i in instances if i.health is not None and i.health.can_signal is False), None)
        if barred is None:
            return False
        cfg = self.cluster_configs.get(cluster)
        refusal = signal_refusal(cluster, barred.id, action, cfg.user if cfg else None)
        self.notify(refusal, severity="warning", markup=False, timeout=10)
        return True

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
        if action not in ("cancel", "terminate") or self._refused(cluster, action, instance):
            return
        snap = self.latest.get(cluster)
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
        await self._show_outcomes(cluster, [(instance, pid, action, outcome)])

    # ----- X: terminate the cluster's old idle-in-transaction sessions ------------------------------------

    def action_terminate_idle_tx(self) -> None:
        """One confirmation listing the selected cluster's sessions idle in transaction for more than N."""
        name = self.selected
        snap = self.latest.get(name) if name else None
        if name is None or snap is None:
            self.notify("no cluster data yet", severity="warning")
            return
        if self._refused(name, "terminate"):
            return

        def answered(answer: IdleTxAnswer | None) -> None:
            if answer is None:
                return
            self.idle_tx_threshold_s = answer.threshold_s  # the next X starts from the age chosen
            if answer.sessions:
                self.do_terminate_idle_tx(name, answer.sessions)

        self.push_screen(IdleTxScreen(name, snap.activity, self.idle_tx_threshold_s), answered)

    @work(exit_on_error=False, group="actions", description="terminate idle transactions")
    async def do_terminate_idle_tx(self, cluster: str, sessions: tuple[SessionRow, ...]) -> None:
        """Ask the source; one notice sums up, each session's outcome becomes an event of the cluster."""
        try:
            outcomes = await self.source.terminate_idle_transactions(cluster, sessions)
        except Exception as exc:
            self.notify(visible(f"terminate on {cluster}: {exc}"), severity="error", markup=False)
            return
        done = sum(1 for o in outcomes if ": done" in o)
        failed = sum(1 for o in outcomes if " failed: " in o)
        left = len(outcomes) - done - failed
        summary = f"{cluster}: {done} idle-in-transaction session{'s' if done != 1 else ''} terminated"
        if left:
            summary += f", {left} left alone (no longer idle in that transaction)"
        if failed:
            summary += f", {failed} failed (see the events pane)"
        self.notify(visible(summary), severity="error" if failed else "information", markup=False)
        await self._show_outcomes(
            cluster, [(r.instance, r.pid, "terminate", o) for r, o in zip(sessions, outcomes, strict=False)]
        )

    async def _show_outcomes(self, cluster: str, outcomes: list[tuple[str, int, str, str]]) -> None:
        """Put actions' outcomes (instance, pid, action, outcome) among the cluster's events: a source
        that records them (the Monitor) is asked for a fresh round; otherwise they are kept here."""
        if self.source.records_actions:
            await self.source.refresh_now(cluster)
            return
        events = self.local_events.setdefault(cluster, [])
        now = self.now()
        events += [
            action_event(cluster, i, pid, action, outcome, now) for i, pid, action, outcome in outcomes
        ]
        if cluster == self.selected:
            self._render_selected()
