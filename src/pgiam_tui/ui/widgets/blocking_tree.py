"""The blocking tree: blockers -> the sessions waiting on them (the activity pane's `b` view).

Each tree says where it is (cluster, in the all-clusters view, and instance) and each node what it waits on.
Enter on a node opens that session's detail; k / t act on the node under the cursor (the root blocker is the
one that usually has to go), through the same gated confirmation as the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.activity_model import ROW_STYLES, BlockNode, Located, blocking_forest
from pgiam_tui.ui.messages import SessionChosen
from pgiam_tui.ui.render import fmt_duration, safe_text

__all__ = ["BlockingTree", "node_label"]


def node_label(loc: Located, *, root: bool, with_cluster: bool) -> Text:
    """One node: `[cluster / ]instance` on roots, then pid, user, state, duration, wait event, query.

    Holders (roots, blocking others) and waiters get the table's blocker / waiting colours."""
    row = loc.row
    text = Text()
    if root:
        where = f"{loc.cluster} / {row.instance}" if with_cluster else row.instance
        text.append_text(safe_text(where, 60, style="bold"))
        text.append("  ")
    style = ROW_STYLES["blocker"] if root else ROW_STYLES["waiting"]
    text.append(f"{row.pid}", style=style)
    text.append(" ")
    text.append_text(safe_text(row.usename, 16))
    text.append(f" {row.state or ''} {fmt_duration(row.duration_s)}", style="dim")
    if row.wait_event_type or row.wait_event:
        text.append(" waits ", style="dim")
        text.append_text(safe_text(f"{row.wait_event_type or '?'}:{row.wait_event or '?'}", 40))
    text.append(" ")
    text.append_text(safe_text(row.query, 80))
    return text


class BlockingTree(Tree[str]):
    """Blockers -> the sessions waiting on them, rebuilt only when the structure changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("blocking", id=id)
        self.show_root = False
        self.auto_expand = False  # Enter opens the session; space folds
        self._signature: tuple[object, ...] | None = None
        self._by_key: dict[str, Located] = {}

    def show(self, sessions: Sequence[Located], *, with_cluster: bool = False) -> None:
        """Rebuild from the sessions' blocked_by lists (cheap: only blocking sessions appear).

        One forest per cluster (locks never cross clusters; instance ids of two accounts may be equal)."""
        per_cluster: dict[str, list[SessionRow]] = {}
        for loc in sessions:
            per_cluster.setdefault(loc.cluster, []).append(loc.row)
        forests = [(cluster, blocking_forest(rows)) for cluster, rows in sorted(per_cluster.items())]

        def sig(node: BlockNode) -> tuple[object, ...]:
            row = node.row
            return (row.instance, row.pid, row.state, row.wait_event, tuple(sig(c) for c in node.children))

        signature = (with_cluster, tuple((c, tuple(sig(n) for n in f)) for c, f in forests))
        if signature == self._signature:
            return
        self._signature = signature
        cursor = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._by_key.clear()
        if not any(f for _, f in forests):
            self.root.add_leaf(Text("no blocked sessions", style="dim"))
            return

        def add(parent: TreeNode[str], cluster: str, node: BlockNode, root: bool) -> None:
            loc = Located(cluster, node.row)
            self._by_key[loc.key] = loc
            label = node_label(loc, root=root, with_cluster=with_cluster)
            if node.children:
                branch = parent.add(label, data=loc.key, expand=True)
                for child in node.children:
                    add(branch, cluster, child, False)
            else:
                parent.add_leaf(label, data=loc.key)

        for cluster, forest in forests:
            for node in forest:
                add(self.root, cluster, node, True)
        if cursor is not None:
            self._restore_cursor(cursor)

    def _restore_cursor(self, key: str) -> None:
        def walk(node: TreeNode[str]) -> TreeNode[str] | None:
            if node.data == key:
                return node
            for child in node.children:
                found = walk(child)
                if found is not None:
                    return found
            return None

        found = walk(self.root)
        if found is not None:
            self.move_cursor(found)

    def current(self) -> Located | None:
        """The session under the cursor (None on the "no blocked sessions" line)."""
        node = self.cursor_node
        if node is None or node.data is None:
            return None
        return self._by_key.get(node.data)

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        """Enter on a node: that session's detail screen."""
        event.stop()
        loc = self._by_key.get(event.node.data) if event.node.data is not None else None
        if loc is not None:
            self.post_message(SessionChosen(loc.cluster, loc.key))
