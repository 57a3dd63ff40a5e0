"""One watched instance: its connection, its activity read in flight, and the reading it last left.

A read has a budget (a query on an open session: statement_timeout plus a little for the network; a read
that must (re)connect first: the connect timeout on top). When the budget is spent the instance is stale AT
ONCE: the round does not wait for the driver to give up. The stuck read is then abandoned in the
background (psycopg's cancel can itself take up to 10 s against a stopped server) and the session dropped,
so the next read reconnects with a fresh token; until the abandoned read has ended, no second read is
started on that instance, and its reading keeps saying how long it has gone without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from pgiam_tui.collect.activity import ActivityResult
from pgiam_tui.collect.instance_round import InstanceRound
from pgiam_tui.db.connection import ConnectError, InstanceConnection, QueryError, utcnow
from pgiam_tui.db.conninfo import one_line, scrub
from pgiam_tui.model import ErrorInfo
from pgiam_tui.monitor.parts import InstanceReading, InstanceState

__all__ = ["NETWORK_GRACE_S", "InstanceWatch"]

log = logging.getLogger("pgiam_tui.monitor")

#: added to statement_timeout for the round trip (the server enforces statement_timeout itself)
NETWORK_GRACE_S = 1.0
TIMEOUT_HINT = "the instance or the network is slow or stopped; the session is reopened with a fresh token"


class InstanceWatch:
    """Reads one instance's sessions within a budget; keeps the last reading (rows kept while it fails)."""

    def __init__(self, conn: InstanceConnection, user: str | None) -> None:
        self.conn = conn
        self._round = InstanceRound(conn.target.instance_id, user)
        self.reading = InstanceReading(conn.target.instance_id)
        self._task: asyncio.Task[ActivityResult] | None = None
        self._started = 0.0
        self._budget = 0.0
        self._abandoning: asyncio.Task[None] | None = None

    @property
    def instance_id(self) -> str:
        """The instance's id."""
        return self.conn.target.instance_id

    def state(self) -> InstanceState:
        """The instance at this moment (immutable)."""
        return InstanceState(self.conn.target, self.conn.status, self.conn.server_version, self.reading)

    def budget_s(self) -> float:
        """How long the next read may take: connecting first costs the connect timeout on top."""
        t = self.conn.target
        query = t.statement_timeout_ms / 1000.0 + NETWORK_GRACE_S
        return query if self.conn.connected else query + t.connect_timeout_s

    async def read(self) -> InstanceReading:
        """Read now (or keep waiting for the read still in flight) within the budget; the new reading."""
        if self._abandoning is not None:
            return self._overdue()
        if self._task is None:
            self._budget = self.budget_s()
            self._started = time.monotonic()
            self._task = asyncio.create_task(self._collect(), name=f"activity:{self.instance_id}")
        remaining = self._started + self._budget - time.monotonic()
        if remaining > 0:
            await asyncio.wait({self._task}, timeout=remaining)
        task = self._task
        if not task.done():
            self._abandon(task)
            return self._overdue()
        self._task = None
        self.reading = self._outcome(task)
        return self.reading

    async def _collect(self) -> ActivityResult:
        # sessions and server-wide figures (connections, transactions, replica lag): one round trip
        return await self._round.read(self.conn)

    def _outcome(self, task: asyncio.Task[ActivityResult]) -> InstanceReading:
        try:
            result = task.result()
        except (ConnectError, QueryError) as exc:
            step = exc.step if isinstance(exc, ConnectError) else "query"
            hint = exc.hint if isinstance(exc, ConnectError) else ""
            return replace(self.reading, error=ErrorInfo(step, _text(exc), hint))
        except asyncio.CancelledError:
            return replace(self.reading, error=ErrorInfo("timeout", "read cancelled", TIMEOUT_HINT))
        except Exception as exc:  # unexpected: this instance reports it, the others go on
            log.error("activity of %s failed: %s", self.instance_id, _describe(exc))
            return replace(self.reading, error=ErrorInfo("internal", _describe(exc)))
        return InstanceReading(
            self.instance_id,
            result.rows,
            result.findings,
            utcnow(),
            None,
            result.health or self.reading.health,
        )

    def _overdue(self) -> InstanceReading:
        waited = time.monotonic() - self._started
        message = f"timeout: no answer within {self._budget:.0f} s (waiting {waited:.0f} s)"
        self.reading = replace(self.reading, error=ErrorInfo("timeout", message, TIMEOUT_HINT))
        return self.reading

    def _abandon(self, task: asyncio.Task[ActivityResult]) -> None:
        """Give up on TASK in the background: cancel it, then drop the session (its state is unknown)."""
        if self._abandoning is not None:
            return

        async def abandon() -> None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            with contextlib.suppress(Exception):
                await self.conn.discard(f"no answer within {self._budget:.0f} s")
            self._task = None
            self._abandoning = None

        self._abandoning = asyncio.create_task(abandon(), name=f"abandon:{self.instance_id}")

    async def close(self) -> None:
        """Stop any read and close the session."""
        for t in (self._task, self._abandoning):
            if t is not None:
                t.cancel()
        for t in (self._task, self._abandoning):
            if t is not None:
                with contextlib.suppress(BaseException):
                    await t
        with contextlib.suppress(Exception):
            await self.conn.close()


def _text(exc: BaseException) -> str:
    return one_line(scrub(str(exc) or type(exc).__name__))


def _describe(exc: BaseException) -> str:
    """Type and scrubbed one-line message of an unexpected exception (for logs and ErrorInfo)."""
    return one_line(scrub(f"{type(exc).__name__}: {exc}"))
