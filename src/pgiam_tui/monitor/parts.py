"""The immutable pieces a cluster's snapshot is assembled from.

Each piece has one writer: discovery's cadence writes `DiscoveryPart`, the activity round writes each
`InstanceReading`, the events cadence `EventsPart`, the IAM cadence `IamPart`. A writer replaces its piece
whole (the loop is single-threaded, so a reader never sees half of one), and `assemble.assemble_snapshot`
turns a `ClusterParts` (all pieces at one moment) into a ClusterSnapshot with one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import boto3

from pgiam_tui.aws.discovery import ResolvedCluster
from pgiam_tui.config import ClusterConfig
from pgiam_tui.db.conninfo import ConnTarget
from pgiam_tui.model import (
    Attempt,
    ConnectionStatus,
    ConnEvent,
    ErrorInfo,
    FailureCount,
    Finding,
    IamSnapshot,
    ServerHealth,
    SessionRow,
)

__all__ = [
    "ClusterParts",
    "Discovered",
    "DiscoveryPart",
    "EventsPart",
    "IamPart",
    "InstanceReading",
    "InstanceState",
]


@dataclass(frozen=True, slots=True)
class Discovered:
    """A successful discovery: the profile's session and what AWS (or the config) said about the cluster."""

    session: boto3.Session
    resolved: ResolvedCluster
    at: datetime


@dataclass(frozen=True, slots=True)
class DiscoveryPart:
    """The last good discovery, and the last attempt's failure (None when it succeeded)."""

    found: Discovered | None = None
    error: ErrorInfo | None = None
    running_since: datetime | None = None  # an attempt in flight (AWS may be stalled)


@dataclass(frozen=True, slots=True)
class InstanceReading:
    """What the activity reads of one instance left: the rows last read and the last attempt's failure."""

    instance_id: str
    rows: tuple[SessionRow, ...] = ()
    findings: tuple[Finding, ...] = ()
    read_at: datetime | None = None  # when `rows` were read (None: never)
    error: ErrorInfo | None = None  # why the last attempt gave no rows (None: it did)
    health: ServerHealth | None = None  # server-wide figures of the last read that could get them


@dataclass(frozen=True, slots=True)
class InstanceState:
    """One watched instance at one moment: where it is, its connection's state and its last reading."""

    target: ConnTarget
    connection: ConnectionStatus
    server_version: str | None
    reading: InstanceReading


@dataclass(frozen=True, slots=True)
class EventsPart:
    """The events pane's data, read on its own cadence."""

    events: tuple[ConnEvent, ...] = ()
    failures: tuple[FailureCount, ...] = ()
    problems: tuple[Finding, ...] = ()
    read_at: datetime | None = None
    error: str | None = None  # the last run's failure (e.g. a timeout)
    running_since: datetime | None = None
    merged_clients: bool = False  # the collector merged the console's own attempts into `events`
    attempts: tuple[Attempt, ...] = ()  # connection attempts joined by the events collector


@dataclass(frozen=True, slots=True)
class IamPart:
    """The IAM pane's data, read on its own cadence."""

    iam: IamSnapshot | None = None
    problems: tuple[Finding, ...] = ()
    read_at: datetime | None = None
    error: str | None = None
    running_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClusterParts:
    """Every piece of one cluster at one moment: the input of `assemble_snapshot`."""

    cfg: ClusterConfig
    discovery: DiscoveryPart
    instances: tuple[InstanceState, ...]
    events: EventsPart
    iam: IamPart
    identity_arn: str | None
    client_events: tuple[ConnEvent, ...]
    error: ErrorInfo | None = None  # a failure of the whole cluster (credentials, discovery, no instance)
    round_ms: float | None = None
