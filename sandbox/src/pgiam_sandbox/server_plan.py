"""Which PostgreSQL server serves which DB instance: one each for a small sandbox, shared for a fleet.

Up to ``max_servers`` instances each get their own server (the demo has 7). Beyond that they share: writers
(and RDS for PostgreSQL instances) round-robin over writable servers, Aurora readers over read-only ones, in
proportion to how many of each there are. Every instance keeps its own endpoint, front door, token checks,
log group and log file; what sharing instances have in common is the server's sessions and data, so each of
them shows the sessions of every instance on its server (`sandbox up --clusters 50` starts in seconds and
fits in memory this way; the README says so).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_SERVERS", "ServerSlot", "plan_servers"]

DEFAULT_MAX_SERVERS = 8


@dataclass(frozen=True)
class ServerSlot:
    """One PostgreSQL server of the plan: its directory name and whether it is an Aurora reader's."""

    name: str
    read_only: bool


def plan_servers(instances: list[tuple[str, bool]], max_servers: int) -> dict[str, ServerSlot]:
    """Map (instance id, read_only) pairs to server slots: at most ``max_servers`` (but one of each kind)."""
    if max_servers < 1:
        raise ValueError("max_servers must be >= 1")
    if len(instances) <= max_servers:
        return {iid: ServerSlot(iid, read_only) for iid, read_only in instances}
    writers = [iid for iid, read_only in instances if not read_only]
    readers = [iid for iid, read_only in instances if read_only]
    if not readers:
        n_writers, n_readers = max_servers, 0
    elif not writers:
        n_writers, n_readers = 0, max_servers
    else:  # one of each kind at least (a reader's server is read-only)
        share = round(max_servers * len(writers) / len(instances))
        n_writers = min(max(1, max_servers - 1), max(1, share))
        n_readers = max(1, max_servers - n_writers)
    plan: dict[str, ServerSlot] = {}
    for i, iid in enumerate(writers):
        plan[iid] = ServerSlot(f"shared-writer-{i % n_writers + 1}", False)
    for i, iid in enumerate(readers):
        plan[iid] = ServerSlot(f"shared-reader-{i % n_readers + 1}", True)
    return plan
