"""One cluster's runtime: the slots holding its immutable pieces, its instances and its AWS collectors.

Each slot has one writer (see parts.py): `discovery` is written by the discovery cadence, `instances` and
`error` by the activity round, `events` by the events cadence, `iam` by the IAM cadence, `identity_arn` by
the identity cadence. `parts()` reads them all at one moment for `assemble_snapshot`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from pgiam_tui.collect.events import EventsCollector
from pgiam_tui.collect.iam_mapping import IamMappingCollector
from pgiam_tui.config import ClusterConfig
from pgiam_tui.db.connection import utcnow
from pgiam_tui.model import ClusterSnapshot, ConnEvent, ErrorInfo, EventKind
from pgiam_tui.monitor.cadence import Cadence
from pgiam_tui.monitor.instances import InstanceWatch
from pgiam_tui.monitor.parts import ClusterParts, DiscoveryPart, EventsPart, IamPart

__all__ = ["CLIENT_EVENTS_KEPT", "ClusterRuntime"]

CLIENT_EVENTS_KEPT = 200


@dataclass(slots=True, eq=False)
class ClusterRuntime:
    """Slots for one cluster's pieces, plus the machinery that refreshes them."""

    cfg: ClusterConfig
    interval: float
    events_collector: EventsCollector
    iam_collector: IamMappingCollector
    # -- slots (one writer each) --
    discovery: DiscoveryPart = field(default_factory=DiscoveryPart)
    instances: dict[str, InstanceWatch] = field(default_factory=dict)
    error: ErrorInfo | None = None
    round_ms: float | None = None
    events: EventsPart = field(default_factory=EventsPart)
    iam: IamPart = field(default_factory=IamPart)
    identity_arn: str | None = None
    client_events: deque[ConnEvent] = field(default_factory=lambda: deque(maxlen=CLIENT_EVENTS_KEPT))
    latest: ClusterSnapshot | None = None
    # -- machinery --
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one activity round at a time
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    discovered: asyncio.Event = field(default_factory=asyncio.Event)  # the first attempt has ended
    first_round: asyncio.Event = field(default_factory=asyncio.Event)  # the first activity round has ended
    refresh_requested: bool = False
    last_round_end: float = 0.0
    task: asyncio.Task[None] | None = None
    cadences: dict[str, Cadence] = field(default_factory=dict)
    closing: set[asyncio.Task[None]] = field(default_factory=set)

    def parts(self) -> ClusterParts:
        """Every piece at this moment."""
        return ClusterParts(
            cfg=self.cfg,
            discovery=self.discovery,
            instances=tuple(w.state() for w in self.instances.values()),
            events=self.events,
            iam=self.iam,
            identity_arn=self.identity_arn,
            client_events=tuple(self.client_events),
            error=self.error,
            round_ms=self.round_ms,
        )

    def writer(self) -> InstanceWatch | None:
        """The writer's (or only instance's) watch, else any."""
        for w in self.instances.values():
            if w.conn.target.role in ("writer", "instance"):
                return w
        return next(iter(self.instances.values()), None)

    def require_actions(self) -> None:
        """Raise PermissionError unless this cluster's config allows actions (monitoring is read-only)."""
        if not self.cfg.allow_actions:
            raise PermissionError(
                f"{self.cfg.name}: actions are not allowed (set allow_actions = true in profiles.toml)"
            )

    def record_action(self, instance: str, pid: int, outcome: str) -> None:
        """Keep OUTCOME of an action on backend PID of INSTANCE as a client event of kind "action"."""
        self.client_events.append(
            ConnEvent(
                time=utcnow(),
                kind=EventKind.ACTION,
                user=self.cfg.user,
                database=self.cfg.database,
                pid=pid,
                source="client",
                message=outcome,
                instance=instance,
            )
        )
