"""The cluster list: one row per cluster, grouped under account / label headings, updated cell by cell."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import BindingType
from textual.coordinate import Coordinate
from textual.strip import Strip
from textual.widgets import DataTable

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.textsafe import ELLIPSIS, visible
from pgiam_tui.ui.activity_model import is_background
from pgiam_tui.ui.cluster_health import TpsMeter, health_parts, parts_line
from pgiam_tui.ui.cluster_jump import ClusterJump
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.messages import ClusterSelected
from pgiam_tui.ui.render import fmt_countdown
from pgiam_tui.ui.widgets.cached_table import CachedCellTable

GROUP_PREFIX = "group:"
CLUSTER_PREFIX = "cluster:"
# (key, header, width): drawn without cell padding, so each width after the first includes one leading
# space. The name and a/w/all widths adapt (see ClusterList.fit); these are their least widths.
COLUMNS = (
    ("cluster", "cluster", 10),
    ("health", "", 3),
    ("token", " token", 6),
    ("a/w/all", " a/w/all", 9),
    ("fail", " fail", 5),
)
MIN_NAME_WIDTH = COLUMNS[0][2]
MAX_NAME_WIDTH = 40
LIST_SHARE = 0.4  # of the screen's width, at most, for long names (the activity pane keeps the rest)
NARROW_SHARE = 0.35
WIDE_SCREEN = 180  # from here on the list widens for its whole health line


def middle_cut(text: str, width: int) -> str:
    """TEXT shown (controls made visible) in at most WIDTH columns, cut in the middle: the ends of cluster
    names tell them apart (`orders-p…d` vs `orders-p…r`, not `orders-pr…` twice)."""
    pieces = [visible(ch) for ch in text]
    if sum(len(p) for p in pieces) <= width:
        return "".join(pieces)
    budget = max(0, width - 1)
    head_budget = budget - budget // 2
    head: list[str] = []
    used = 0
    for p in pieces:
        if used + len(p) > head_budget:
            break
        head.append(p)
        used += len(p)
    tail: list[str] = []
    used_tail = 0
    for p in reversed(pieces[len(head) :]):
        if used + used_tail + len(p) > budget:
            break
        tail.append(p)
        used_tail += len(p)
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))


def heading_cells(group: str, widths: Sequence[int], style: str = "bold underline") -> tuple[Text, ...]:
    """A group heading spread over the row's cells: with no cell padding the pieces join up, so the
    heading gets the list's whole width instead of the name column's ("db-account/us-east-1").
    Longer headings keep their start and end ("db-account-prod…us-east-1")."""
    return spread(Text(middle_cut(group, sum(widths)), style=style), widths)


def spread(text: Text, widths: Sequence[int]) -> tuple[Text, ...]:
    """TEXT (one line, styles kept) cut into consecutive pieces of WIDTHS, one per cell."""
    offsets = []
    at = 0
    for width in widths[:-1]:
        at += width
        offsets.append(at)
    pieces = text.divide(offsets)
    out = []
    for piece in list(pieces)[: len(widths)]:
        piece.no_wrap = True
        piece.end = ""
        out.append(piece)
    while len(out) < len(widths):
        out.append(Text(""))
    return tuple(out)


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


@dataclass(frozen=True, slots=True)
class _Summary:
    """What the list shows of one snapshot, worked out once when it arrives: walking thousands of
    sessions for every cluster on every one-second tick was most of the console's CPU at 10 clusters."""

    snap: ClusterSnapshot
    counts: tuple[int, int, int]
    fails: int
    parts: list[tuple[str, str, str]]
    length: int  # of the whole health line


class ClusterList(CachedCellTable[Text]):
    """Clusters grouped by label or account; selecting a row switches every pane to that cluster.

    Each cluster takes two lines: name, health, token, sessions and failures; then its health at a glance
    (longest query, oldest transaction, connections, transactions per second, replica lag).
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("clusters")  # ui/keys.py: this pane's footer

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=0)
        self.entries: list[ClusterEntry] = []
        self._longest_name = 0
        self._counts_needed: dict[str, int] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._snaps: dict[str, ClusterSnapshot] = {}
        self._summaries: dict[str, _Summary] = {}
        self._now: datetime | None = None
        self.tps = TpsMeter()
        self.selected: str | None = None
        self._last_row = 0
        self._screen_width = 120
        self.widths: tuple[int, ...] = tuple(w for _, _, w in COLUMNS)
        self.jump: ClusterJump | None = None  # type-to-jump in progress (`'`, then the name)

    def on_mount(self) -> None:
        """Columns at their least widths until fit() knows the names and the screen."""
        self._add_columns()

    def _add_columns(self) -> None:
        for (key, label, _), width in zip(COLUMNS, self.widths, strict=True):
            self.add_column(label, width=width, key=key)

    # ----- width ---------------------------------------------------------------------------------

    def _wanted_widths(self) -> tuple[int, ...]:
        others = sum(w for _, _, w in COLUMNS[1:])
        share = NARROW_SHARE if self._screen_width < 100 else LIST_SHARE
        room = int(self._screen_width * share) - 1 - others - (COLUMNS[3][2] - self._counts_width())
        longest = self._longest_name
        # On wide screens the health line (second line) may ask for more room than the names do; narrower
        # ones keep the activity pane's width and show the parts of it that fit.
        health_need = 0
        if self._screen_width >= WIDE_SCREEN:
            health_need = max((self._health_length(n) for n in self._snaps), default=0) + 2
        rest = others - COLUMNS[3][2] + self._counts_width()
        name = max(MIN_NAME_WIDTH, min(max(longest, health_need - rest), MAX_NAME_WIDTH, room))
        widths = [w for _, _, w in COLUMNS]
        widths[0] = name
        widths[3] = self._counts_width()
        return tuple(widths)

    def _health_length(self, name: str) -> int:
        return self._summary(self._snaps[name]).length

    def _summary(self, snap: ClusterSnapshot) -> _Summary:
        """The snapshot's counts and health parts, computed on first use (after the TPS meter took it)."""
        known = self._summaries.get(snap.name)
        if known is not None and known.snap is snap:
            return known
        parts = health_parts(snap, self.tps.tps(snap))
        summary = _Summary(snap, session_counts(snap), recent_failures(snap), parts, len(parts_line(parts)))
        self._summaries[snap.name] = summary
        return summary

    def _counts_width(self) -> int:
        # the a/w/all cell is never cut (1001/0/1008): its column is as wide as the widest count
        return max([COLUMNS[3][2], *self._counts_needed.values()])

    def _keep_cells(self, name: str, cells: tuple[Text, ...]) -> None:
        """Remember a cluster's cells, and the width its counts need (asked for every cluster, every tick)."""
        self._cells[name] = cells
        self._counts_needed[name] = len(cells[3].plain.split("\n")[0]) + 1

    def fit(self, screen_width: int | None = None, *, grow_only: bool = False) -> None:
        """Size the columns to the names, counts and health lines shown, within a share of SCREEN_WIDTH.

        GROW_ONLY (between rounds): widen when something outgrew its column, never narrow, so the list does
        not change width with every round's durations.
        """
        if screen_width is not None:
            self._screen_width = screen_width
        wanted = self._wanted_widths()
        if grow_only:
            wanted = tuple(max(a, b) for a, b in zip(wanted, self.widths, strict=True))
        if wanted != self.widths:
            self.widths = wanted
            self.clear(columns=True)
            self._add_columns()
            self._build_rows()
        self.styles.width = sum(self.widths) + 1  # + the border

    # ----- rows ----------------------------------------------------------------------------------

    def set_entries(self, entries: Sequence[ClusterEntry]) -> None:
        """(Re)build the row layout: group headings, then their clusters in config order."""
        self.entries = list(entries)
        # once per layout change, not for every cluster on every tick (each name is escaped char by char)
        self._longest_name = max((len(middle_cut(e.name, 10_000)) for e in self.entries), default=0)
        self.clear()
        self._build_rows()
        self.fit()

    def _build_rows(self) -> None:
        cursor = self.selected
        self._cells.clear()
        self._counts_needed.clear()
        groups: dict[str, list[ClusterEntry]] = {}
        for e in self.entries:
            groups.setdefault(e.group, []).append(e)
        for group, members in groups.items():
            self.add_row(*heading_cells(group, self.widths), key=GROUP_PREFIX + group)
            for e in members:
                cells = self._row(e.name, self._snaps.get(e.name), self._now)
                self.add_row(*cells, key=CLUSTER_PREFIX + e.name, height=2)
                self._keep_cells(e.name, cells)
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
        first: list[Text]
        if snap is None:
            first = [Text(middle_cut(name, self.widths[0])), Text(" " + symbol, style=style)]
            first += [Text(""), Text(""), Text("")]
        else:
            summary = self._summary(snap)
            active, waiting, total = summary.counts
            fails = summary.fails
            countdown = fmt_countdown(snap.token_expires_at, now) if now is not None else ""
            token_style = ""
            if countdown == "expired":
                # A token is checked only at login: the session stays up, and the next connect makes a
                # fresh token (which restarts the countdown). Nothing to count down meanwhile.
                countdown, token_style = "—", "dim"
            first = [
                Text(middle_cut(name, self.widths[0])),
                Text(" " + symbol, style=style),
                Text(" " + countdown, style=token_style),
                Text(f" {active}/{waiting}/{total}", style="red" if waiting else ""),
                Text(f" {fails}" if fails else "", style="bold red" if fails else ""),
            ]
        line = (
            parts_line(self._summary(snap).parts, sum(self.widths) - 2)
            if snap
            else Text(no_wrap=True, end="")
        )
        second = spread(Text("  ").append_text(line), self.widths)
        cells = []
        for top, bottom in zip(first, second, strict=True):
            cell = top.copy()
            cell.no_wrap = True
            cell.end = ""
            cell.append("\n")
            cell.append_text(bottom)
            cells.append(cell)
        return tuple(cells)

    def update_cluster(self, name: str, snap: ClusterSnapshot | None, now: datetime) -> None:
        """Refresh one cluster's cells (only those that changed)."""
        if name not in self._cells:
            return
        self._now = now
        if snap is not None and self._snaps.get(name) is not snap:
            self.tps.feed(snap)
            self._snaps[name] = snap
        cells = self._row(name, snap, now)
        old = self._cells[name]
        self._keep_cells(name, cells)
        grown = any(a > b for a, b in zip(self._wanted_widths(), self.widths, strict=True))
        if grown:
            self.fit(grow_only=True)  # a count or health line outgrew its column: rebuild (rare)
            return
        keys = [key for key, _, _ in COLUMNS]
        for col, before, after in zip(keys, old, cells, strict=True):
            if before.plain != after.plain or before.spans != after.spans or before.style != after.style:
                self.update_cell(CLUSTER_PREFIX + name, col, after)

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

    # ----- cursor: headings are stepped over at once, so quick presses land where they should --------

    def _cluster_rows(self) -> list[int]:
        rows = []
        for index in range(self.row_count):
            key = self.coordinate_to_cell_key(Coordinate(index, 0)).row_key
            if str(key.value).startswith(CLUSTER_PREFIX):
                rows.append(index)
        return rows

    def _step(self, direction: int) -> None:
        rows = self._cluster_rows()
        if not rows:
            return
        here = self.cursor_row
        if direction > 0:
            target = next((r for r in rows if r > here), rows[-1])
        else:
            target = next((r for r in reversed(rows) if r < here), rows[0])
        self.move_cursor(row=target)

    def action_cursor_down(self) -> None:
        """Next cluster (over any heading)."""
        self._step(+1)

    def action_cursor_up(self) -> None:
        """Previous cluster (over any heading)."""
        self._step(-1)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Cursor on a cluster row selects it; on a heading (a click, page keys), the next cluster below."""
        if event.data_table is not self:
            return
        event.stop()
        key = str(event.row_key.value)
        previous, self._last_row = self._last_row, event.cursor_row
        if key.startswith(GROUP_PREFIX):
            if self.cursor_row != event.cursor_row:
                return  # the cursor has moved on since (this event is stale)
            up = event.cursor_row < previous and event.cursor_row > 0
            self._step(-1 if up else +1)
            return
        name = key[len(CLUSTER_PREFIX) :]
        if name != self.selected:
            self.selected = name
            self.post_message(ClusterSelected(name))

    # ----- type-to-jump: `'`, then letters of the name; shown in the header line while typed -----------

    def cluster_names(self) -> list[str]:
        """The clusters in the order the list shows them."""
        keys = (self.coordinate_to_cell_key(Coordinate(i, 0)).row_key for i in self._cluster_rows())
        return [str(k.value)[len(CLUSTER_PREFIX) :] for k in keys]

    def action_start_jump(self) -> None:
        """Start typing a cluster's name (Enter keeps the cluster found, Esc goes back)."""
        self.jump = ClusterJump(self.cluster_names(), self.selected)
        self.refresh_line(0)

    def on_key(self, event: events.Key) -> None:
        """`'` starts a jump; while jumping, name characters and Backspace edit the name, Enter / Esc / any
        other key end it.

        `'` is handled here, not only by its binding: a binding's action runs after the keys already queued,
        so letters typed quickly after it (or pasted) would miss the jump and act as keys of their own."""
        jump = self.jump
        if jump is None:
            if event.key == "apostrophe":
                event.stop()
                event.prevent_default()
                self.action_start_jump()
            return
        outcome = jump.key(event.key, event.character)
        if outcome.consumed:
            event.stop()
            event.prevent_default()
        if outcome.done:
            self.jump = None
        if outcome.target is not None:
            self.select(outcome.target)
        self.refresh_line(0)

    def on_blur(self) -> None:
        """Leaving the list ends a jump (the name found stays selected)."""
        if self.jump is not None:
            self.jump = None
            self.refresh_line(0)

    def render_line(self, y: int) -> Strip:
        """The header line shows the name being typed while jumping."""
        if y == 0 and self.jump is not None:
            width = self.scrollable_content_region.width
            return Strip(self.jump.prompt().render(self.app.console)).crop_extend(0, width, self.rich_style)
        return super().render_line(y)
