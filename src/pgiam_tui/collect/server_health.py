"""Server-wide health of one instance (connections against max_connections, transactions, replica lag).

Read right after the activity query, on the same session: one short statement (two on Aurora). A failure here
never costs the round its activity: the health is then simply unknown (None) for that round.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pgiam_tui.collect.activity import Fetcher
from pgiam_tui.db.queries import get_query
from pgiam_tui.model import ServerHealth

log = logging.getLogger(__name__)


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


async def collect_health(conn: Fetcher, instance_id: str) -> ServerHealth | None:
    """One instance's ServerHealth, or None when the server would not say (logged, never raised)."""
    try:
        await conn.ready()  # (re)connects when needed, so the server version is known
        version = conn.server_version_num or 0
        rows = await conn.fetch(get_query("server_health", version))
        if not rows:
            return None
        aurora_lag: float | None = None
        if rows[0][6]:
            lag_rows = await conn.fetch(get_query("server_health_aurora", version), (instance_id,))
            aurora_lag = float(lag_rows[0][0]) if lag_rows and lag_rows[0][0] is not None else None
        return parse_health(rows[0], aurora_lag)
    except Exception as exc:  # the activity of the round stands without it
        log.debug("server health of %s: %s", instance_id, type(exc).__name__)
        return None
