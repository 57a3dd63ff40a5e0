"""A seeded, running LocalPostgres for a test module, always cleaned up (server and template); the product's
connection to it, as the monitor opens one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from pgiam_sandbox.postgres import LocalPostgres

from pgiam_tui.config import ClusterConfig
from pgiam_tui.db.connection import Credential, InstanceConnection
from pgiam_tui.db.conninfo import ConnTarget


@contextmanager
def running_postgres(root: Path, *, bindir: Path | None = None) -> Iterator[LocalPostgres]:
    """Seed a template under ``root``, clone it, start the clone; stop and remove both on exit."""
    template = LocalPostgres.init_template(root / "template", bindir=bindir)
    try:
        server = LocalPostgres.clone(template, root / "server")
        try:
            server.start()
            yield server
        finally:
            server.cleanup()
    finally:
        template.cleanup()


def local_target(pg: LocalPostgres, user: str = "pgmonitor", *, tcp: bool = False) -> ConnTarget:
    """The writer "local-writer" of cluster "local" on PG, as USER (its Unix socket, or TCP on loopback)."""
    assert pg.port is not None
    return ConnTarget(
        cluster="local",
        instance_id="local-writer",
        role="writer",
        endpoint="127.0.0.1" if tcp else str(pg.socket_dir),
        port=pg.port,
        region=None,
        database="demo",
        user=user,
        auth="password",
        sslmode="disable",
        statement_timeout_ms=5000,
    )


def password(value: str) -> Callable[[], Awaitable[Credential]]:
    """A credential provider that always answers VALUE."""

    async def provide() -> Credential:
        return Credential(value)

    return provide


def monitor_connection(pg: LocalPostgres) -> InstanceConnection:
    """The monitoring user's InstanceConnection to PG over its Unix socket (trust: the password is unused)."""
    return InstanceConnection(local_target(pg), password("unused-over-trust"))


def password_cluster(name: str, port: int | None, user: str, **changes: Any) -> ClusterConfig:
    """Cluster NAME as the console sees it: one PostgreSQL on loopback PORT (behind a made-up endpoint), USER
    logging in with a password from the keyring, no TLS; CHANGES on top."""
    cfg = ClusterConfig(
        name=name,
        region="us-east-1",
        endpoint=f"{name}.db.local",
        hostaddr="127.0.0.1",
        local_port=port,
        database="demo",
        user=user,
        auth="password",
        sslmode="disable",
    )
    return replace(cfg, **changes)
