"""IAM mapping of one cluster: database roles (rds_iam, memberships) joined with who may connect as them.

Database side: one query over pg_roles / pg_auth_members (memberships resolved transitively here, so a user
that gets rds_iam or pg_monitor through another role counts). AWS side: the cluster's IAM flag and resource
id from discovery, and, when IAM can be read (the cluster's `iam_profile`, else its own profile),
every principal's identity policies evaluated by `aws.policy` for `rds-db:connect` on
`arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER`. Drift between the two sides becomes findings with
stable codes (see FINDING_CODES) and a fix text.

The expensive reads (IAM inventory, Access Advisor, metrics, CloudTrail) are cached in the collector and
refreshed on their own, slower cadence; the database query runs every round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

from pgiam_tui.aws.cloudtrail import lookup_assume_role_events
from pgiam_tui.aws.iam_read import AccessAdvice, IamInventory, IamReadError, last_used_rds_db, read_inventory
from pgiam_tui.aws.metrics import fetch_iam_metrics
from pgiam_tui.aws.policy import (
    CONNECT_ACTION,
    MatchedStatement,
    connect_grants,
    dbuser_arn,
    evaluate,
    wildcard_match,
)
from pgiam_tui.collect.events import ResolvedClusterLike
from pgiam_tui.collect.logparse import visible
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import AssumeRoleEvent, DbUser, Finding, Grant, IamMetrics, IamSnapshot, Severity

__all__ = ["FINDING_CODES", "ROLES_SQL", "IamMappingCollector", "RoleRow", "build_snapshot"]

log = logging.getLogger(__name__)

Fetch = Callable[[LiteralString, Sequence[Any] | None], Awaitable[list[tuple[Any, ...]]]]

FINDING_CODES = (
    "iam_auth_disabled",
    "orphan_db_user",
    "orphan_grant",
    "wildcard_grant",
    "wrong_resource_id",
    "unused_grant",
    "no_pg_monitor",
    "iam_unreadable",
)

#: Every role with its direct memberships; transitive closure is computed in Python (cheap, one round trip).
ROLES_SQL: LiteralString = """
SELECT r.rolname,
       r.rolcanlogin,
       r.rolsuper,
       r.rolcreaterole,
       r.rolbypassrls,
       COALESCE(ARRAY(SELECT g.rolname
                        FROM pg_catalog.pg_auth_members m
                        JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                       WHERE m.member = r.oid
                       ORDER BY g.rolname), '{}'::name[]) AS member_of
  FROM pg_catalog.pg_roles r
 ORDER BY r.rolname
"""

# RDS's own roles: never shown as users of the cluster.
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


def parse_roles(rows: Iterable[Sequence[Any]]) -> list[RoleRow]:
    """ROLES_SQL rows -> RoleRow (tolerant of arrays returned as lists or tuples)."""
    out = []
    for r in rows:
        out.append(
            RoleRow(
                str(r[0]), bool(r[1]), bool(r[2]), bool(r[3]), bool(r[4]), tuple(str(x) for x in r[5] or ())
            )
        )
    return out


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

    region: str
    account: str
    resource_id: str
    user: str


def _split_dbuser(pattern: str) -> _DbUserArn | None:
    # arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER
    parts = pattern.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "rds-db" or parts[5] != "dbuser":
        return None
    rid, sep, user = parts[6].partition("/")
    if not sep:
        return None
    return _DbUserArn(parts[3], parts[4], rid, user)


def _wild(text: str) -> bool:
    return "*" in text or "?" in text


@dataclass(frozen=True)
class _Context:
    """What build_snapshot needs about the cluster."""

    region: str
    account_id: str | None
    resource_id: str | None
    iam_auth_enabled: bool | None
    identifiers: frozenset[str]  # cluster / instance identifiers: a grant naming one of these is a mistake
    monitor_user: str
    kind: str
    cluster_label: str


def _fix_enable_iam(ctx: _Context) -> str:
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
    ctx: _Context,
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

    def add(sev: Severity, code: str, msg: str, fix: str, user: str | None = None) -> None:
        f = Finding(severity=sev, code=code, message=visible(msg), fix=visible(fix), user=user)
        findings.append(f)
        if user is not None:
            per_user.setdefault(user, []).append(f)

    if ctx.iam_auth_enabled is False:
        add(
            "critical",
            "iam_auth_disabled",
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

    readable = inventory is not None and ctx.account_id is not None and ctx.resource_id is not None
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
            if "rds_iam" in closure.get(r.name, ()) and r.can_login and not grants_by_user.get(r.name):
                arn = dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, r.name)
                add(
                    "warning",
                    "orphan_db_user",
                    f"{r.name} is in rds_iam (password login impossible) but no IAM principal of account "
                    f"{ctx.account_id} may rds-db:connect as it",
                    f"attach a policy allowing rds-db:connect on {arn} to the principal that should use it, "
                    f"or REVOKE rds_iam FROM {r.name} / DROP ROLE {r.name}",
                    r.name,
                )
        _unused_findings(grants_by_user, advice, unused_days, now, add)
    elif iam_error is not None:
        who = f"profile {iam_profile}" if iam_profile else "the cluster's profile"
        missing = iam_error.permission or iam_error.code
        add(
            "warning",
            "iam_unreadable",
            f"cannot read IAM with {who}: {iam_error}",
            f"allow {missing} to {who} (e.g. the SecurityAudit or IAMReadOnlyAccess managed policy), or set "
            "iam_profile in profiles.toml to a profile that may read IAM",
        )

    mon = by_name.get(ctx.monitor_user)
    if mon is not None and "pg_monitor" not in closure.get(mon.name, ()) and not mon.superuser:
        add(
            "warning",
            "no_pg_monitor",
            f"monitoring user {mon.name} is not a member of pg_monitor: other sessions' queries show as "
            "<insufficient privilege> and some statistics are hidden",
            f"GRANT pg_monitor TO {mon.name};",
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


_Add = Callable[[Severity, str, str, str, "str | None"], None]


def _grant_findings(
    ctx: _Context,
    statements: Sequence[tuple[str, MatchedStatement]],
    roles: Mapping[str, RoleRow],
    closure: Mapping[str, frozenset[str]],
    add: _Add,
) -> None:
    """orphan_grant, wildcard_grant, wrong_resource_id: one finding per (policy, resource pattern)."""
    assert ctx.account_id is not None and ctx.resource_id is not None
    by_pattern: dict[tuple[str, str], list[str]] = {}
    for principal, st in statements:
        if st.not_resource:
            continue
        by_pattern.setdefault((st.policy, st.resource_pattern), []).append(principal)

    users = sorted(roles)
    for (policy, pattern), principals in sorted(by_pattern.items()):
        who = ", ".join(sorted(set(principals)))
        parsed = _split_dbuser(pattern)
        if parsed is None:
            # "*" or "arn:aws:rds-db:*" style: matches every user of every cluster (often an admin policy)
            matched = [
                u
                for u in users
                if wildcard_match(pattern, dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, u))
            ]
            if matched:
                add(
                    "info",
                    "wildcard_grant",
                    f"policy {policy} ({who}) allows rds-db:connect on {pattern!r}: any user of any cluster",
                    "scope rds-db:connect to arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER",
                    None,
                )
            continue
        if not (wildcard_match(parsed.region, ctx.region) and wildcard_match(parsed.account, ctx.account_id)):
            continue  # another region or account: not about this cluster
        exact = f"arn:aws:rds-db:{ctx.region}:{ctx.account_id}:dbuser:{ctx.resource_id}/"
        if _wild(parsed.resource_id) or _wild(parsed.user):
            matched = [
                u
                for u in users
                if wildcard_match(pattern, dbuser_arn(ctx.region, ctx.account_id, ctx.resource_id, u))
            ]
            if matched:
                single = None if _wild(parsed.user) else parsed.user
                add(
                    "warning",
                    "wildcard_grant",
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
                    "orphan_grant",
                    f"policy {policy} ({who}) allows rds-db:connect as {parsed.user}, a user "
                    f"{ctx.cluster_label} does not have",
                    f"CREATE ROLE {parsed.user} LOGIN; GRANT rds_iam TO {parsed.user}; or remove {pattern} "
                    f"from {policy}",
                    None,
                )
            continue
        rid = parsed.resource_id
        if rid in ctx.identifiers or not rid.startswith(("cluster-", "db-")):
            add(
                "critical",
                "wrong_resource_id",
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
                    "unused_grant",
                    f"{g.principal_arn} may connect as {user} but has not used rds-db in {unused_days} days "
                    f"({when})",
                    f"revoke rds-db:connect from {g.principal_arn} (policy {g.policy_name}) if no longer "
                    "needed",
                    user,
                )


class IamMappingCollector:
    """IAM mapping of one cluster, refreshed round after round (the monitor keeps one per cluster).

        collector = IamMappingCollector(cluster_config)
        snap = await collector.collect(resolved, session, writer_connection.fetch, iam_session=iam_sess)

    - `resolved`: aws.discovery.ResolvedCluster (region, account_id, resource_id, iam_auth_enabled, ids).
    - `session`: boto3.Session of the cluster's profile: used for metrics and CloudTrail, and for the IAM
      read when no `iam_session` is given.
    - `fetch`: `async fetch(sql, params) -> list[tuple]` on the writer's InstanceConnection; one query per
      round. Its exceptions propagate (the cluster is then in error anyway).
    - `iam_session`: boto3.Session of `cfg.iam_profile` (a profile allowed to read IAM), or None.
    Returns model.IamSnapshot. AWS read problems become findings (`iam_unreadable`), never exceptions.
    """

    def __init__(
        self,
        cfg: ClusterConfig,
        *,
        iam_refresh_s: float = 300.0,
        metrics_refresh_s: float = 60.0,
        cloudtrail_refresh_s: float = 300.0,
        advisor_refresh_s: float = 6 * 3600.0,
        unused_days: int = 90,
        access_advisor: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.iam_refresh_s = iam_refresh_s
        self.metrics_refresh_s = metrics_refresh_s
        self.cloudtrail_refresh_s = cloudtrail_refresh_s
        self.advisor_refresh_s = advisor_refresh_s
        self.unused_days = unused_days
        self.access_advisor = access_advisor
        self._clock = clock
        self._inventory: IamInventory | None = None
        self._iam_error: IamReadError | None = None
        self._iam_at: float | None = None
        self._advice: dict[str, AccessAdvice] = {}
        self._advice_at: dict[str, float] = {}
        self._advisor_off = False
        self._metrics: tuple[IamMetrics, ...] = ()
        self._metrics_at: float | None = None
        self._trail: tuple[AssumeRoleEvent, ...] = ()
        self._trail_at: float | None = None
        self._notes: dict[str, Finding] = {}

    def invalidate(self) -> None:
        """Forget cached AWS reads (e.g. after a fault was injected or fixed): the next round reads again."""
        self._iam_at = self._metrics_at = self._trail_at = None

    def _due(self, at: float | None, every: float) -> bool:
        return at is None or self._clock() - at >= every

    def _read_iam(self, client: Any, account_id: str | None) -> None:
        try:
            self._inventory = read_inventory(client, account_id=account_id)
            self._iam_error = None
        except IamReadError as exc:
            self._inventory = None
            self._iam_error = exc
        except Exception as exc:  # network, credentials: report as unreadable, keep going
            self._inventory = None
            self._iam_error = IamReadError(
                visible(f"{type(exc).__name__}: {exc}"), code="Error", permission=None
            )
        self._iam_at = self._clock()

    def _read_advice(self, client: Any, arns: Iterable[str]) -> None:
        if self._advisor_off:
            return
        for arn in arns:
            if not self._due(self._advice_at.get(arn), self.advisor_refresh_s):
                continue
            try:
                self._advice[arn] = last_used_rds_db(client, arn)
            except IamReadError as exc:
                if exc.denied:
                    self._notes["advisor"] = Finding(
                        "info", "iam_unreadable", f"Access Advisor unavailable: {exc}",
                        f"allow {exc.permission} to see the last use of rds-db:connect (unused_grant)",
                    )  # fmt: skip
                    self._advisor_off = True
                    return
                log.debug("access advisor for %s: %s", arn, exc)
            except Exception as exc:  # e.g. an endpoint without Access Advisor: skip quietly
                log.debug("access advisor unavailable: %s", exc)
                self._advisor_off = True
                return
            self._advice_at[arn] = self._clock()

    def _read_metrics(self, client: Any, instance_ids: Sequence[str]) -> None:
        try:
            self._metrics = fetch_iam_metrics(client, instance_ids)
            self._notes.pop("metrics", None)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            self._notes["metrics"] = Finding(
                "info", "metrics_unreadable", f"IamDbAuthConnection* metrics unreadable: {code}",
                "allow cloudwatch:GetMetricData to the cluster's profile",
            )  # fmt: skip
        self._metrics_at = self._clock()

    def _read_trail(self, client: Any, role_arn: str) -> None:
        try:
            self._trail = lookup_assume_role_events(client, role_arn)
            self._notes.pop("cloudtrail", None)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            self._notes["cloudtrail"] = Finding(
                "info", "cloudtrail_unreadable", f"CloudTrail AssumeRole events unreadable: {code}",
                "allow cloudtrail:LookupEvents to the cluster's profile",
            )  # fmt: skip
        self._trail_at = self._clock()

    def _aws_round(self, resolved: ResolvedClusterLike, session: Any, iam_session: Any, region: str) -> None:
        """Blocking AWS reads due this round (runs in a worker thread)."""
        iam_sess = iam_session or session
        account = getattr(resolved, "account_id", None)
        if iam_sess is not None and self._due(self._iam_at, self.iam_refresh_s):
            self._read_iam(iam_sess.client("iam"), account)
            if self._inventory is not None and self.access_advisor:
                arns = [p.arn for p in self._inventory.principals if connect_grants(p.policies)]
                self._read_advice(iam_sess.client("iam"), arns)
        if session is not None and self._due(self._metrics_at, self.metrics_refresh_s):
            ids = [i.id for i in resolved.instances]
            if ids:
                self._read_metrics(session.client("cloudwatch", region_name=region), ids)
        role = self.cfg.monitor_role_arn
        if (
            self.cfg.cloudtrail
            and role
            and session is not None
            and self._due(self._trail_at, self.cloudtrail_refresh_s)
        ):
            self._read_trail(session.client("cloudtrail", region_name=region), role)

    def _context(self, resolved: ResolvedClusterLike) -> _Context:
        ids = {i.id for i in resolved.instances}
        for value in (self.cfg.cluster_id, self.cfg.instance_id, self.cfg.name):
            if value:
                ids.add(value)
        endpoint = getattr(resolved, "endpoint", None)
        if isinstance(endpoint, str) and endpoint:
            ids.add(endpoint.split(".", 1)[0])
        label = self.cfg.cluster_id or self.cfg.instance_id or self.cfg.name
        return _Context(
            region=resolved.region,
            account_id=getattr(resolved, "account_id", None) or self.cfg.account_id,
            resource_id=getattr(resolved, "resource_id", None) or self.cfg.resource_id,
            iam_auth_enabled=getattr(resolved, "iam_auth_enabled", None),
            identifiers=frozenset(ids),
            monitor_user=self.cfg.user,
            kind=resolved.kind,
            cluster_label=label,
        )

    async def collect(
        self,
        resolved: ResolvedClusterLike,
        session: Any,
        fetch: Fetch,
        *,
        iam_session: Any = None,
    ) -> IamSnapshot:
        """One round: the roles query, plus whatever AWS reads are due. See the class docstring."""
        ctx = self._context(resolved)
        aws = asyncio.to_thread(self._aws_round, resolved, session, iam_session, ctx.region)
        rows, _ = await asyncio.gather(fetch(ROLES_SQL, None), aws)
        return build_snapshot(
            ctx,
            parse_roles(rows),
            self._inventory,
            iam_error=self._iam_error,
            iam_profile=self.cfg.iam_profile,
            advice=self._advice,
            unused_days=self.unused_days,
            metrics=self._metrics,
            assume_role_events=self._trail,
            extra_findings=tuple(self._notes.values()),
        )
