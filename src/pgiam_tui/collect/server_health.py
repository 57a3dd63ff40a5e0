"""Server-wide health of one instance (connections against max_connections, transactions, replica lag).

Read in the same round trip as the activity query (collect/instance_round.py): one short statement (two on
Aurora). A failure there never costs the round its activity: the health is then simply unknown (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgiam_tui.model import ServerHealth


def parse_health(row: Sequence[Any], aurora_lag_ms: float | None) -> ServerHealth:
    """The server_health query's row (and Aurora's lag in ms, if read) -> ServerHealth."""
    sampled_at, max_conn, conns, xacts, in_recovery, replay_lag_s = row[:6]
    lag: float | None
    if aurora_lag_ms is not None:
        lag = aurora_lag_ms / 1000.0 if aurora_lag_ms >= 0 else None  # -1: not a replica
    else:
        lag = float(replay_lag_s) if replay_lag_s is not None else None
    return ServerHealth(
        sampled_at=sampled_at,
        max_connections=int(max_conn) if max_conn is not None else None,
        connections=int(conns) if conns is not None else None,
        xact_total=int(xacts) if xacts is not None else None,
        in_recovery=bool(in_recovery) if in_recovery is not None else None,
        replica_lag_s=lag,
        can_signal=bool(row[7]) if len(row) > 7 and row[7] is not None else None,
    )
