"""The processes of one sandbox PostgreSQL server, found by their working directory, and what a dead one left.

Every process of a PostgreSQL server (postmaster, backends, background workers) runs with the data directory
as its working directory (the postmaster changes to it and its children inherit it), and nothing else of ours
does: so ``/proc/PID/cwd`` names them without trusting process names or a pid file. Children of a killed
postmaster keep its shared memory attached for a moment (a new postmaster refuses to start while they do),
and it cannot remove its files (postmaster.pid, the socket and its lock, /dev/shm/PostgreSQL.* segments):
:func:`clear_leftovers` does that, so the server can be started again at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from pgiam_sandbox.pg_host import posix_shm_segments

__all__ = ["clear_leftovers", "processes_in"]


def processes_in(data_dir: Path) -> list[int]:
    """Pids of the live processes whose working directory is ``data_dir`` (ascending; zombies have none)."""
    target = os.path.realpath(data_dir)
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, a zombie, or not ours to look at
            if os.readlink(f"/proc/{entry}/cwd") == target:
                found.append(int(entry))
    return sorted(found)


def _ended(pid: int) -> bool:
    """True once ``pid`` has exited: gone, or a zombie (its memory, shared memory included, is released)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def clear_leftovers(data_dir: Path, socket_dir: Path, port: int | None, timeout: float = 10.0) -> list[int]:
    """After the postmaster of ``data_dir`` has exited: end its remaining children, remove its files.

    The children (orphans whose postmaster died; PostgreSQL would SIGQUIT them) get SIGKILL, which also ends
    stopped (SIGSTOP) ones. Their dynamic shared memory segments, the pid file and the socket files are then
    removed. Returns the pids that were killed.
    """
    leftovers = processes_in(data_dir)
    segments = {segment for pid in leftovers for segment in posix_shm_segments(pid)}
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(not _ended(pid) for pid in leftovers) and time.monotonic() < deadline:
        time.sleep(0.02)
    for segment in segments:
        with contextlib.suppress(OSError):
            segment.unlink()
    with contextlib.suppress(FileNotFoundError):
        (data_dir / "postmaster.pid").unlink()
    if port is not None:
        for leftover in (f".s.PGSQL.{port}", f".s.PGSQL.{port}.lock"):
            with contextlib.suppress(FileNotFoundError):
                (socket_dir / leftover).unlink()
    return leftovers
