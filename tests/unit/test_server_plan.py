"""server_plan: which PostgreSQL server serves which DB instance (own ones for a demo, shared in a fleet)."""

from __future__ import annotations

import pytest
from pgiam_sandbox.server_plan import plan_servers

pytestmark = pytest.mark.unit


def _fleet(clusters: int) -> list[tuple[str, bool]]:
    pairs = [
        pair for i in range(1, clusters + 1) for pair in ((f"c{i}-writer", False), (f"c{i}-reader", True))
    ]
    return [*pairs, ("rds", False)]


def test_small_sandbox_keeps_a_server_per_instance() -> None:
    plan = plan_servers(_fleet(3), 8)
    assert {iid: slot.name for iid, slot in plan.items()} == {iid: iid for iid, _ in _fleet(3)}
    assert [slot.read_only for slot in plan.values()] == [ro for _, ro in _fleet(3)]


@pytest.mark.parametrize(("clusters", "max_servers"), [(50, 8), (50, 4), (12, 4), (10, 2), (10, 1), (9, 3)])
def test_a_fleet_shares_servers_by_kind(clusters: int, max_servers: int) -> None:
    wanted = _fleet(clusters)
    plan = plan_servers(wanted, max_servers)
    assert set(plan) == {iid for iid, _ in wanted}
    slots = set(plan.values())
    assert len(slots) <= max(max_servers, 2)  # one of each kind at least
    for iid, read_only in wanted:
        assert plan[iid].read_only == read_only  # a reader never lands on a writable server, nor the reverse
    # round-robin: no server carries more than its share (rounded up) of its kind
    for kind in (True, False):
        mine = [s for s in slots if s.read_only == kind]
        counts = [sum(1 for slot in plan.values() if slot == s) for s in mine]
        assert max(counts) - min(counts) <= 1


def test_zero_servers_is_refused() -> None:
    with pytest.raises(ValueError, match="max_servers"):
        plan_servers(_fleet(1), 0)
