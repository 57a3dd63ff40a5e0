"""The activity pane: pg_stat_activity as a DataTable updated in place by row key, plus a blocking tree.

Updates follow dolphie's Processlist: rows that went away are removed, new rows added, changed cells
updated with update_cell, all inside app.batch_update(); the table is never cleared while live, so the
cursor (kept on its row key across re-sorts) and the scroll position stay where the DBA left them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import ClassVar

from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, Input, Static, Tree
from textual.widgets.data_table import CellKey, ColumnKey, RowKey
from textual.widgets.tree import TreeNode

from pgiam_tui.model import ClusterSnapshot, SessionRow
from pgiam_tui.ui.activity_model import (
    ACTIVITY_COLUMNS,
    COLUMN_LABELS,
    ROW_STYLES,
    BlockNode,
    FilterError,
    SessionFilter,
    blockers_of,
    blocking_forest,
    is_background,
    is_idle,
    parse_filter,
    row_cells,
    row_class,
)
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.render import SortCell, cell, fmt_duration, safe_text


@dataclass(frozen=True, slots=True)
class Located:
    """A session together with the cluster it belongs to."""

    cluster: str
    row: SessionRow

    @property
    def key(self) -> str:
        """Row key unique across clusters."""
        return f"{self.cluster}/{self.row.key}"


# Per column, a getter of the SessionRow fields it shows (C-speed comparison of old vs new row).
_COLUMN_FIELDS = tuple((i, col, attrgetter(*col.fields)) for i, col in enumerate(ACTIVITY_COLUMNS))
_VOLATILE_KEYS = ("duration", "xact")  # change every round while a session runs
_VOLATILE = tuple(c for c in _COLUMN_FIELDS if c[1].key in _VOLATILE_KEYS)
_STATIC = attrgetter(*(f for c in ACTIVITY_COLUMNS if c.key not in _VOLATILE_KEYS for f in c.fields))


def _same(a: SortCell, b: SortCell) -> bool:
    return a.plain == b.plain and a.style == b.style and a.sort_key == b.sort_key


class ActivityTable(DataTable[SortCell]):
    """Sessions of one cluster (or of all clusters, with a cluster column), diff-updated by row key."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "choose", "Detail", show=False)]

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.with_cluster = with_cluster
        self.sort_column = "duration"
        self.sort_reverse = True
        self.session_filter = SessionFilter()
        self.hide_idle = False
        self.show_background = False  # autovacuum, walwriter, ...: noise for a DBA watching sessions
        self._shown: dict[str, tuple[SortCell, ...]] = {}
        self._prev: dict[str, tuple[SessionRow, str]] = {}
        # direct references to DataTable's per-row cell dicts and column keys (hot path of big diffs)
        self._cell_data: dict[str, dict[ColumnKey, SortCell]] = {}
        self._col_objs: dict[str, ColumnKey] = {}
        self._rows: dict[str, Located] = {}
        self._col_keys: tuple[str, ...] = (("cluster",) if with_cluster else ()) + tuple(
            c.key for c in ACTIVITY_COLUMNS
        )
        self._sources: list[Located] = []

    def on_mount(self) -> None:
        """Fixed-width columns: widths never depend on data, so updates never re-layout."""
        if self.with_cluster:
            self._col_objs["cluster"] = self.add_column("cluster", width=12, key="cluster")
        for col in ACTIVITY_COLUMNS:
            self._col_objs[col.key] = self.add_column(col.label, width=col.width, key=col.key)

    @property
    def row_count_total(self) -> int:
        """Sessions before filtering."""
        return len(self._sources)

    def located(self, key: str) -> Located | None:
        """The session behind a row key (as of the last update)."""
        return self._rows.get(key)

    def current(self) -> Located | None:
        """The session under the cursor."""
        if self.row_count == 0:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # cursor outside the table (empty after a filter)
            return None
        return self._rows.get(str(row_key.value))

    def action_choose(self) -> None:
        """Enter: ask the app for the detail screen of the row under the cursor."""
        loc = self.current()
        if loc is not None:
            self.post_message(SessionChosen(loc.cluster, loc.key))

    def show(self, sessions: Sequence[Located], *, reset: bool = False) -> None:
        """Bring the table in line with `sessions` (a diff unless `reset`: a new cluster starts afresh)."""
        self._sources = list(sessions)
        if reset:
            self.clear()
            self._shown.clear()
            self._rows.clear()
            self._prev.clear()
            self._cell_data.clear()
        blockers = blockers_of(loc.row for loc in sessions)
        rows: dict[str, Located] = {}
        flt = self.session_filter
        for loc in sessions:
            row = loc.row
            if self.hide_idle and is_idle(row):
                continue
            if not self.show_background and is_background(row):
                continue
            if flt.active and not flt.matches(row, loc.cluster):
                continue
            rows.setdefault(loc.key, loc)  # a duplicate key in one snapshot: keep the first
        self._rows = rows
        offset = 1 if self.with_cluster else 0
        sort_index = self._col_keys.index(self.sort_column) if self.sort_column in self._col_keys else -1
        resort = False
        changed = False
        cursor_key = self._cursor_key()
        with self.app.batch_update():
            gone = [k for k in self._shown if k not in rows]
            if gone:
                self._remove_rows(gone)
            for key, loc in rows.items():
                row = loc.row
                style = ROW_STYLES[row_class(row, blockers)]
                prev = self._prev.get(key)
                if prev is None:
                    cells = row_cells(row, blockers, loc.cluster if self.with_cluster else None)
                    row_key = self.add_row(*cells, key=key)
                    self._cell_data[key] = self._data[row_key]
                    self._shown[key] = cells
                    self._prev[key] = (row, style)
                    resort = True
                    continue
                prev_row, prev_style = prev
                if prev_row is row:
                    continue
                old = self._shown[key]
                new = list(old)
                restyle = prev_style != style
                data = self._cell_data[key]
                col_objs = self._col_objs
                if restyle and offset:
                    new[0] = cell(loc.cluster, style=style, max_len=12)
                    data[col_objs["cluster"]] = new[0]
                    changed = True
                # Usually only the durations moved: one tuple comparison rules out the other columns.
                check = _COLUMN_FIELDS if restyle or _STATIC(prev_row) != _STATIC(row) else _VOLATILE
                for i, col, fields_of in check:
                    if not restyle and fields_of(prev_row) == fields_of(row):
                        continue
                    after = col.make(row, style)
                    if not _same(old[i + offset], after):
                        new[i + offset] = after
                        # What update_cell does, minus its refresh per call (one refresh below).
                        data[col_objs[col.key]] = after
                        changed = True
                        if i + offset == sort_index:
                            resort = True
                self._shown[key] = tuple(new)
                self._prev[key] = (row, style)
            if changed:
                self._update_count += 1
                self.refresh()
            if resort:
                self._resort(cursor_key)

    def _remove_rows(self, keys: list[str]) -> None:
        """Remove many rows in one pass.

        DataTable.remove_row re-indexes every remaining row per call (O(n) each, plus a re-render of the
        hover cell), which makes a round that drops hundreds of sessions from a 10,000-row table take
        seconds. For more than a few rows we do the same bookkeeping once (Textual 8 internals).
        """
        for key in keys:
            del self._shown[key]
            self._prev.pop(key, None)
            self._cell_data.pop(key, None)
        if len(keys) <= 8:
            for key in keys:
                self.remove_row(key)
            return
        gone = {RowKey(k) for k in keys}
        remaining = sorted(
            (index, row_key)
            for row_key, index in ((rk, self._row_locations.get(rk)) for rk in self._row_locations)
            if row_key not in gone
        )
        self._row_locations = TwoWayDict({row_key: i for i, (_, row_key) in enumerate(remaining)})
        for row_key in gone:
            for column_key in self._data.get(row_key, {}):
                self._updated_cells.discard(CellKey(row_key, column_key))
            self.rows.pop(row_key, None)
            self._data.pop(row_key, None)
            self._new_rows.discard(row_key)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.check_idle()
        self.refresh(layout=True)

    def _cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def _resort(self, cursor_key: str | None) -> None:
        if self.sort_column not in self._col_keys:
            return
        self.sort(self.sort_column, key=lambda c: c.sort_key, reverse=self.sort_reverse)
        # Keep the cursor on the same session, not on the same line number.
        if cursor_key is not None and cursor_key in self._shown:
            index = self.get_row_index(cursor_key)
            if index != self.cursor_row:
                self.move_cursor(row=index, scroll=False)

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column` (a key of ACTIVITY_COLUMNS, or 'cluster')."""
        if column not in self._col_keys:
            raise ValueError(f"unknown column {column!r}")
        if reverse is None:
            reverse = column in ("duration", "xact", "blocked_by")
        self.sort_column, self.sort_reverse = column, reverse
        self._resort(self._cursor_key())

    def cycle_sort(self) -> str:
        """Next sortable column; returns its label."""
        keys = list(self._col_keys)
        nxt = keys[(keys.index(self.sort_column) + 1) % len(keys)] if self.sort_column in keys else keys[0]
        self.set_sort(nxt)
        return COLUMN_LABELS[nxt]

    def reverse_sort(self) -> None:
        """Flip the sort direction."""
        self.sort_reverse = not self.sort_reverse
        self._resort(self._cursor_key())

    def reapply(self) -> None:
        """Re-run filters on the last sessions (after the filter or hide-idle changed)."""
        self.show(self._sources)

    def describe(self) -> str:
        """Short state for the pane title: sort, filter, idle."""
        arrow = "↓" if self.sort_reverse else "↑"
        parts = [f"sort {COLUMN_LABELS.get(self.sort_column, self.sort_column)}{arrow}"]
        if self.session_filter.active:
            parts.append(f"filter '{self.session_filter.text}'")
        if self.hide_idle:
            parts.append("idle hidden")
        if self.show_background:
            parts.append("+background")
        return " · ".join(parts)


class BlockingTree(Tree[str]):
    """Blockers -> the sessions waiting on them, rebuilt only when the structure changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("blocking", id=id)
        self.show_root = False
        self._signature: tuple[object, ...] | None = None

    @staticmethod
    def _label(row: SessionRow) -> Text:
        text = Text()
        text.append(f"{row.pid} ", style="bold")
        text.append_text(safe_text(row.usename, 16))
        text.append(f" {row.state or ''} {fmt_duration(row.duration_s)} ", style="dim")
        text.append_text(safe_text(row.query, 80))
        return text

    def show(self, rows: Sequence[SessionRow]) -> None:
        """Rebuild from the sessions' blocked_by lists (cheap: only blocking sessions appear)."""
        forest = blocking_forest(rows)

        def sig(node: BlockNode) -> tuple[object, ...]:
            return (node.row.instance, node.row.pid, node.row.state, tuple(sig(c) for c in node.children))

        signature = tuple(sig(n) for n in forest)
        if signature == self._signature:
            return
        self._signature = signature
        self.clear()
        if not forest:
            self.root.add_leaf(Text("no blocked sessions", style="dim"))
            return

        def add(parent: TreeNode[str], node: BlockNode) -> None:
            label = self._label(node.row)
            if node.children:
                branch = parent.add(label, data=node.row.key, expand=True)
                for child in node.children:
                    add(branch, child)
            else:
                parent.add_leaf(label, data=node.row.key)

        for node in forest:
            add(self.root, node)


class ActivityPane(Vertical):
    """Title line, an error banner for a failing cluster, the table or the tree, and the filter input."""

    ALLOW_MAXIMIZE = True
    can_focus = False

    def __init__(self, *, with_cluster: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.with_cluster = with_cluster
        self.cluster_name: str | None = None

    def compose(self) -> ComposeResult:
        """Title, banner, table/tree switcher, filter input."""
        yield Static("Activity", classes="pane-title", id="activity-title")
        yield Static("", classes="error-banner", id="activity-error")
        with ContentSwitcher(initial="activity-table", id="activity-switcher"):
            yield ActivityTable(with_cluster=self.with_cluster, id="activity-table")
            yield BlockingTree(id="activity-tree")
        yield Input(
            placeholder="filter: words  state:  user:  db:  app:  min:10s   (Esc closes)",
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
            self.blocking_tree.show([loc.row for loc in self.table._sources])
            self.blocking_tree.focus()
        else:
            self.table.focus()
        self._update_title()

    def show_snapshot(self, snap: ClusterSnapshot | None, *, name: str | None = None) -> None:
        """Render one cluster (a new cluster resets the table; the same cluster is a diff)."""
        reset = name != self.cluster_name
        self.cluster_name = name
        banner = self.query_one("#activity-error", Static)
        if snap is None:
            self.table.show([], reset=reset)
            banner.update(Text("waiting for the first collection round…", style="dim"))
            banner.display = True
            self._update_title(None)
            return
        sessions = [Located(snap.name, r) for r in snap.activity]
        self.table.show(sessions, reset=reset)
        if self.tree_shown:
            self.blocking_tree.show(snap.activity)
        if snap.error is not None:
            text = Text()
            text.append("✖ ", style="bold red")
            text.append_text(safe_text(f"{snap.error.step}: {snap.error.message}", style="bold"))
            if snap.error.hint:
                text.append("\n  fix: ", style="yellow")
                text.append_text(safe_text(snap.error.hint))
            if snap.stale and snap.data_age_s is not None:
                text.append(f"\n  showing data from {fmt_duration(snap.data_age_s)} ago", style="dim")
            banner.update(text)
            banner.display = True
        elif troubled := [i for i in snap.instances if i.status != "connected"]:
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
            banner.update(text)
            banner.display = True
        else:
            banner.display = False
        self._update_title(snap)

    def show_many(self, sessions: Sequence[Located]) -> None:
        """All-clusters view: merged sessions."""
        self.query_one("#activity-error", Static).display = False
        self.table.show(sessions)
        if self.tree_shown:
            self.blocking_tree.show([loc.row for loc in sessions])
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
        title.append(
            f"  {table.row_count}/{table.row_count_total} sessions · {table.describe()}", style="dim"
        )
        if self.tree_shown:
            title.append(" · blocking tree", style="dim")
        self.query_one("#activity-title", Static).update(title)

    def refresh_title(self) -> None:
        """Re-draw the title after a sort/filter change."""
        self._update_title()

    def open_filter(self) -> None:
        """Show and focus the filter input."""
        inp = self.query_one("#activity-filter", Input)
        inp.value = self.table.session_filter.text
        inp.display = True
        inp.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply the filter (a bad expression is a one-line notice, the old filter stays)."""
        if event.input.id != "activity-filter":
            return
        event.stop()
        try:
            self.table.session_filter = parse_filter(event.value)
        except FilterError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        event.input.display = False
        self.table.reapply()
        self.table.focus()
        self._update_title()

    def on_key(self, event: events.Key) -> None:
        """Escape in the filter input closes it."""
        inp = self.query_one("#activity-filter", Input)
        if event.key == "escape" and inp.has_focus:
            inp.display = False
            self.table.focus()
            event.stop()
