"""The SQL a fix hint suggests, pasted into a real PostgreSQL: it does what it says and nothing more, even
for a role named `bob; DROP DATABASE demo; --` (issue 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from helpers.local_pg import running_postgres
from pgiam_tui.aws.iam_read import IamInventory
from pgiam_tui.collect.iam_findings import MappingContext, RoleRow, build_snapshot
from pgiam_tui.vocabulary import FindingCode

HOSTILE = "bob; DROP DATABASE demo; --"


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_postgres(Path(tmp_path_factory.mktemp("fix-hints"))) as server:
        yield server


def test_pasted_fixes_touch_only_the_named_role(pg: Any) -> None:
    ctx = MappingContext(
        region="us-east-1",
        account_id="111111111111",
        resource_id="cluster-ABCDEFGHIJKLMNOP",
        iam_auth_enabled=True,
        identifiers=frozenset({"pgdemo-1"}),
        monitor_user=HOSTILE,
        kind="aurora",
        cluster_label="pgdemo-1",
    )
    roles = [RoleRow(HOSTILE, True, False, False, False, ("rds_iam",))]
    now = datetime(2025, 9, 22, tzinfo=UTC)
    snapshot = build_snapshot(ctx, roles, IamInventory("111111111111", (), now), now=now)
    fixes = {f.code: f.fix or "" for f in snapshot.findings}
    revoke = re.search(r'REVOKE rds_iam FROM "(?:[^"]|"")*";', fixes[FindingCode.ORPHAN_DB_USER])
    assert revoke is not None
    grant = fixes[FindingCode.NO_PG_MONITOR]

    with psycopg.connect(pg.dsn(dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(HOSTILE)))
        conn.execute("DO $$BEGIN CREATE ROLE rds_iam; EXCEPTION WHEN duplicate_object THEN NULL; END$$")
        conn.execute(sql.SQL("GRANT rds_iam TO {}").format(sql.Identifier(HOSTILE)))
        try:
            conn.execute(revoke.group(0))  # exactly what a DBA would paste
            conn.execute(grant)
            members = conn.execute(
                "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = %s",
                (HOSTILE,),
            ).fetchall()
            assert sorted(r[0] for r in members) == ["pg_monitor"]
            demo = conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'demo'").fetchone()
            assert demo == (1,)
        finally:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(HOSTILE)))
