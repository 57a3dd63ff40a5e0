"""Fault injection by pid (never by process name): pause a PostgreSQL server with its backends, wait on
snapshots that match a condition, and measure how long the monitor took to notice (figures, not asserts)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pgiam_tui.model import ClusterSnapshot

GUARD_S = 120.0  # hang guard for waits (not an assertion on timing)


def process_tree(pid: int) -> list[int]:
    """PID and every descendant of it (Linux /proc), parents first."""
    out = [pid]
    index = 0
    while index < len(out):
        current = out[index]
        index += 1
        children = Path(f"/proc/{current}/task/{current}/children")
        try:
            out.extend(int(p) for p in children.read_text().split())
        except OSError:
            continue
    return out


@contextmanager
def paused(postmaster_pid: int) -> Iterator[list[int]]:
    """SIGSTOP the server (postmaster and every backend and worker it forked), SIGCONT on exit."""
    pids = process_tree(postmaster_pid)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in reversed(pids):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@dataclass
class Snapshots:
    """Collects on_snapshot calls; lets a test wait for one matching a condition and time it."""

    all: list[ClusterSnapshot] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, snap: ClusterSnapshot) -> None:
        self.all.append(snap)
        self._changed.set()

    def of(self, name: str) -> list[ClusterSnapshot]:
        """Every snapshot of cluster NAME so far."""
        return [s for s in self.all if s.name == name]

    def mark(self) -> int:
        """A position: `wait(..., after=mark)` only looks at snapshots published after it."""
        return len(self.all)

    async def wait(
        self, pred: Callable[[ClusterSnapshot], bool], after: int = 0, guard_s: float = GUARD_S
    ) -> ClusterSnapshot:
        """The first snapshot published after AFTER for which PRED holds (waits for it, up to GUARD_S)."""
        async with asyncio.timeout(guard_s):
            seen = after
            while True:
                for s in self.all[seen:]:
                    if pred(s):
                        return s
                seen = len(self.all)
                self._changed.clear()
                await self._changed.wait()


class Stopwatch:
    """Seconds since it was made (for the figures in docs/RELIABILITY.md, never asserted)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self._t0, 1)
