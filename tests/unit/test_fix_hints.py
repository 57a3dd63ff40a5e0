"""Fix hints never inject: identifiers in suggested SQL are quoted as PostgreSQL quotes them, profile names
and ids in suggested command lines are one shell word each (issue 10). Pure; the SQL is also run for real in
tests/integration/test_fix_hints_sql.py."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import botocore.exceptions

from pgiam_tui.aws.errors import classify_aws_error
from pgiam_tui.aws.iam_read import IamInventory
from pgiam_tui.collect.activity import privilege_findings
from pgiam_tui.collect.iam_findings import MappingContext, RoleRow, build_snapshot
from pgiam_tui.fixquote import shell_word, sql_ident
from pgiam_tui.vocabulary import FindingCode

HOSTILE_ROLE = "bob; DROP DATABASE demo; --"
HOSTILE_PROFILE = 'it\'s "prod" $(touch /tmp/pwned)'


def sql_statements(text: str) -> list[str]:
    """TEXT split at the semicolons PostgreSQL would end a statement at (outside quotes)."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in text:
        if quote is not None:
            current.append(ch)
            if ch == quote:
                quote = None  # a doubled quote closes and reopens: same effect here
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    rest = "".join(current).strip()
    if rest:
        statements.append(rest)
    return statements


def test_sql_ident_is_postgres_quoting() -> None:
    assert sql_ident(HOSTILE_ROLE) == '"bob; DROP DATABASE demo; --"'
    assert sql_ident('a"b') == '"a""b"'
    assert sql_ident("pgmonitor") == '"pgmonitor"'
    assert sql_statements(f"REVOKE rds_iam FROM {sql_ident(HOSTILE_ROLE)};") == [
        'REVOKE rds_iam FROM "bob; DROP DATABASE demo; --"'
    ]


def test_shell_word_is_one_word() -> None:
    assert shlex.split(f"aws sso login --profile {shell_word(HOSTILE_PROFILE)}") == [
        "aws",
        "sso",
        "login",
        "--profile",
        HOSTILE_PROFILE,
    ]
    assert shell_word("prod") == "prod"  # plain names stay readable


def test_orphan_and_pg_monitor_findings_quote_the_role() -> None:
    ctx = MappingContext(
        region="us-east-1",
        account_id="111111111111",
        resource_id="cluster-ABCDEFGHIJKLMNOP",
        iam_auth_enabled=True,
        identifiers=frozenset({"pgdemo-1"}),
        monitor_user=HOSTILE_ROLE,
        kind="aurora",
        cluster_label="pgdemo-1",
    )
    roles = [
        RoleRow(HOSTILE_ROLE, True, False, False, False, ("rds_iam",)),
        RoleRow("rds_iam", False, False, False, False, ()),
    ]
    now = datetime(2025, 9, 22, tzinfo=UTC)
    snap = build_snapshot(ctx, roles, IamInventory("111111111111", (), now), now=now)
    fixes = {f.code: f.fix for f in snap.findings}
    orphan = fixes[FindingCode.ORPHAN_DB_USER]
    assert 'REVOKE rds_iam FROM "bob; DROP DATABASE demo; --";' in orphan
    assert "FROM bob;" not in orphan
    assert sql_statements(fixes[FindingCode.NO_PG_MONITOR]) == [
        'GRANT pg_monitor TO "bob; DROP DATABASE demo; --"'
    ]


def test_insufficient_privilege_hint_quotes_the_user() -> None:
    from pgiam_tui.collect.activity import INSUFFICIENT_PRIVILEGE
    from pgiam_tui.model import SessionRow

    row = SessionRow(
        "writer",
        42,
        "demo",
        "oltp_rw_user",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "active",
        None,
        None,
        "client backend",
        None,
        INSUFFICIENT_PRIVILEGE,
    )
    (finding,) = privilege_findings("writer", HOSTILE_ROLE, [row])
    assert sql_statements(finding.fix or "") == ['GRANT pg_monitor TO "bob; DROP DATABASE demo; --"']


def test_sso_login_hint_quotes_the_profile() -> None:
    err = classify_aws_error(botocore.exceptions.SSOTokenLoadError(error_msg="x"), HOSTILE_PROFILE)
    assert err.hint is not None
    assert shlex.split(err.hint)[-1] == HOSTILE_PROFILE
