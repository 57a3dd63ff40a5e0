"""All clusters' sessions in one table, with a cluster column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.widgets.activity import ActivityPane, Located, stale_instances
from pgiam_tui.ui.widgets.top_bar import TopBar


def merged(snapshots: Mapping[str, ClusterSnapshot]) -> list[Located]:
    """Every session of every cluster, tagged with its cluster."""
    return [Located(name, row) for name, snap in snapshots.items() for row in snap.activity]


class AllSessionsScreen(Screen[None]):
    """The merged view; updated by the app on every snapshot while it is shown."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("all")

    def __init__(self, snapshots: Mapping[str, ClusterSnapshot]) -> None:
        super().__init__()
        self._initial = dict(snapshots)

    def compose(self) -> ComposeResult:
        """One activity pane with the cluster column."""
        yield TopBar(id="topbar-all")
        yield ActivityPane(with_cluster=True, id="all-activity")
        yield Footer()

    def on_mount(self) -> None:
        """Fill at once from the latest snapshots."""
        self.update(self._initial)
        self.pane.table.focus()
        self.app.call_after_refresh(self.app.run_action, "update_topbar")

    @property
    def pane(self) -> ActivityPane:
        """The merged pane."""
        return self.query_one(ActivityPane)

    def update(self, snapshots: Mapping[str, ClusterSnapshot]) -> None:
        """Diff the merged table against the latest snapshots."""
        self.pane.show_many(merged(snapshots), stale_instances(list(snapshots.values())))

    def action_close(self) -> None:
        """Back."""
        self.dismiss(None)
