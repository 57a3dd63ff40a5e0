"""Typed messages that carry results from the snapshot source to the app (posting/toolong style).

Textual's Message supports dataclasses directly (its __post_init__ does the set-up).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from pgiam_tui.model import ClusterSnapshot


@dataclass
class SnapshotArrived(Message):
    """A collection round of one cluster finished (posted from the Monitor's callback)."""

    snapshot: ClusterSnapshot


@dataclass
class ClusterSelected(Message):
    """The cluster list's cursor moved to another cluster."""

    name: str


@dataclass
class SessionChosen(Message):
    """Enter on an activity row: open its detail screen."""

    cluster: str
    key: str
