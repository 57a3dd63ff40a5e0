"""The shared state of one check run: configuration, what each step found, and the causes suspected so far."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pgiam_tui.config import ClusterConfig, parse_hostport
from pgiam_tui.diagnose.causes import Diagnosis
from pgiam_tui.diagnose.result import EvidenceSource
from pgiam_tui.vocabulary import CheckCause

if TYPE_CHECKING:
    import socket

    import boto3

    from pgiam_tui.aws.discovery import ResolvedCluster
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.aws.tokens import Token

Clock = Callable[[], datetime]


# Beyond this many seconds between the local clock and AWS's Date header, tokens are refused
# (RDS, like SigV4 in general, tolerates about 5 minutes into the future and 15 minutes of age).
SKEW_LIMIT_S = 300.0


def utc_now() -> datetime:
    """The local clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass
class CheckContext:
    """Everything one check run learns, step by step. Never holds a password outside `token`/`password`."""

    cfg: ClusterConfig
    sessions: SessionFactory
    clock: Clock = utc_now
    log_wait_s: float = 5.0
    session: boto3.Session | None = None
    identity_arn: str | None = None
    skew_s: float | None = None  # local clock minus AWS's Date header
    cluster: ResolvedCluster | None = None
    token: Token | None = None
    password: str | None = field(default=None, repr=False)
    connect_addr: str | None = None  # hostaddr (tunnel) or a resolved address
    connect_port: int = 5432
    tunnel: bool = False
    sock: socket.socket | None = None
    tls_summary: str | None = None
    conn: Any = None  # psycopg.AsyncConnection while the session step runs
    # Work started early so that it overlaps network waits: psycopg's import, and discovery (which needs
    # only the session) running beside the STS call of the credentials step.
    prefetch: asyncio.Future[Any] | None = None
    discovery: asyncio.Future[tuple[ResolvedCluster, float]] | None = None
    # Causes suspected by steps before the login (ranked by insertion): confirmed or dropped after it.
    suspects: list[tuple[str, Diagnosis]] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    evidence_source: EvidenceSource | None = None
    candidates: list[str] = field(default_factory=list)
    # AWS reads that timed out while gathering evidence (a timeout is never read as a missing permission)
    aws_timeouts: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The host the token is signed for and TLS checks: the config's own endpoint."""
        c = self.cluster
        if c is None:
            return self.cfg.endpoint or ""
        if self.cfg.use_reader_endpoint and c.reader_endpoint:
            return c.reader_endpoint
        return c.endpoint

    @property
    def port(self) -> int:
        """The canonical port the token is signed for."""
        return self.cluster.port if self.cluster is not None else self.cfg.port

    @property
    def region(self) -> str | None:
        """The cluster's region (discovered), else the config's."""
        return self.cluster.region if self.cluster is not None else self.cfg.region

    def tunnel_target(self) -> tuple[str, int] | None:
        """(hostaddr, port) when TCP goes somewhere else than the endpoint (a tunnel)."""
        for host, target in self.cfg.tunnels:
            if host == self.endpoint:
                parsed = parse_hostport(target)
                if parsed is not None:
                    return parsed
        if self.cfg.hostaddr:
            return self.cfg.hostaddr, self.cfg.local_port or self.port
        return None

    def suspect(self, step: str, diagnosis: Diagnosis) -> None:
        """Remember a cause a step predicts (confirmed only if the login then fails)."""
        self.suspects.append((step, diagnosis))

    def suspected(self, code: CheckCause) -> Diagnosis | None:
        """The suspected diagnosis with CODE, if any."""
        return next((d for _s, d in self.suspects if d.code == code), None)

    def decide(self, diagnosis: Diagnosis, source: EvidenceSource | None = None) -> None:
        """Set the cause of the check (the first decision wins)."""
        if self.diagnosis is None:
            self.diagnosis = diagnosis
            if source is not None:
                self.evidence_source = source

    def endpoint_region(self) -> str | None:
        """The region written in the endpoint's host name (RDS names carry it), if any."""
        from pgiam_tui.aws.endpoints import endpoint_region

        return endpoint_region(self.endpoint)
