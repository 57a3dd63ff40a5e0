"""Idle client sessions held open on a server (`sandbox up --sessions N`): a fleet's worth of rows to watch.

Each is a real PostgreSQL session (its own backend, ``state = idle``, application_name ``idle-app``, user
``oltp_ro_user``, database ``demo``) opened over the server's unix socket, where the sandbox's pg_hba trusts
local connections. Plain sockets rather than a driver: thousands of them cost a file descriptor each and no
Python object worth mentioning. Startups are sent in batches before any reply is read, so the server forks
the backends while we wait. Reference: PostgreSQL docs, "Frontend/Backend Protocol", "Start-up".
"""

from __future__ import annotations

import contextlib
import resource
import socket
import struct

from pgiam_sandbox import pgwire
from pgiam_sandbox.errors import SandboxError

__all__ = ["APPLICATION_NAME", "IdleSessions", "headroom"]

APPLICATION_NAME = "idle-app"
USER = "oltp_ro_user"
DATABASE = "demo"
BATCH = 100  # startups in flight at once (well inside the postmaster's listen backlog)
HEADROOM = 60  # max_connections above the idle sessions: the workload, monitors, admin, front doors


def headroom(sessions: int) -> int:
    """max_connections for a server holding ``sessions`` idle sessions."""
    return sessions + HEADROOM


def _read_until_ready(sock: socket.socket) -> None:
    buffer = b""
    while True:
        while len(buffer) < 5:
            chunk = sock.recv(65536)
            if not chunk:
                raise SandboxError("the server closed an idle session during its start-up")
            buffer += chunk
        kind = buffer[:1]
        (length,) = struct.unpack("!i", buffer[1:5])
        while len(buffer) < 1 + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise SandboxError("the server closed an idle session during its start-up")
            buffer += chunk
        body, buffer = buffer[5 : 1 + length], buffer[1 + length :]
        if kind == b"E":
            fields = pgwire.parse_error(body)
            raise SandboxError(f"idle session refused: {fields.get('C', '?')} {fields.get('M', '')}")
        if kind == b"Z":
            return


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class IdleSessions:
    """Idle sessions on some servers; ``open(socket_path, n)`` per server, ``close()`` ends them all."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def __len__(self) -> int:
        return len(self._sockets)

    def open(self, socket_path: str, count: int, timeout: float = 60.0) -> None:
        """Open ``count`` idle sessions on the server at ``socket_path`` (SandboxError on failure)."""
        _raise_fd_limit(len(self._sockets) + count + 1024)
        startup = pgwire.startup_message(
            {"user": USER, "database": DATABASE, "application_name": APPLICATION_NAME}
        )
        remaining = count
        while remaining > 0:
            batch: list[socket.socket] = []
            try:
                for _ in range(min(BATCH, remaining)):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    batch.append(sock)
                    sock.settimeout(timeout)
                    sock.connect(socket_path)
                    sock.sendall(startup)
                for sock in batch:
                    _read_until_ready(sock)
            except OSError as exc:
                for sock in batch:
                    sock.close()
                raise SandboxError(f"cannot open idle sessions on {socket_path}: {exc}") from None
            except SandboxError:
                for sock in batch:
                    sock.close()
                raise
            self._sockets.extend(batch)
            remaining -= len(batch)

    def close(self) -> None:
        """End every session (Terminate, then close the socket)."""
        terminate = pgwire.message(b"X", b"")
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.sendall(terminate)
            sock.close()
        self._sockets.clear()
