"""Monitor: per-cluster rounds -> immutable ClusterSnapshots; headless (console, snapshot, record, serve).

core.py runs the activity rounds and the AWS cadences; parts.py holds the immutable pieces; assemble.py
is the one function that makes a snapshot of them; instances.py bounds each instance's read by a budget.
"""

from pgiam_tui.monitor.core import Monitor, SnapshotCallback

__all__ = ["Monitor", "SnapshotCallback"]
