"""The console: a Textual app that renders ClusterSnapshots from a SnapshotSource.

The source (the live Monitor, or fixed data) runs on this app's own event loop and reports each round
through `SnapshotArrived` messages; handlers only render what they receive -- no I/O in event handlers.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import ClusterSnapshot, ConnEvent
from pgiam_tui.textsafe import visible
from pgiam_tui.ui.keys import app_bindings
from pgiam_tui.ui.messages import ClusterSelected, SnapshotArrived
from pgiam_tui.ui.palette import palette_commands
from pgiam_tui.ui.query_display import next_display
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.help import HelpScreen
from pgiam_tui.ui.screens.modals import CheckScreen, ask_mfa_blocking
from pgiam_tui.ui.session_actions import SessionActions
from pgiam_tui.ui.source import SnapshotSource
from pgiam_tui.ui.widgets.activity import ActivityPane
from pgiam_tui.ui.widgets.cluster_list import ClusterEntry, ClusterList, group_of
from pgiam_tui.ui.widgets.events import EventsPane
from pgiam_tui.ui.widgets.iam import IamPane
from pgiam_tui.ui.widgets.top_bar import TopBar, topbar_text

INTERVALS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)
# Actions that act on an activity pane: only offered where one is shown (main or all-clusters screen).
ACTIVITY_ACTIONS = frozenset(
    {
        "filter",
        "sort",
        "reverse_sort",
        "hide_idle",
        "background",
        "tree",
        "query_display",
        "terminate_idle_tx",
        "signal_current",
        "zoom",
        "all_sessions",
        "check",
    }
)
# Textual's palette entries that ours replace: Keys (our Help lists every key), Maximize/Minimize (z).
TEXTUAL_COMMANDS_REPLACED = frozenset({"Keys", "Maximize", "Minimize"})
NARROW_WIDTH = 100
STOP_TIMEOUT_S = 10.0


def utc_now() -> datetime:
    """Wall clock (UTC); tests inject a fixed clock instead."""
    return datetime.now(UTC)


class PgiamApp(SessionActions):
    """Multi-cluster console: cluster list + Activity, Events and IAM panes of the selected cluster."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "pgiam-tui"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()  # ui/keys.py: the one key table
    REPLAY: ClassVar[bool] = False  # the console on a recording (ui/replay.py), not on live clusters

    def __init__(
        self,
        source: SnapshotSource,
        clusters: Sequence[ClusterConfig] = (),
        *,
        now: Callable[[], datetime] = utc_now,
        tick: bool = True,
        interval_s: float | None = None,
        identity: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.cluster_configs = {c.name: c for c in clusters}
        self.now = now
        self.tick = tick
        self.interval_s = interval_s or (clusters[0].refresh_s if clusters else 2.0)
        self.identity = identity
        self.paused = False
        self.zoomed: str | None = None  # id of the zoomed pane
        self.latest: dict[str, ClusterSnapshot] = {}
        self.local_events: dict[str, list[ConnEvent]] = {}
        self.selected: str | None = clusters[0].name if clusters else None
        self.snapshots_seen = 0
        self._source_stopped = False
        self._gc_frozen = False

    # ----- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Top bar, cluster list beside the three panes, footer."""
        yield TopBar(id="topbar")
        with Horizontal(id="main"):
            yield ClusterList(id="clusters")
            with Vertical(id="right"):
                yield ActivityPane(id="activity")
                with Horizontal(id="lower"):
                    yield EventsPane(id="events")
                    yield IamPane(id="iam")
        yield Footer()

    def on_mount(self) -> None:
        """Lay out known clusters, start the source, start the countdown tick."""
        entries = [ClusterEntry(c.name, self._configured_group(c)) for c in self.cluster_configs.values()]
        self.cluster_list.set_entries(entries)
        self._render_selected()
        self._update_topbar()
        self.cluster_list.focus()
        self.source.set_mfa_handler(self._ask_mfa)
        self.start_source()
        if self.tick:
            self.set_interval(1.0, self._tick)
        self._apply_width(self.size.width)
        # Everything alive now (modules, Textual's classes and CSS, the widget tree) lives as long as
        # the app: a full garbage collection need not walk it again. A full pass comes every round or
        # two with thousands of sessions (each round brings new rows) and took ~65 ms, a third of it
        # over these objects.
        gc.freeze()
        self._gc_frozen = True

    @staticmethod
    def _configured_group(c: ClusterConfig) -> str:
        if c.group:
            return c.group
        if c.account_id:
            return f"account {c.account_id}"
        return ""

    def on_resize(self, event: events.Resize) -> None:
        """Narrow terminals (80 columns) get a narrower cluster list."""
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW_WIDTH, "-narrow")
        self.cluster_list.fit(width)

    @property
    def cluster_list(self) -> ClusterList:
        """The cluster list widget."""
        return self.query_one(ClusterList)

    @property
    def activity(self) -> ActivityPane:
        """The selected cluster's activity pane (main screen)."""
        return self.query_one("#activity", ActivityPane)

    # ----- source ---------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="source", description="start monitor")
    async def start_source(self) -> None:
        """Start the source on this loop; it emits through post_message (safe from any thread)."""

        def emit(snap: ClusterSnapshot) -> None:
            self.post_message(SnapshotArrived(snap))

        await self.source.start(emit)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for worker failures: a one-line notice, the app keeps running."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            what = event.worker.description or event.worker.name or "task"
            self.notify(
                visible(f"{what} failed: {type(err).__name__}: {err}"),
                severity="error",
                markup=False,
                timeout=10,
            )

    def on_snapshot_arrived(self, message: SnapshotArrived) -> None:
        """Keep the latest snapshot per cluster; re-render only what shows it."""
        snap = message.snapshot
        self.snapshots_seen += 1
        self.latest[snap.name] = snap
        clusters = self.cluster_list
        self._place_in_list(snap)
        if self.selected is None:
            self.selected = snap.name
            clusters.select(snap.name)
        clusters.update_cluster(snap.name, snap, self.now())
        if snap.name == self.selected:
            self._render_selected()
        screen = self.screen
        if isinstance(screen, AllSessionsScreen):
            screen.update(self.latest)
            self._update_topbar()
        elif isinstance(screen, SessionDetailScreen) and screen.cluster == snap.name:
            screen.update_rows(snap.activity)

    def _place_in_list(self, snap: ClusterSnapshot) -> None:
        """A cluster not in the config gets a row; one without a configured group moves under its account."""
        clusters = self.cluster_list
        cfg = self.cluster_configs.get(snap.name)
        configured = self._configured_group(cfg) if cfg is not None else ""
        if clusters.ensure(snap.name, group_of(snap, configured)) or configured:
            return
        entry = next(e for e in clusters.entries if e.name == snap.name)
        wanted = group_of(snap, "")
        if entry.group != wanted:
            clusters.set_entries(
                [ClusterEntry(e.name, wanted) if e.name == snap.name else e for e in clusters.entries]
            )
            for name, other in self.latest.items():
                clusters.update_cluster(name, other, self.now())

    def on_cluster_selected(self, message: ClusterSelected) -> None:
        """Switch every pane to the chosen cluster, from the data already held (no waiting)."""
        self.selected = message.name
        self._render_selected()

    def _events_of(self, name: str, snap: ClusterSnapshot | None) -> ClusterSnapshot | None:
        local = self.local_events.get(name)
        if not local or snap is None:
            return snap
        from dataclasses import replace

        return replace(snap, events=(*snap.events, *local))

    def _render_selected(self) -> None:
        name = self.selected
        snap = self.latest.get(name) if name else None
        self.activity.show_snapshot(snap, name=name, now=self.now())
        self.query_one(EventsPane).show_snapshot(self._events_of(name or "", snap), name=name)
        self.query_one(IamPane).show_snapshot(snap, self.now(), name=name)
        self._update_topbar()

    def _tick(self) -> None:
        """Once a second: token countdowns (a cell each, when it changed) and the top bar's ages."""
        now = self.now()
        for name, snap in self.latest.items():
            self.cluster_list.update_cluster(name, snap, now)
        self._update_topbar()

    def action_update_topbar(self) -> None:
        """Redraw the top bars (a screen that shows one asks for it when it opens)."""
        self._update_topbar()

    def _update_topbar(self) -> None:
        """Every top bar in the screen stack: the selected cluster's heartbeat, or all clusters' in the
        all-clusters view."""
        now = self.now()
        selected = self.latest.get(self.selected) if self.selected else None
        identity = (selected.identity_arn if selected else None) or self.identity
        for screen in self.screen_stack:
            for bar in screen.query(TopBar):
                merged_view = isinstance(screen, AllSessionsScreen)
                snaps = list(self.latest.values()) if merged_view else [selected] if selected else []
                bar.set(
                    topbar_text(
                        paused=self.paused,
                        interval_s=self.interval_s,
                        snaps=snaps,
                        identity=identity,
                        now=now,
                        waiting_for=None if merged_view else self.selected,
                        replay=self.REPLAY,
                    )
                )

    # ----- MFA ------------------------------------------------------------------------------------

    def _ask_mfa(self, prompt: str) -> str:
        """SessionFactory's mfa_prompt: runs in a boto3 thread, waits for the modal's answer."""
        return ask_mfa_blocking(self, prompt)

    # ----- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pane actions only where a pane is on screen (not on the detail screen or a modal)."""
        if action == "unzoom":
            return self.zoomed is not None and self.screen is self.screen_stack[0]
        if action == "filter" and isinstance(self.focused, Input):
            return False  # `/` typed into an input is a character (the binding is a priority one)
        if action in ACTIVITY_ACTIONS:
            screen = self.screen
            on_main = screen is self.screen_stack[0] if self.screen_stack else False
            if action in ("zoom", "all_sessions", "check", "terminate_idle_tx"):
                return on_main
            return on_main or isinstance(screen, AllSessionsScreen)
        return True

    def _focused_pane(self) -> Widget | None:
        focused = self.focused
        while focused is not None:
            if isinstance(focused, ActivityPane | EventsPane | IamPane):
                return focused
            parent = focused.parent
            focused = parent if isinstance(parent, Widget) else None
        return None

    def action_help(self) -> None:
        """Key reference."""
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        """Filter the focused pane (the activity pane unless the events pane has focus)."""
        pane = self._focused_pane()
        if isinstance(self.screen, AllSessionsScreen):
            self.screen.pane.open_filter()
        elif isinstance(pane, EventsPane):
            pane.open_filter()
        else:
            self.activity.open_filter()

    def action_sort(self) -> None:
        """Next sort column."""
        pane = self._activity_pane()
        # the header's arrow and the pane title say it: no toast (mounting one re-lays-out the screen)
        pane.table.cycle_sort()
        pane.refresh_title()

    def action_reverse_sort(self) -> None:
        """Flip the sort direction."""
        pane = self._activity_pane()
        pane.table.reverse_sort()
        pane.refresh_title()

    def action_sort_by(self, column: str) -> None:
        """Sort by a named column (command palette)."""
        pane = self._activity_pane()
        pane.table.set_sort(column)
        pane.refresh_title()

    def action_hide_idle(self) -> None:
        """Toggle hiding plain idle sessions."""
        pane = self._activity_pane()
        pane.table.hide_idle = not pane.table.hide_idle
        pane.table.reapply()
        pane.refresh_title()

    def action_background(self) -> None:
        """Toggle server background processes (autovacuum, walwriter, ...) in the activity table."""
        pane = self._activity_pane()
        pane.table.show_background = not pane.table.show_background
        pane.table.reapply()
        pane.refresh_title()

    def action_query_display(self) -> None:
        """Query text truncated -> wrapped -> full (pg_activity's `v`)."""
        pane = self._activity_pane()
        pane.table.set_query_display(next_display(pane.table.query_display))
        pane.refresh_title()

    def action_tree(self) -> None:
        """Toggle the blocking tree."""
        self._activity_pane().toggle_tree()

    def action_all_sessions(self) -> None:
        """All clusters' sessions in one table."""
        if not isinstance(self.screen, AllSessionsScreen):
            self.push_screen(AllSessionsScreen(self.latest))

    def action_pause(self) -> None:
        """Pause / resume polling."""
        self.paused = not self.paused
        if self.paused:
            self.source.pause()
        else:
            self.source.resume()
        self._update_topbar()

    def action_interval(self, step: int) -> None:
        """Next / previous refresh interval."""
        current = min(range(len(INTERVALS)), key=lambda i: abs(INTERVALS[i] - self.interval_s))
        self.interval_s = INTERVALS[max(0, min(len(INTERVALS) - 1, current + step))]
        self.source.set_interval(None, self.interval_s)
        self._update_topbar()

    @work(exclusive=True, exit_on_error=False, group="refresh", description="refresh")
    async def action_refresh(self) -> None:
        """Collect the selected cluster now."""
        await self.source.refresh_now(self.selected)

    def action_check(self) -> None:
        """Connection check of the selected cluster, in a modal."""
        name = self.selected
        if name is None:
            self.notify("no cluster selected", severity="warning")
            return
        self.push_screen(CheckScreen(name, lambda progress: self.source.run_check(name, progress)))

    def action_zoom(self) -> None:
        """Zoom the focused pane to the whole right side and width (the top bar stays), or restore."""
        if self.zoomed is not None:
            self.action_unzoom()
            return
        pane = self._focused_pane()
        if isinstance(self.focused, ClusterList):
            pane = self.activity  # the list itself is narrow by design: zoom what it selects
        if pane is None:
            self.notify("z zooms the activity, events or IAM pane: Tab to one first", timeout=3)
            return
        self.zoomed = pane.id
        self.add_class(f"-zoom-{pane.id}")
        self.screen.refresh_bindings()

    def action_unzoom(self) -> None:
        """Restore the layout after a zoom."""
        if self.zoomed is not None:
            self.remove_class(f"-zoom-{self.zoomed}")
            self.zoomed = None
            self.screen.refresh_bindings()

    def action_select_cluster(self, name: str) -> None:
        """Jump to a cluster (command palette, typing its name in the cluster list)."""
        self.cluster_list.select(name)

    async def action_quit(self) -> None:
        """Stop the source (closes every connection), then exit 0."""
        try:
            await self._stop_source()
        finally:
            self.exit(0)

    async def _stop_source(self) -> None:
        # Bounded: a connection stuck in a dead network must not keep the console from quitting.
        if self._source_stopped:
            return
        self._source_stopped = True
        try:
            await asyncio.wait_for(self.source.stop(), STOP_TIMEOUT_S)
        except Exception as exc:  # TimeoutError included
            self.log.warning(f"stopping the monitor: {type(exc).__name__}: {exc}")

    async def on_unmount(self) -> None:
        """Any other way out (ctrl+c, an exit from elsewhere) also stops the source."""
        if self._gc_frozen:
            gc.unfreeze()  # back to normal collection (tests run many apps in one process)
            self._gc_frozen = False
        await self._stop_source()

    # ----- command palette ----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The key table's actions, sort by any column, jump to any cluster; Textual's own where not ours."""
        names = dict.fromkeys([*self.cluster_configs, *self.latest])  # configured, then discovered
        ours = list(palette_commands(names))
        titles = {title for title, _, _ in ours}
        for command in super().get_system_commands(screen):
            # ours do the same with cleanup (quit) or for panes (zoom); Keys is a smaller help
            if command.title not in titles and command.title not in TEXTUAL_COMMANDS_REPLACED:
                yield command
        for title, help_text, action in ours:
            yield SystemCommand(title, help_text, partial(self.run_action, action))
