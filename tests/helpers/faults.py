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


def record_figure(fault: str, **figures: float | str) -> None:
    """Append measured figures of FAULT to $PGIAM_FAULT_FIGURES (JSON lines) when set: docs/RELIABILITY.md
    quotes the last run's. Never asserted: timings depend on the machine."""
    target = os.environ.get("PGIAM_FAULT_FIGURES")
    if not target:
        return
    import json

    with open(target, "a", encoding="utf-8") as out:
        out.write(json.dumps({"fault": fault, **figures}) + "\n")


class PausableProxy:
    """A TCP relay in front of an endpoint (here moto's AWS API) that a test can stall and release:
    while paused, nothing is forwarded either way on new or open connections (an AWS stall as the client
    sees it: requests sent, no answer)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        """Stop forwarding (requests in flight hang)."""
        self._open.clear()

    def resume(self) -> None:
        """Forward again (held requests go on)."""
        self._open.set()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self._open.set()
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._open.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self._open.wait()
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()
