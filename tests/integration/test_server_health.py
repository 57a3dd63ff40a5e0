"""Server health (connections, max_connections, transaction counter, recovery) on a real PostgreSQL, read as
the monitoring user through InstanceConnection and InstanceRound, with each activity query, as the monitor
does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres

from helpers.local_pg import monitor_connection, running_postgres
from pgiam_tui.collect.instance_round import InstanceRound
from pgiam_tui.collect.server_health import parse_health


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with running_postgres(tmp_path_factory.mktemp("health")) as pg:
        yield pg


async def test_health_counts_connections_and_transactions(server: LocalPostgres, tmp_path: Path) -> None:
    monitor = monitor_connection(server)
    reading = InstanceRound("local-writer", "pgmonitor")
    admin = await psycopg.AsyncConnection.connect(server.admin_dsn, autocommit=True)
    try:
        max_connections = int((await (await admin.execute("SHOW max_connections")).fetchone() or [0])[0])
        first = (await reading.read(monitor)).health
        assert first is not None
        assert first.max_connections == max_connections
        assert first.connections is not None and first.connections >= 2  # the admin and the monitor
        assert first.in_recovery is False and first.replica_lag_s is None  # a primary has no replay lag
        for _ in range(5):
            await admin.execute("SELECT 1")
        second = (await reading.read(monitor)).health
        assert second is not None and second.xact_total is not None and first.xact_total is not None
        # pg_stat_database is updated when a backend reports its statistics (at the latest at idle)
        assert second.xact_total >= first.xact_total
        assert second.sampled_at is not None and first.sampled_at is not None
        assert second.sampled_at > first.sampled_at
    finally:
        await admin.close()
        await monitor.close()


def test_aurora_lag_wins_over_replay_lag_and_minus_one_means_not_a_replica() -> None:
    # Row shape of server_health_post_100000.sql; values as aurora_replica_status() documents them:
    # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora_replica_status.html
    row: tuple[Any, ...] = (None, 5000, 12, 1000, True, 3.5, True)
    assert parse_health(row, 20.0).replica_lag_s == pytest.approx(0.02)
    assert parse_health(row, -1.0).replica_lag_s is None
    assert parse_health(row, None).replica_lag_s == pytest.approx(3.5)
