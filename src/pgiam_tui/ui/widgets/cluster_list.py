"""The cluster list: one row per cluster, grouped under account / label headings, updated cell by cell."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import DataTable

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.textsafe import ELLIPSIS
from pgiam_tui.ui.activity_model import is_background
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.messages import ClusterSelected
from pgiam_tui.ui.render import fmt_countdown, safe_text

GROUP_PREFIX = "group:"
CLUSTER_PREFIX = "cluster:"
# (key, header, width): drawn without cell padding, so each width after the first includes one
# leading space; 33 columns in all (the list is 34 wide with its border).
COLUMNS = (
    ("cluster", "cluster", 10),
    ("health", "", 3),
    ("token", " token", 6),
    ("a/w/all", " a/w/all", 9),
    ("fail", " fail", 5),
)
LIST_WIDTH = sum(w for _, _, w in COLUMNS)
NAME_WIDTH = COLUMNS[0][2]


def heading_cells(group: str, style: str = "bold underline") -> tuple[Text, ...]:
    """A group heading spread over the row's cells: with no cell padding the pieces join up, so the
    heading gets the list's whole width instead of the name column's ("db-account/us-east-1").
    Longer headings keep their start and end ("db-account-prod…us-east-1")."""
    shown = safe_text(group).plain
    if len(shown) > LIST_WIDTH:
        keep = LIST_WIDTH - 1
        shown = shown[: keep - keep // 2] + ELLIPSIS + shown[len(shown) - keep // 2 :]
    cells = []
    start = 0
    for _, _, width in COLUMNS:
        cells.append(Text(shown[start : start + width], style=style, no_wrap=True, end=""))
        start += width
    return tuple(cells)


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """A cluster known before any data arrives (from the config)."""

    name: str
    group: str


def health(snap: ClusterSnapshot | None) -> tuple[str, str, str]:
    """(symbol, style, word) for a cluster's state."""
    if snap is None:
        return ("…", "dim", "connecting")
    if snap.status == "error":
        return ("✖", "bold red", "failed")
    states = {i.status for i in snap.instances}
    # a stale instance (its last read failed or ran over its budget) is never shown as healthy
    if states & {"failed", "reconnecting", "connecting", "stopped"} or any(
        i.freshness.stale for i in snap.instances
    ):
        return ("◐", "bold yellow", "degraded")
    return ("●", "bold green", "connected")


def session_counts(snap: ClusterSnapshot) -> tuple[int, int, int]:
    """(active, waiting, total) of client sessions (server background processes not counted)."""
    rows = [r for r in snap.activity if not is_background(r)]
    active = sum(1 for r in rows if r.state == "active")
    waiting = sum(1 for r in rows if r.blocked_by or r.wait_event_type == "Lock")
    return active, waiting, len(rows)


def recent_failures(snap: ClusterSnapshot) -> int:
    """Failed logins in the snapshot's window: its attempts that failed (`Attempt.failed`, the one definition
    the events footer and `snapshot` use too)."""
    return sum(1 for a in snap.attempts if a.failed)


def group_of(snap: ClusterSnapshot | None, fallback: str) -> str:
    """The heading a cluster sits under: its label, else its account."""
    if snap is not None and snap.group:
        return snap.group
    if fallback:
        return fallback
    if snap is not None and snap.account_id:
        return f"account {snap.account_id}"
    return "clusters"


class ClusterList(DataTable[Text]):
    """Clusters grouped by label or account; selecting a row switches every pane to that cluster."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("clusters")  # ui/keys.py: this pane's footer

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=0)
        self.entries: list[ClusterEntry] = []
        self._cells: dict[str, tuple[Text, ...]] = {}
        self.selected: str | None = None
        self._last_row = 0

    def on_mount(self) -> None:
        """Fixed columns."""
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def set_entries(self, entries: Sequence[ClusterEntry]) -> None:
        """(Re)build the row layout: group headings, then their clusters in config order."""
        cursor = self.selected
        self.entries = list(entries)
        self.clear()
        self._cells.clear()
        groups: dict[str, list[ClusterEntry]] = {}
        for e in self.entries:
            groups.setdefault(e.group, []).append(e)
        for group, members in groups.items():
            self.add_row(*heading_cells(group), key=GROUP_PREFIX + group)
            for e in members:
                cells = self._row(e.name, None, None)
                self.add_row(*cells, key=CLUSTER_PREFIX + e.name)
                self._cells[e.name] = cells
        if cursor is not None:
            self.select(cursor)
        elif self.entries:
            self.select(self.entries[0].name)

    def ensure(self, name: str, group: str) -> bool:
        """Add a cluster seen for the first time (no config entry); True if the layout changed."""
        if any(e.name == name for e in self.entries):
            return False
        self.set_entries([*self.entries, ClusterEntry(name, group)])
        return True

    def _row(self, name: str, snap: ClusterSnapshot | None, now: datetime | None) -> tuple[Text, ...]:
        symbol, style, _ = health(snap)
        if snap is None:
            return (
                safe_text(name, NAME_WIDTH),
                Text(" " + symbol, style=style),
                Text(""),
                Text(""),
                Text(""),
            )
        active, waiting, total = session_counts(snap)
        fails = recent_failures(snap)
        countdown = fmt_countdown(snap.token_expires_at, now) if now is not None else ""
        # A token is checked only at login: once it expires the session stays up and the next reconnect
        # makes a fresh one. So "expired" is information (dim), not an alarm.
        token_style = ""
        if countdown == "expired":
            countdown, token_style = "exp", "dim"
        return (
            safe_text(name, NAME_WIDTH),
            Text(" " + symbol, style=style),
            Text(" " + countdown, style=token_style),
            Text(f" {active}/{waiting}/{total}", style="red" if waiting else ""),
            Text(f" {fails}" if fails else "", style="bold red" if fails else ""),
        )

    def update_cluster(self, name: str, snap: ClusterSnapshot | None, now: datetime) -> None:
        """Refresh one cluster's cells (only those that changed)."""
        if name not in self._cells:
            return
        cells = self._row(name, snap, now)
        old = self._cells[name]
        keys = [key for key, _, _ in COLUMNS]
        for col, before, after in zip(keys, old, cells, strict=True):
            if before.plain != after.plain or before.style != after.style:
                self.update_cell(CLUSTER_PREFIX + name, col, after)
        self._cells[name] = cells

    def select(self, name: str) -> None:
        """Put the cursor on a cluster."""
        try:
            index = self.get_row_index(CLUSTER_PREFIX + name)
        except Exception:
            return
        self.move_cursor(row=index)
        if name != self.selected:
            # The highlight event arrives later and then sees nothing new: announce the switch now.
            self.selected = name
            self.post_message(ClusterSelected(name))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Cursor on a cluster row selects it; on a heading, skip to the next cluster in that direction."""
        if event.data_table is not self:
            return
        event.stop()
        key = str(event.row_key.value)
        previous, self._last_row = self._last_row, event.cursor_row
        if key.startswith(GROUP_PREFIX):
            # Headings are not selectable: step over them in the direction the cursor was moving.
            up = event.cursor_row < previous and event.cursor_row > 0
            target = event.cursor_row - 1 if up else event.cursor_row + 1
            if target >= self.row_count:
                target = event.cursor_row - 1
            if 0 <= target < self.row_count and target != event.cursor_row:
                self.move_cursor(row=target)
            return
        name = key[len(CLUSTER_PREFIX) :]
        if name != self.selected:
            self.selected = name
            self.post_message(ClusterSelected(name))
