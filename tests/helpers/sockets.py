"""What this test process itself has open, read from /proc (Linux), so a check never depends on what other
processes on the machine (a second test run) do with a port."""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def _own_socket_inodes() -> set[str]:
    inodes: set[str] = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_here(port: int) -> bool:
    """Whether a TCP socket of this process listens on PORT (any address, IPv4 or IPv6)."""
    ours = _own_socket_inodes()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port and inode in ours:
                return True
    return False
