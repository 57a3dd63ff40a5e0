"""Connection parameters for one monitored instance, and scrubbing of secrets out of error text.

The libpq parameters follow the IAM-auth rules of DESIGN.md: `host` is always the endpoint (it is both the
TLS name checked by verify-full and the host the token is signed for); a tunnel only changes where TCP goes
(`hostaddr`/`port`). Sessions are read-only by default and carry a short statement_timeout so a sick server
cannot hold a monitoring round for long.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any

from pgiam_tui.model import InstanceRole

APPLICATION_NAME = "pgiam-tui"

# Parts of a presigned token (or a libpq conninfo) that are secret even when the whole value is not known.
_SECRET_PATTERNS = (
    re.compile(r"(X-Amz-Signature=)[0-9A-Fa-f]+"),
    re.compile(r"(X-Amz-Security-Token=)[^&\s\"']+"),
    re.compile(r"(X-Amz-Credential=)[^&\s\"']+"),
    re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE),
)


@dataclass(frozen=True, slots=True)
class ConnTarget:
    """Everything needed to open a monitoring session to one instance (no secret in here)."""

    cluster: str  # config name of the cluster, for events and keyring lookups
    instance_id: str
    role: InstanceRole
    endpoint: str  # TLS name and the host the token is signed for
    port: int  # canonical port the token is signed for
    region: str | None
    database: str
    user: str
    auth: str = "iam"  # "iam" | "password"
    connect_host: str | None = None  # tunnel / hostaddr: where TCP goes
    connect_port: int | None = None
    sslmode: str = "verify-full"
    sslrootcert: str | None = None
    connect_timeout_s: float = 5.0
    statement_timeout_ms: int = 3000
    read_only: bool = True

    @property
    def tcp_port(self) -> int:
        """The port TCP actually goes to (tunnel port, else the canonical port)."""
        return self.connect_port if self.connect_port is not None else self.port


def session_options(target: ConnTarget) -> str:
    """The libpq `options` string: read-only by default and a short statement timeout."""
    opts = [f"-c statement_timeout={int(target.statement_timeout_ms)}"]
    if target.read_only:
        opts.insert(0, "-c default_transaction_read_only=on")
    return " ".join(opts)


async def resolve_hostaddr(host: str) -> str:
    """libpq's `hostaddr` must be numeric: resolve a tunnel host name (e.g. "localhost") in a thread."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    infos = await asyncio.to_thread(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve tunnel address {host!r}")
    return str(infos[0][4][0])


async def connect_kwargs(target: ConnTarget, password: str | None) -> dict[str, Any]:
    """Keyword arguments for psycopg.AsyncConnection.connect (the password is the token for IAM auth)."""
    kwargs: dict[str, Any] = {
        "host": target.endpoint,
        "port": target.tcp_port,
        "dbname": target.database,
        "user": target.user,
        "sslmode": target.sslmode,
        # libpq rounds connect_timeout to whole seconds and treats values below 2 as 2
        "connect_timeout": max(2, round(target.connect_timeout_s)),
        "application_name": APPLICATION_NAME,
        "options": session_options(target),
        "autocommit": True,
    }
    if target.connect_host:
        kwargs["hostaddr"] = await resolve_hostaddr(target.connect_host)
    if target.sslrootcert:
        kwargs["sslrootcert"] = target.sslrootcert
    if password is not None:
        kwargs["password"] = password
    return kwargs


def scrub(text: str, *secrets: str | None) -> str:
    """TEXT with every known secret and anything token-shaped removed (psycopg errors can echo conninfo)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1<redacted>", text)
    return text


def one_line(text: str, limit: int = 300) -> str:
    """Collapse a (possibly multi-line) server message into one line for statuses and events."""
    flat = " ".join(part.strip() for part in text.strip().splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
