"""Where the sandbox's workload sessions go and what they log in with: endpoints and IAM auth tokens.

Split from workload.py (the sessions themselves): a `WorkloadTarget` per application endpoint of the
sandbox, and tokens made the way an application on EC2 makes them (boto3's generate_db_auth_token).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import boto3
    import psycopg

__all__ = [
    "RO_PROFILE",
    "RW_PROFILE",
    "TOKEN_LIFETIME",
    "ConnectFn",
    "SandboxLike",
    "SessionFor",
    "TokenMaker",
    "WorkloadTarget",
    "garble_token",
    "targets_from_sandbox",
]

RW_PROFILE = "pgdemo-oltp-rw"
RO_PROFILE = "pgdemo-oltp-ro"
TOKEN_LIFETIME = 900.0  # seconds: RDS refuses a token older than this (ExpiredToken)


@dataclass(frozen=True)
class WorkloadTarget:
    """Where one application endpoint is, and how a client reaches it.

    ``endpoint``/``port`` are what tokens are signed for (the name in the certificate, canonical port 5432);
    TCP goes to ``listen_host``/``listen_port`` (the front door), as libpq ``host`` + ``hostaddr``.
    ``role`` is "writer" | "reader" | "instance"; ``kind`` is "aurora" | "instance".
    """

    cluster: str
    kind: str
    role: str
    instance_id: str
    endpoint: str
    port: int
    region: str
    listen_host: str
    listen_port: int
    ca_path: str
    database: str = "demo"


#: (target, database user, application_name) -> an open psycopg connection (autocommit off).
ConnectFn = Callable[[WorkloadTarget, str, str], "psycopg.Connection[Any]"]
SessionFor = Callable[[str], "boto3.Session"]


class SandboxLike(Protocol):
    """What Workload.from_sandbox reads from a Sandbox (sandbox/core.py)."""

    @property
    def clusters(self) -> Sequence[Any]: ...
    @property
    def ca_path(self) -> Any: ...

    def boto_session(self, profile: str | None = None) -> boto3.Session: ...


def targets_from_sandbox(sandbox: SandboxLike) -> list[WorkloadTarget]:
    """One target per application endpoint: the cluster (writer) endpoint and the reader endpoint of each
    Aurora cluster, the instance endpoint of an RDS for PostgreSQL instance."""
    targets: list[WorkloadTarget] = []
    for c in sandbox.clusters:
        writer = next(i for i in c.instances if i.role in ("writer", "instance"))
        reader = next((i for i in c.instances if i.role == "reader"), None)
        common = {"cluster": c.name, "kind": c.kind, "region": c.region, "ca_path": str(sandbox.ca_path),
                  "database": c.database, "listen_host": c.listen_host}  # fmt: skip
        targets.append(
            WorkloadTarget(
                role=writer.role,
                instance_id=writer.id,
                endpoint=c.endpoint,
                port=c.port,
                listen_port=c.listen_port,
                **common,
            )
        )
        if reader is not None:
            endpoint = c.reader_endpoint or reader.endpoint
            port = c.reader_listen_port or reader.listen_port
            targets.append(
                WorkloadTarget(
                    role="reader",
                    instance_id=reader.id,
                    endpoint=endpoint,
                    port=c.port,
                    listen_port=port,
                    **common,
                )
            )
    return targets


class TokenMaker:
    """IAM auth tokens via boto3 (SigV4 presign, no network call once credentials are cached)."""

    def __init__(self, session_for: SessionFor) -> None:
        self._session_for = session_for
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def make(self, profile: str, target: WorkloadTarget, user: str) -> str:
        with self._lock:
            # boto3 sessions are not thread-safe for creating clients; clients themselves are.
            client = self._clients.get((profile, target.region))
            if client is None:
                client = self._session_for(profile).client("rds", region_name=target.region)
                self._clients[(profile, target.region)] = client
        token: str = client.generate_db_auth_token(
            DBHostname=target.endpoint, Port=target.port, DBUsername=user, Region=target.region
        )
        return token


def garble_token(token: str) -> str:
    """Change the last character of the signature: still a well-formed URL, no longer a valid signature."""
    last = token[-1]
    return token[:-1] + ("0" if last != "0" else "1")
