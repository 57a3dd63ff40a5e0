"""The running sandbox's control socket: other processes ask it to restart an instance or name its pids.

A unix socket (mode 0600, in the sandbox directory, or a private temp directory when that path is too long for
a socket), named in sandbox.json as ``control_socket``. One JSON request line, one JSON answer line:

    {"action": "restart", "instance": "pgdemo-1-writer"}   -> {"ok": true}
    {"action": "pids", "instance": "pgdemo-1-writer"}      -> {"ok": true, "postmaster": 1, "children": [2]}
    {"action": "aws-requests"}   -> {"ok": true, "requests": [{"account", "region", "service", "requests"}]}
    anything wrong                                          -> {"ok": false, "error": "one line"}

`pgiam-tui sandbox restart|pids --dir DIR INSTANCE` is the client (:func:`request`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.topology import InstancePids

__all__ = ["ControlServer", "Controllable", "request", "socket_path_for"]

log = logging.getLogger(__name__)
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes
_MAX_REQUEST = 4096


class Controllable(Protocol):
    """What the control socket drives (pgiam_sandbox.Sandbox)."""

    def restart_instance(self, instance_id: str) -> None: ...

    def instance_pids(self, instance_id: str) -> InstancePids: ...

    def aws_requests(self) -> list[dict[str, Any]]: ...


def socket_path_for(root: Path) -> tuple[Path, Path | None]:
    """(socket path, private temp dir to remove afterwards or None) for a sandbox rooted at ``root``."""
    path = root / "control.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path, None
    private = Path(tempfile.mkdtemp(prefix="pgiam-ctl-"))  # 0700, ours
    return private / "control.sock", private


def answer(target: Controllable, line: bytes) -> dict[str, Any]:
    """The answer to one request line (never raises for bad input)."""
    try:
        req = json.loads(line)
        action, instance = req["action"], req.get("instance", "")
        if not isinstance(action, str) or not isinstance(instance, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "error": 'expected {"action": ..., "instance": ...}'}
    try:
        if action == "restart":
            target.restart_instance(instance)
            return {"ok": True}
        if action == "aws-requests":
            return {"ok": True, "requests": target.aws_requests()}
        if action == "pids":
            pids = target.instance_pids(instance)
            return {"ok": True, "postmaster": pids.postmaster, "children": list(pids.children)}
    except SandboxError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # one bad request must not take the control socket down
        log.debug("control request failed", exc_info=True)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": False, "error": f"unknown action {action!r} (restart, pids, aws-requests)"}


class ControlServer:
    """Serves :func:`answer` on a unix socket in a daemon thread; ``stop()`` removes the socket."""

    def __init__(self, target: Controllable, root: Path) -> None:
        self.target = target
        self.path, self._private_dir = socket_path_for(root)
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket file of an earlier run) and serve."""
        target = self.target

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(ConnectionError, TimeoutError):
                    line = self.rfile.readline(_MAX_REQUEST)
                    self.wfile.write(json.dumps(answer(target, line)).encode() + b"\n")

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                log.debug("control socket: request failed", exc_info=True)

        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o077)  # the socket is created 0600: only this user may restart servers
        try:
            self._server = Server(str(self.path), Handler)
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-control", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and remove the socket (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None


def request(path: Path, action: str, instance: str, *, timeout: float = 120.0) -> dict[str, Any]:
    """Send one request to the control socket at ``path``; its answer. SandboxError when nobody answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps({"action": action, "instance": instance}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise SandboxError(f"no sandbox answers on {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(data)
    except ValueError:
        raise SandboxError(f"the sandbox on {path} gave no answer") from None
    if not isinstance(reply, dict):
        raise SandboxError(f"the sandbox on {path} gave no answer")
    return reply
