"""Terminate the idle-in-transaction sessions a DBA confirmed (the console's `X`), on one cluster.

Only the sessions confirmed, and only while they are still what was confirmed: the statement matches each on
pid, backend_start (a pid can be reused) and xact_start (the same transaction), and on its state still being
idle in transaction. One statement per instance; every outcome is recorded as an action event of the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgiam_tui.db.connection import ConnectError, QueryError
from pgiam_tui.db.queries import get_query
from pgiam_tui.model import SessionRow
from pgiam_tui.monitor.cluster import ClusterRuntime

LEFT_ALONE = "left alone: no longer idle in that transaction"


async def terminate_idle_transactions(rt: ClusterRuntime, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
    """Terminate SESSIONS of RT's cluster that are still idle in the same transaction; one outcome line each.

    Raises PermissionError when the cluster's config does not allow actions (monitoring is read-only by
    default). A failing instance gives failure lines for its sessions; the other instances go on.
    """
    rt.require_actions()
    by_instance: dict[str, list[SessionRow]] = {}
    for row in sessions:
        by_instance.setdefault(row.instance, []).append(row)
    outcomes: list[str] = []
    for instance, rows in by_instance.items():
        watch = rt.instances.get(instance)
        if watch is None:
            outcomes += [f"terminate backend {r.pid} on {instance} failed: no such instance" for r in rows]
            continue
        try:
            await watch.conn.ready()
            sql = get_query("terminate_idle_tx", watch.conn.server_version_num or 0)
            params = ([r.pid for r in rows], [r.backend_start for r in rows], [r.xact_start for r in rows])
            result = await watch.conn.fetch(sql, params)
            done = {int(pid) for pid, terminated in result if terminated}
            lines = [
                f"terminate backend {r.pid} on {instance}: {'done' if r.pid in done else LEFT_ALONE}"
                for r in rows
            ]
        except (ConnectError, QueryError) as exc:
            lines = [f"terminate backend {r.pid} on {instance} failed: {exc}" for r in rows]
        for row, line in zip(rows, lines, strict=True):
            rt.record_action(instance, row.pid, line)
        outcomes += lines
    return tuple(outcomes)
