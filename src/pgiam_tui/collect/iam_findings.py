"""Findings of the IAM mapping: the database side and the AWS side of one cluster joined (pure, no I/O).

`build_snapshot` takes the roles (RoleRow, from collect/iam_mapping.py's ROLES_SQL), the IAM inventory
(aws/iam_read.py) and Access Advisor results, evaluates every principal's policies with aws/policy.py for
`rds-db:connect` on each user's ARN, and turns drift into findings with stable codes (FINDING_CODES), each
with a fix text. Names from the database or IAM are untrusted: findings keep them as they are, and every
output escapes them once (`pgiam_tui.textsafe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pgiam_tui.aws.errors import aws_read_fix
from pgiam_tui.aws.iam_read import AccessAdvice, IamInventory, IamReadError
from pgiam_tui.aws.policy import (
    CONNECT_ACTION,
    MatchedStatement,
    connect_grants,
    dbuser_arn,
    evaluate,
    partition_of_region,
    resource_match,
    wildcard_match,
)
from pgiam_tui.fixquote import sql_ident
from pgiam_tui.model import AssumeRoleEvent, DbUser, Finding, Grant, IamMetrics, IamSnapshot, Severity
from pgiam_tui.vocabulary import FindingCode

__all__ = ["FINDING_CODES", "MappingContext", "RoleRow", "build_snapshot"]

FINDING_CODES = (
    FindingCode.IAM_AUTH_DISABLED,
    FindingCode.ORPHAN_DB_USER,
    FindingCode.ORPHAN_GRANT,
    FindingCode.GRANT_WITHOUT_RDS_IAM,
    FindingCode.WILDCARD_GRANT,
    FindingCode.WRONG_RESOURCE_ID,
    FindingCode.UNUSED_GRANT,
    FindingCode.NO_PG_MONITOR,
    FindingCode.IAM_UNREADABLE,
)

_RDS_INTERNAL = frozenset(
    {
        "rdsadmin",
        "rds_superuser",
        "rds_iam",
        "rds_replication",
        "rds_password",
        "rdsrepladmin",
        "rdstopmgr",
        "rds_ad",
        "rds_extension",
    }
)


@dataclass(frozen=True)
class RoleRow:
    """One row of ROLES_SQL."""

    name: str
    can_login: bool
    superuser: bool
    createrole: bool
    bypassrls: bool
    member_of: tuple[str, ...]


def _closure(roles: Mapping[str, RoleRow]) -> dict[str, frozenset[str]]:
    memo: dict[str, frozenset[str]] = {}

    def visit(name: str, stack: frozenset[str]) -> frozenset[str]:
        if name in memo:
            return memo[name]
        row = roles.get(name)
        acc: set[str] = set()
        if row is not None:
            for parent in row.member_of:
                acc.add(parent)
                if parent not in stack:  # membership cycles are impossible in PostgreSQL, but be safe
                    acc |= visit(parent, stack | {name})
        memo[name] = frozenset(acc)
        return memo[name]

    return {name: visit(name, frozenset()) for name in roles}


@dataclass(frozen=True)
class _DbUserArn:
    """Pieces of an rds-db dbuser ARN pattern from a policy (each piece may hold wildcards)."""

    partition: str
    region: str
    account: str
    resource_id: str
    user: str


def _split_dbuser(pattern: str) -> _DbUserArn | None:
    # arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER
    parts = pattern.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "rds-db" or parts[5] != "dbuser":
        return None
    rid, sep, user = parts[6].partition("/")
    if not sep:
        return None
    return _DbUserArn(parts[1], parts[3], parts[4], rid, user)


def _wild(text: str) -> bool:
    return "*" in text or "?" in text


@dataclass(frozen=True)
class MappingContext:
    """What build_snapshot needs about the cluster."""

    region: str
    account_id: str | None
    resource_id: str | None
    iam_auth_enabled: bool | None
    identifiers: frozenset[str]  # cluster / instance identifiers: a grant naming one of these is a mistake
    monitor_user: str
    kind: str
    cluster_label: str


def _fix_enable_iam(ctx: MappingContext) -> str:
    if ctx.kind == "instance":
        return (
            "aws rds modify-db-instance --db-instance-identifier ID --enable-iam-database-authentication "
            "--apply-immediately"
        )
    return (
        "aws rds modify-db-cluster --db-cluster-identifier ID --enable-iam-database-authentication "
        "--apply-immediately"
    )


def build_snapshot(
    ctx: MappingContext,
    roles: Sequence[RoleRow],
    inventory: IamInventory | None,
    *,
    iam_error: IamReadError | None = None,
    iam_profile: str | None = None,
    advice: Mapping[str, AccessAdvice] | None = None,
    unused_days: int = 90,
    now: datetime | None = None,
    metrics: tuple[IamMetrics, ...] = (),
    assume_role_events: tuple[AssumeRoleEvent, ...] = (),
    extra_findings: Sequence[Finding] = (),
) -> IamSnapshot:
    """Join the database side and the AWS side into an IamSnapshot with findings (pure: no I/O)."""
    now = now or datetime.now(UTC)
    advice = advice or {}
    by_name = {r.name: r for r in roles}
    closure = _closure(by_name)
    findings: list[Finding] = []
    per_user: dict[str, list[Finding]] = {}

    def add(sev: Severity, code: FindingCode, msg: str, fix: str, user: str | None = None) -> None:
        f = Finding(severity=sev, code=code, message=msg, fix=fix, user=user)
        findings.append(f)
        if user is not None:
            per_user.setdefault(user, []).append(f)

    if ctx.iam_auth_enabled is False:
        add(
            "critical",
            FindingCode.IAM_AUTH_DISABLED,
            f"IAM database authentication is disabled on {ctx.cluster_label}: every IAM login fails with "
            "PAM authentication failed",
            _fix_enable_iam(ctx),
        )

    shown = [
        r
        for r in roles
        if not r.name.startswith("pg_")
        and r.name not in _RDS_INTERNAL
        and (r.can_login or "rds_iam" in closure.get(r.name, ()))
    ]

    # IAM of another account says nothing about who may connect here (the profile reads its own account)
    other_account = (
        inventory is not None
        and inventory.account_id is not None
        and ctx.account_id is not None
        and inventory.account_id != ctx.account_id
    )
    readable = (
        inventory is not None
        and not other_account
        and ctx.account_id is not None
        and ctx.resource_id is not None
    )
    grants_by_user: dict[str, list[Grant]] = {}
    statements: list[tuple[str, MatchedStatement]] = []  # (principal arn, connect statement)
    if readable:
        assert inventory is not None and ctx.account_id is not None and ctx.resource_id is not None
        candidates = []
        for p in inventory.principals:
            stmts = connect_grants(p.policies)
            if stmts:
                candidates.append(p)
                statements.extend((p.arn, s) for s in stmts)
        for r in shown:
            arn = dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, r.name)
            for p in candidates:
                d = evaluate(p.policies, CONNECT_ACTION, arn)
                if not (d.allowed or d.conditional):
                    continue
                allow = next((m for m in d.matches if m.effect == "Allow"), None)
                adv = advice.get(p.arn)
                grants_by_user.setdefault(r.name, []).append(
                    Grant(
                        principal_arn=p.arn,
                        policy_name=allow.policy if allow else "?",
                        resource=allow.resource_pattern if allow else arn,
                        conditional=not d.allowed,
                        last_used=adv.last_used if adv else None,
                    )
                )
        _grant_findings(ctx, statements, by_name, closure, add)
        for r in shown:
            # Grants through a bare "*" (admin policies: Action "*" on Resource "*") do not count: they were
            # not written for this user, and an account always has some. A dbuser ARN pattern must name it.
            named = [g for g in grants_by_user.get(r.name, ()) if _split_dbuser(g.resource) is not None]
            if "rds_iam" in closure.get(r.name, ()) and r.can_login and not named:
                arn = dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, r.name)
                broad = (
                    " (only through broad '*' grants such as admin policies)"
                    if grants_by_user.get(r.name)
                    else ""
                )
                add(
                    "warning",
                    FindingCode.ORPHAN_DB_USER,
                    f"{r.name} is in rds_iam (password login impossible) but no policy of account "
                    f"{ctx.account_id} grants rds-db:connect as it{broad}",
                    f"attach a policy allowing rds-db:connect on {arn} to the principal that should use it, "
                    f"or REVOKE rds_iam FROM {sql_ident(r.name)}; / DROP ROLE {sql_ident(r.name)};",
                    r.name,
                )
        _unused_findings(grants_by_user, advice, unused_days, now, add)
    elif other_account:
        assert inventory is not None
        who = f"profile {iam_profile}" if iam_profile else "the cluster's profile"
        add(
            "warning",
            FindingCode.IAM_UNREADABLE,
            f"{who} reads IAM of account {inventory.account_id}, but {ctx.cluster_label} is in account "
            f"{ctx.account_id}",
            f"set iam_profile to a profile of account {ctx.account_id} that may read IAM",
        )
    elif iam_error is not None:
        who = f"profile {iam_profile}" if iam_profile else "the cluster's profile"
        add(
            "warning",
            FindingCode.IAM_UNREADABLE,
            f"cannot read IAM with {who}: {iam_error}",
            _iam_fix(iam_error, who),
        )

    mon = by_name.get(ctx.monitor_user)
    if mon is not None and "pg_monitor" not in closure.get(mon.name, ()) and not mon.superuser:
        add(
            "warning",
            FindingCode.NO_PG_MONITOR,
            f"monitoring user {mon.name} is not a member of pg_monitor: other sessions' queries show as "
            "<insufficient privilege> and some statistics are hidden",
            f"GRANT pg_monitor TO {sql_ident(mon.name)};",
            mon.name,
        )
    findings.extend(extra_findings)

    users = []
    for r in shown:
        member_of = tuple(sorted(closure.get(r.name, ())))
        users.append(
            DbUser(
                name=r.name,
                rds_iam="rds_iam" in member_of,
                member_of=tuple(sorted(r.member_of)),
                can_login=r.can_login,
                superuser_like=r.superuser or r.createrole or r.bypassrls or "rds_superuser" in member_of,
                iam_principals=tuple(grants_by_user.get(r.name, ())),
                findings=tuple(per_user.get(r.name, ())),
            )
        )
    return IamSnapshot(
        iam_auth_enabled=ctx.iam_auth_enabled,
        resource_id=ctx.resource_id,
        users=tuple(users),
        findings=tuple(findings),
        metrics=metrics,
        assume_role_events=assume_role_events,
        iam_readable=readable,
    )


_Add = Callable[[Severity, FindingCode, str, str, "str | None"], None]


def _grant_findings(
    ctx: MappingContext,
    statements: Sequence[tuple[str, MatchedStatement]],
    roles: Mapping[str, RoleRow],
    closure: Mapping[str, frozenset[str]],
    add: _Add,
) -> None:
    """orphan_grant, grant_without_rds_iam, wildcard_grant, wrong_resource_id: one finding per (policy,
    resource pattern)."""
    assert ctx.account_id is not None and ctx.resource_id is not None
    by_pattern: dict[tuple[str, str], list[str]] = {}
    for principal, st in statements:
        if st.not_resource:
            continue
        by_pattern.setdefault((st.policy, st.resource_pattern), []).append(principal)

    users = sorted(roles)
    partition = partition_of_region(ctx.region)
    for (policy, pattern), principals in sorted(by_pattern.items()):
        who = ", ".join(sorted(set(principals)))
        parsed = _split_dbuser(pattern)
        if parsed is None:
            # "*" or "arn:aws:rds-db:*" style: matches every user of every cluster (often an admin policy)
            matched = [
                u
                for u in users
                if resource_match(pattern, dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, u))
            ]
            if matched:
                add(
                    "info",
                    FindingCode.WILDCARD_GRANT,
                    f"policy {policy} ({who}) allows rds-db:connect on {pattern!r}: any user of any cluster",
                    f"scope rds-db:connect to arn:{partition}:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER",
                    None,
                )
            continue
        here = (
            wildcard_match(parsed.partition, partition)
            and wildcard_match(parsed.region, ctx.region)
            and wildcard_match(parsed.account, ctx.account_id)
        )
        if not here:
            continue  # another partition, region or account: not about this cluster
        exact = f"arn:{partition}:rds-db:{ctx.region}:{ctx.account_id}:dbuser:{ctx.resource_id}/"
        if _wild(parsed.resource_id) or _wild(parsed.user):
            matched = [
                u
                for u in users
                if resource_match(pattern, dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, u))
            ]
            if matched:
                single = None if _wild(parsed.user) else parsed.user
                add(
                    "warning",
                    FindingCode.WILDCARD_GRANT,
                    f"policy {policy} ({who}) allows rds-db:connect on {pattern}: matches "
                    f"{', '.join(matched)} here, and the same names on every other cluster it matches",
                    f"name the resource id and user explicitly, e.g. {exact}{single or matched[0]}",
                    single,
                )
            continue
        if parsed.resource_id == ctx.resource_id:
            if parsed.user not in roles:
                add(
                    "warning",
                    FindingCode.ORPHAN_GRANT,
                    f"policy {policy} ({who}) allows rds-db:connect as {parsed.user}, a user "
                    f"{ctx.cluster_label} does not have",
                    f"CREATE ROLE {sql_ident(parsed.user)} LOGIN; "
                    f"GRANT rds_iam TO {sql_ident(parsed.user)}; or remove {pattern} "
                    f"from {policy}",
                    None,
                )
            elif roles[parsed.user].can_login and "rds_iam" not in closure.get(parsed.user, ()):
                # without rds_iam the server checks the token as a password: "password authentication failed"
                add(
                    "critical",
                    FindingCode.GRANT_WITHOUT_RDS_IAM,
                    f"policy {policy} ({who}) allows rds-db:connect as {parsed.user}, who is not a member of "
                    "rds_iam: the server takes the token for a password and the login fails",
                    f"GRANT rds_iam TO {sql_ident(parsed.user)}; or remove {pattern} from {policy}",
                    parsed.user,
                )
            continue
        rid = parsed.resource_id
        if rid in ctx.identifiers or not rid.startswith(("cluster-", "db-")):
            add(
                "critical",
                FindingCode.WRONG_RESOURCE_ID,
                f"policy {policy} ({who}) names {rid!r} in {pattern}; rds-db:connect needs the resource id "
                f"{ctx.resource_id}, so this grant never matches",
                f"use {exact}{parsed.user}",
                parsed.user if parsed.user in roles else None,
            )


def _unused_findings(
    grants_by_user: Mapping[str, Sequence[Grant]],
    advice: Mapping[str, AccessAdvice],
    unused_days: int,
    now: datetime,
    add: _Add,
) -> None:
    horizon = now - timedelta(days=unused_days)
    done: set[str] = set()
    for user, grants in sorted(grants_by_user.items()):
        for g in grants:
            adv = advice.get(g.principal_arn)
            if adv is None or g.principal_arn in done:
                continue
            if adv.last_used is None or adv.last_used < horizon:
                done.add(g.principal_arn)
                when = "never" if adv.last_used is None else f"last on {adv.last_used:%Y-%m-%d}"
                add(
                    "info",
                    FindingCode.UNUSED_GRANT,
                    f"{g.principal_arn} may connect as {user} but has not used rds-db in {unused_days} days "
                    f"({when})",
                    f"revoke rds-db:connect from {g.principal_arn} (policy {g.policy_name}) if no longer "
                    "needed",
                    user,
                )


def _iam_fix(error: IamReadError, who: str) -> str:
    """A permission fix only when AWS refused; a timeout, an unreachable endpoint or throttling say what they
    were (aws_read_fix, the rule of every AWS read), any other failure how to find out."""
    if error.code == "Profile":
        return "check iam_profile in profiles.toml (`pgiam-tui profiles --resolve`)"
    if error.denied or error.permission:
        fix = (
            f"allow {error.permission or error.code} to {who} (e.g. the SecurityAudit or IAMReadOnlyAccess "
            "managed policy), or set iam_profile in profiles.toml to a profile that may read IAM"
        )
    else:
        fix = "read again at the next refresh; if it keeps failing, `pgiam-tui check` tells why"
    return aws_read_fix(error.cause, fix) if error.cause is not None else fix
