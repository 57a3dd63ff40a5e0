"""One instance's reading per refresh in ONE network round trip: its sessions and its server health together.

The activity query, the server health query and (on Aurora, once known) the replica lag query go out in one
pipeline (psycopg's pipeline mode: every statement sent, then one Sync), so a refresh costs one round trip
per instance, not three: with 300 ms between the console and a far region that is the difference between a
round of 0.3 s and one of 0.9 s. The activity query goes first: if a later statement fails, the sessions
stand and the health is simply unknown for that round (as when it was read apart).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, LiteralString, Protocol

from pgiam_tui.collect.activity import ActivityResult, activity_result
from pgiam_tui.collect.server_health import parse_health
from pgiam_tui.db.connection import QueryError, Rows, Statement
from pgiam_tui.db.queries import get_query
from pgiam_tui.model import ServerHealth

log = logging.getLogger(__name__)
HAS_AURORA_STATUS = 6  # column of server_health: whether aurora_replica_status() exists


class PipelineFetcher(Protocol):
    """What a round needs from a connection (InstanceConnection satisfies it): one statement, or several in
    one round trip."""

    server_version_num: int | None

    async def ready(self) -> None: ...

    async def fetch(
        self, sql: LiteralString | bytes, params: Sequence[Any] | None = None, *, binary: bool = False
    ) -> list[tuple[Any, ...]]: ...

    async def fetch_pipelined(self, statements: Sequence[Statement]) -> list[Rows | QueryError]: ...


class InstanceRound:
    """Reads one instance per refresh: sessions, then server health, in one round trip.

    Remembers whether the server has Aurora's replica status function (learnt from the first health row),
    so from the second round on Aurora's replica lag rides in the same pipeline too.
    """

    def __init__(self, instance: str, user: str | None = None) -> None:
        self.instance = instance
        self.user = user  # the monitoring user (named in the fix of hidden sessions)
        self.aurora: bool | None = None  # None: not known yet

    async def read(self, conn: PipelineFetcher) -> ActivityResult:
        """One round; raises what the activity query raises (ConnectError, QueryError), never for health."""
        await conn.ready()  # (re)connects when needed, so the server version is known
        version = conn.server_version_num or 0
        results = await conn.fetch_pipelined(self._statements(version))
        if conn.server_version_num not in (None, version):
            # the pipeline reconnected to another server version (upgrade / failover): again, right shapes
            version = conn.server_version_num or 0
            results = await conn.fetch_pipelined(self._statements(version))
        activity = results[0]
        if isinstance(activity, QueryError):
            raise activity
        result = activity_result(self.instance, self.user, activity)
        health = await self._health(conn, version, results[1:])
        return replace(result, health=health)

    def _statements(self, version: int) -> list[Statement]:
        out = [
            Statement(get_query("activity", version), binary=True),
            Statement(get_query("server_health", version)),
        ]
        if self.aurora:
            out.append(Statement(get_query("server_health_aurora", version), (self.instance,)))
        return out

    async def _health(
        self, conn: PipelineFetcher, version: int, results: list[Rows | QueryError]
    ) -> ServerHealth | None:
        health_rows = results[0]
        if isinstance(health_rows, QueryError) or not health_rows:
            log.debug("server health of %s: %s", self.instance, health_rows or "no row")
            return None
        row: tuple[Any, ...] = health_rows[0]
        aurora = bool(row[HAS_AURORA_STATUS])
        lag_ms: float | None = None
        try:
            if aurora and self.aurora:
                lag_rows = results[1]
                if isinstance(lag_rows, QueryError):
                    raise lag_rows
            elif aurora:
                # first round on Aurora: the lag is read apart this once (the next rounds pipeline it)
                lag_rows = await conn.fetch(get_query("server_health_aurora", version), (self.instance,))
            else:
                lag_rows = []
            if lag_rows and lag_rows[0][0] is not None:
                lag_ms = float(lag_rows[0][0])
        except Exception as exc:  # the lag is unknown this round; the rest of the health stands
            log.debug("replica lag of %s: %s", self.instance, type(exc).__name__)
        self.aurora = aurora
        return parse_health(row, lag_ms)
