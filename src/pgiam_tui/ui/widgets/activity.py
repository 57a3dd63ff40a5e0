"""The activity pane: the sessions table (activity_table.py) or a blocking tree, a title, an error banner
and the filter input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import ContentSwitcher, Input, Static

from pgiam_tui.advice import for_console
from pgiam_tui.model import ClusterSnapshot, InstanceInfo
from pgiam_tui.ui.activity_filter import ACTIVITY_FILTER, parse_activity_filter
from pgiam_tui.ui.activity_model import Located
from pgiam_tui.ui.render import fmt_duration, safe_text
from pgiam_tui.ui.widgets.activity_table import ActivityTable, SortChanged
from pgiam_tui.ui.widgets.blocking_tree import BlockingTree
from pgiam_tui.ui.widgets.filterable import FilterablePane
from pgiam_tui.ui.widgets.text_line import TextLine


def stale_instances(snaps: Sequence[ClusterSnapshot]) -> frozenset[tuple[str, str]]:
    """(cluster, instance) whose rows are not from this round: the whole cluster when its round failed,
    else each member whose connection is not up or whose last read failed or ran over its budget."""
    out: set[tuple[str, str]] = set()
    for snap in snaps:
        ids = {i.id for i in snap.instances} | {r.instance for r in snap.activity}
        if snap.status == "error":
            out |= {(snap.name, i) for i in ids}
        else:  # per instance (the Monitor's freshness): a live reader is never dimmed for a stale writer
            out |= {(snap.name, i.id) for i in snap.instances if i.status != "connected" or i.freshness.stale}
    return frozenset(out)


def _age(inst: InstanceInfo, now: datetime | None) -> str:
    # when its rows were read (the Monitor's freshness), else when the connection changed state
    since = inst.freshness.collected_at or (inst.connection.since if inst.connection is not None else None)
    if since is None or now is None:
        return ""
    return f", rows dimmed: data from {fmt_duration((now - since).total_seconds())} ago"


def banner_text(snap: ClusterSnapshot, now: datetime | None) -> Text | None:
    """Why the rows may be old: the cluster's error with its fix, or each member that is not connected."""
    if snap.error is not None:
        text = Text()
        text.append("✖ ", style="bold red")
        text.append_text(safe_text(f"{snap.error.step}: {snap.error.message}", style="bold"))
        if snap.error.hint:
            text.append("\n  fix: ", style="yellow")
            text.append_text(safe_text(for_console(snap.error.hint, snap.name)))
        if snap.stale and snap.data_age_s is not None:
            text.append(f"\n  rows dimmed: data from {fmt_duration(snap.data_age_s)} ago", style="dim")
        return text
    # a connected instance whose last read ran over its budget (a stalled server) is troubled too
    troubled = [i for i in snap.instances if i.status != "connected" or i.freshness.stale]
    if not troubled:
        return None
    # The cluster answers, but not every member does (e.g. a reader reconnecting).
    text = Text()
    for n, inst in enumerate(troubled):
        if n:
            text.append("\n")
        text.append("◐ ", style="bold yellow")
        text.append_text(safe_text(f"{inst.role} {inst.id}: {inst.status}", style="bold"))
        if inst.error:
            text.append(" — ")
            text.append_text(safe_text(inst.error, 200))
        text.append(_age(inst, now), style="dim")
    return text


__all__ = ["ActivityPane", "ActivityTable", "BlockingTree", "Located"]


class ActivityPane(FilterablePane):
    """Title line, an error banner for a failing cluster, the table or the tree, and the filter input."""

    ALLOW_MAXIMIZE = True
    can_focus = False
    FILTER_INPUT_ID = "activity-filter"

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.with_cluster = with_cluster
        self.cluster_name: str | None = None
        self.awaiting_first_round = False  # a cluster is shown whose first round has not ended yet
        self._banner: Text | None = None

    def compose(self) -> ComposeResult:
        """Title, banner, table/tree switcher, filter input."""
        yield TextLine(Text("Activity", style="bold"), classes="pane-title", id="activity-title")
        yield Static("", classes="error-banner", id="activity-error")
        with ContentSwitcher(initial="activity-table", id="activity-switcher"):
            yield ActivityTable(with_cluster=self.with_cluster, id="activity-table")
            yield BlockingTree(id="activity-tree")
        yield Input(
            placeholder=f"filter: {ACTIVITY_FILTER.example}   (Esc closes)",
            id="activity-filter",
        )

    @property
    def table(self) -> ActivityTable:
        """The sessions table."""
        return self.query_one(ActivityTable)

    @property
    def blocking_tree(self) -> BlockingTree:
        """The blocking tree."""
        return self.query_one(BlockingTree)

    @property
    def tree_shown(self) -> bool:
        """Whether the blocking tree replaces the table."""
        return self.query_one(ContentSwitcher).current == "activity-tree"

    def toggle_tree(self) -> None:
        """Table <-> blocking tree."""
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "activity-table" if self.tree_shown else "activity-tree"
        if self.tree_shown:
            self.blocking_tree.show(self.table.sessions, with_cluster=self.with_cluster)
            self.blocking_tree.focus()
        else:
            self.table.focus()
        self._update_title()

    def show_snapshot(
        self, snap: ClusterSnapshot | None, *, name: str | None = None, now: datetime | None = None
    ) -> None:
        """Render one cluster (a new cluster resets the table; the same cluster is a diff)."""
        reset = name != self.cluster_name
        self.cluster_name = name
        self.awaiting_first_round = snap is None and name is not None
        if snap is None:
            self.table.show([], reset=reset)
            self._set_banner(None)
            self._update_title(None)
            return
        sessions = [Located(snap.name, r) for r in snap.activity]
        several = len({i.id for i in snap.instances} | {r.instance for r in snap.activity}) > 1
        if reset:
            self.table.show([], reset=True)
        self.table.set_instance_column(several)
        self.table.set_stale_instances(stale_instances([snap]))
        self.table.show(sessions)
        if self.tree_shown:
            self.blocking_tree.show(sessions)
        self._set_banner(banner_text(snap, now))
        self._update_title(snap)

    def _set_banner(self, text: Text | None) -> None:
        """Show / hide the banner; an unchanged text is not sent again (that would re-lay-out the screen)."""
        banner = self.query_one("#activity-error", Static)
        if text is None:
            if banner.display:
                banner.display = False
            self._banner = None
            return
        if text != self._banner:
            self._banner = text
            banner.update(text)
        if not banner.display:
            banner.display = True

    def show_many(self, sessions: Sequence[Located], stale: frozenset[tuple[str, str]] = frozenset()) -> None:
        """All-clusters view: merged sessions (rows of `stale` (cluster, instance) pairs dimmed)."""
        self.awaiting_first_round = False
        self._set_banner(None)
        self.table.set_stale_instances(stale)
        self.table.show(sessions)
        if self.tree_shown:
            self.blocking_tree.show(sessions, with_cluster=True)
        self._update_title()

    def on_sort_changed(self, message: SortChanged) -> None:
        """A header click sorted the table."""
        self._update_title()

    def _update_title(self, snap: ClusterSnapshot | None = None) -> None:
        table = self.table
        title = Text()
        title.append("Activity", style="bold")
        if self.with_cluster:
            title.append(" — all clusters")
        elif self.cluster_name:
            title.append(" — ")
            title.append_text(safe_text(self.cluster_name))
        if self.awaiting_first_round:  # no round has ended yet: "0/0 sessions" would be a claim
            title.append("  first round running…", style="dim")
        else:
            title.append(
                f"  {table.row_count}/{table.row_count_total} sessions · {table.describe()}", style="dim"
            )
        if self.tree_shown:
            title.append(" · blocking tree", style="dim")
        self.query_one("#activity-title", TextLine).set(title)

    def refresh_title(self) -> None:
        """Re-draw the title after a sort/filter change."""
        self._update_title()

    def current_filter_text(self) -> str:
        """The text of the session filter in force."""
        return self.table.session_filter.text

    def set_filter(self, text: str) -> None:
        """Parse and apply a session filter (FilterError, a ValueError, when it is not valid)."""
        self.table.session_filter = parse_activity_filter(text)
