"""A piece of work repeated on its own cadence: re-armed after each run ends, run at once when poked.

Discovery, the events pane, the IAM pane and the caller identity each get one per cluster, so that AWS
being slow or stalled holds up only the part that waits for it, never the activity rounds (dolphie's
WorkerManager idea: the next run is armed when the last one ended, so runs of one part never overlap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["Cadence"]

log = logging.getLogger("pgiam_tui.monitor")


class Cadence:
    """Runs WORK every `every_s` seconds (measured from the end of a run) while `running` allows it."""

    def __init__(
        self,
        name: str,
        every_s: float,
        work: Callable[[], Awaitable[None]],
        *,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.every_s = every_s
        self._work = work
        self._gate = gate  # cleared while polling is paused
        self._wake = asyncio.Event()
        self._poked = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def start(self, *, delay_s: float = 0.0) -> None:
        """Start the repeating task on the running loop (first run after DELAY_S, or when poked)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(delay_s), name=self.name)

    def poke(self) -> None:
        """Run as soon as the run in flight (if any) has ended."""
        self._poked = True
        self._wake.set()

    async def run_once(self) -> None:
        """One run now, never overlapping the repeating one (used by one-off collections)."""
        async with self._lock:
            await self._guarded()

    @property
    def busy(self) -> bool:
        """Whether a run is in flight."""
        return self._lock.locked()

    async def stop(self) -> None:
        """Cancel the repeating task (a run in flight is cancelled with it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _guarded(self) -> None:
        try:
            await self._work()
        except Exception as exc:  # a bug must not end the cadence: log it (one line) and carry on
            log.error("%s failed: %s: %s", self.name, type(exc).__name__, exc)
        self.runs += 1

    async def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._poked and (left := end - time.monotonic()) > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        self._poked = False

    async def _loop(self, delay_s: float) -> None:
        await self._wait(delay_s)
        while True:
            if self._gate is not None:
                await self._gate.wait()
            async with self._lock:
                await self._guarded()
            await self._wait(self.every_s)
