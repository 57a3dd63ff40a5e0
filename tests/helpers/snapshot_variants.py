"""Variants of the sample snapshots that several UI tests need (pgiam_devtools.sample has the originals)."""

from __future__ import annotations

from dataclasses import replace

from pgiam_tui.model import ClusterSnapshot

RECONNECT_ERROR = "connection refused (attempt 3)"


def with_reconnecting_reader(snaps: tuple[ClusterSnapshot, ...]) -> tuple[ClusterSnapshot, ...]:
    """SNAPS with the first cluster's reader (its second instance) reconnecting after RECONNECT_ERROR."""
    first = snaps[0]
    reader = replace(first.instances[1], status="reconnecting", error=RECONNECT_ERROR)
    return (replace(first, instances=(first.instances[0], reader)), *snaps[1:])


def without_signal_right(snaps: tuple[ClusterSnapshot, ...]) -> tuple[ClusterSnapshot, ...]:
    """SNAPS where the server said, for every instance of the first cluster, that the monitoring user may
    not signal backends (not a member of pg_signal_backend)."""
    first = snaps[0]
    instances = tuple(
        replace(i, health=replace(i.health, can_signal=False)) if i.health else i for i in first.instances
    )
    return (replace(first, instances=instances), *snaps[1:])
