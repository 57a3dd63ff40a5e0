"""The exporter's HTTP side: `/metrics` (prometheus_client's WSGI app, OpenMetrics when asked) and `/healthz`.

A threading WSGI server from the standard library in a daemon thread, so a slow scrape never blocks the
Monitor's loop. Requests are not logged (a scrape every 15 s would flood the terminal).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["ListenError", "MetricsServer", "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:9187"

StartResponse = Callable[..., Any]
Health = Callable[[], tuple[bool, dict[str, Any]]]


class ListenError(ValueError):
    """A --listen value that is not HOST:PORT, or an address that cannot be bound (one line)."""


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:9187`, `[::1]:9187`, `localhost:9187` or `:9187` (loopback) -> (host, port)."""
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ListenError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN} or [::1]:9187")
    port = int(port_text)
    if not 0 <= port < 65536:  # 0: the kernel picks a free port (serve prints the one it got)
        raise ListenError(f"--listen {text!r}: port must be 0-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"--listen {text!r}: {host!r} is not an IPv6 address") from None
    return host or "127.0.0.1", port


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No per-request log lines."""


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """Serves REGISTRY on /metrics and HEALTH on /healthz at HOST:PORT until stop()."""

    def __init__(self, registry: CollectorRegistry, health: Health, host: str, port: int) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                ok, detail = health()
                body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
                status = "200 OK" if ok else "503 Service Unavailable"
                start_response(status, [("Content-Type", "application/json")])
                return [body]
            if path in ("/metrics", "/"):
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics or /healthz\n"]

        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            self._server = make_server(host, port, app, server_class=server_class, handler_class=_Quiet)
        except OSError as exc:
            raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        """Begin answering in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self._server.shutdown()
        self._server.server_close()
