"""Adapter between the sandbox runtime and the front door / RDS log modules (TEMPORARY placeholder)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


class _Placeholder:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]

    def stop(self) -> None:
        self.sock.close()

    def close(self) -> None:
        pass


def make_log_sink(cluster: Any, log_file: Path, endpoint_url: str) -> Any:
    return _Placeholder()


def start_front_door(**kwargs: Any) -> Any:
    return _Placeholder()
