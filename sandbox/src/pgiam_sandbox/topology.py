"""The sandbox's public description of what runs where (part of the `pgiam_sandbox` contract)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SandboxInstance:
    """One DB instance: its endpoint as moto reports it, and where the sandbox really serves it."""

    id: str  # DBInstanceIdentifier, e.g. "pgdemo-1-writer"
    role: str  # "writer" | "reader" | "instance"
    endpoint: str  # address moto reports for the instance
    port: int  # canonical 5432 (tokens are signed for endpoint:5432)
    listen_host: str  # "127.0.0.1"
    listen_port: int  # the front door's local port for this instance
    resource_id: str  # DbiResourceId ("db-..."), made unique by the sandbox (moto repeats one)
    pg_port: int  # the real PostgreSQL's TCP port (scram only), for "direct" benchmarks
    pg_socket_dir: str


@dataclass(frozen=True)
class SandboxCluster:
    """An Aurora cluster (writer + reader) or an RDS for PostgreSQL instance (kind "instance")."""

    name: str
    kind: str  # "aurora" | "instance"
    cluster_id: str | None
    instance_id: str | None
    account_id: str
    region: str
    endpoint: str  # cluster (writer) endpoint; the instance endpoint for kind "instance"
    port: int
    listen_host: str
    listen_port: int  # front door port of `endpoint`
    reader_endpoint: str | None
    reader_listen_port: int | None
    resource_id: str  # DbClusterResourceId ("cluster-...") or DbiResourceId ("db-...")
    database: str
    log_group: str
    iam_log_group: str
    log_file: str
    instances: tuple[SandboxInstance, ...]

    @property
    def writer(self) -> SandboxInstance:
        """The writer (or the standalone instance)."""
        return next(i for i in self.instances if i.role in ("writer", "instance"))

    @property
    def reader(self) -> SandboxInstance | None:
        """The reader member, if any."""
        return next((i for i in self.instances if i.role == "reader"), None)

    def to_json(self) -> dict[str, Any]:
        """The sandbox.json entry."""
        data = asdict(self)
        data["instances"] = [asdict(i) for i in self.instances]
        return data


@dataclass(frozen=True)
class InstancePids:
    """The processes serving one DB instance, for fault tests (SIGSTOP, SIGKILL by pid).

    ``postmaster`` is None when the server is not running; ``children`` are its backends and background
    processes (also those orphaned by a killed postmaster, until the sandbox ends them).
    """

    postmaster: int | None
    children: tuple[int, ...]

    @property
    def all(self) -> tuple[int, ...]:
        """Postmaster (if any) and children."""
        return (self.postmaster, *self.children) if self.postmaster is not None else self.children


class Switches:
    """Knobs read by the front doors per message / per connection; plain attributes, set them at will."""

    def __init__(self, latency_ms: float = 0, clock_skew_seconds: float = 0) -> None:
        self.latency_ms: float = latency_ms  # added to every relayed message, both ways
        self.clock_skew_seconds: float = clock_skew_seconds  # the front door's "now" = real now + skew
        self.throttle_per_second: float | None = None  # max new IAM connections/s per instance
        # instance ids whose relayed sessions are reset (TCP RST) when the client sends anything after the
        # login, i.e. mid-query: the query is never answered and the socket dies under the client
        self.reset_mid_query: set[str] = set()
        # AWS services ("rds", "logs", "iam", "sts", "monitoring", ...; "*": all) whose requests moto's server
        # holds without an answer: an AWS stall as the client sees it (until its read timeout or the end)
        self.aws_stalled: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"Switches(latency_ms={self.latency_ms}, clock_skew_seconds={self.clock_skew_seconds}, "
            f"throttle_per_second={self.throttle_per_second}, "
            f"reset_mid_query={sorted(self.reset_mid_query)}, aws_stalled={sorted(self.aws_stalled)})"
        )
