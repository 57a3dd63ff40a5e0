"""The blocking tree: blockers -> the sessions waiting on them (the activity pane's `b` view)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from pgiam_tui.model import SessionRow
from pgiam_tui.ui.activity_model import BlockNode, blocking_forest
from pgiam_tui.ui.render import fmt_duration, safe_text

__all__ = ["BlockingTree"]


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
