"""IAM mapping of one cluster: database roles (rds_iam, memberships) joined with who may connect as them.

Database side: one query over pg_roles / pg_auth_members (memberships resolved transitively here, so a user
that gets rds_iam or pg_monitor through another role counts). AWS side: the cluster's IAM flag and resource
id from discovery, and, when IAM can be read (the cluster's `iam_profile`, else its own profile),
every principal's identity policies evaluated by `aws.policy` for `rds-db:connect` on
`arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER`. Drift between the two sides becomes findings
with stable codes (see FINDING_CODES) and a fix text.

The expensive reads (IAM inventory, Access Advisor, metrics, CloudTrail) are cached in the collector and
refreshed on their own, slower cadence; the database query runs every round.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, LiteralString

from pgiam_tui.aws.cloudtrail import lookup_assume_role_events
from pgiam_tui.aws.errors import aws_error_code, aws_read_fix
from pgiam_tui.aws.iam_read import AccessAdvice, IamInventory, IamReadError, last_used_rds_db, read_inventory
from pgiam_tui.aws.metrics import fetch_iam_metrics
from pgiam_tui.aws.policy import (
    connect_grants,
)
from pgiam_tui.aws.session import cached_client
from pgiam_tui.collect.aws_threads import run_side_thread
from pgiam_tui.collect.events import ResolvedClusterLike
from pgiam_tui.collect.iam_findings import FINDING_CODES, MappingContext, RoleRow, build_snapshot
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import AssumeRoleEvent, Finding, IamMetrics, IamSnapshot
from pgiam_tui.vocabulary import FindingCode

__all__ = ["FINDING_CODES", "ROLES_SQL", "IamMappingCollector", "RoleRow", "build_snapshot", "parse_roles"]

log = logging.getLogger(__name__)

Fetch = Callable[[LiteralString, Sequence[Any] | None], Awaitable[list[tuple[Any, ...]]]]

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

    Cadence: the roles query every call; IAM inventory every `iam_refresh_s`, metrics every
    `metrics_refresh_s`, CloudTrail (cfg.cloudtrail; role = cfg.monitor_role_arn or the session's assumed
    role) every `cloudtrail_refresh_s`. Access Advisor (one job per principal that may connect somewhere,
    refreshed every `advisor_refresh_s`) runs in the background; a round waits for it at most
    `advisor_wait_s`, later rounds show what it found. `invalidate()` forces fresh AWS reads next round.
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
        advisor_wait_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.iam_refresh_s = iam_refresh_s
        self.metrics_refresh_s = metrics_refresh_s
        self.cloudtrail_refresh_s = cloudtrail_refresh_s
        self.advisor_refresh_s = advisor_refresh_s
        self.unused_days = unused_days
        self.access_advisor = access_advisor
        self.advisor_wait_s = advisor_wait_s
        self._advisor: concurrent.futures.Future[None] | None = None
        self._advisor_client: Any = None
        self._member_resource_ids: frozenset[str] = frozenset()
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
        self._iam_session: Any = None

    def invalidate(self) -> None:
        """Forget cached AWS reads (e.g. after a fault was injected or fixed): the next round reads again."""
        self._iam_at = self._metrics_at = self._trail_at = None

    def _due(self, at: float | None, every: float) -> bool:
        return at is None or self._clock() - at >= every

    def _own_iam_session(self) -> Any:
        """A session for cfg.iam_profile when the caller passed none (made once, in the worker thread)."""
        if not self.cfg.iam_profile:
            return None
        if self._iam_session is None:
            from pgiam_tui.aws.session import SessionFactory

            try:
                self._iam_session = SessionFactory().session(self.cfg.iam_profile)
            except Exception as exc:  # unknown profile etc.: reported as iam_unreadable, retried next refresh
                self._iam_error = IamReadError(
                    f"profile {self.cfg.iam_profile}: {exc}", code="Profile", permission=None
                )
                return None
        return self._iam_session

    def _read_iam(self, client: Any) -> None:
        try:
            # the account is taken from the principals' ARNs: the profile may belong to another account
            self._inventory = read_inventory(client)
            self._iam_error = None
        except IamReadError as exc:
            self._inventory = None
            self._iam_error = exc
        except Exception as exc:  # network, credentials: report as unreadable, keep going
            self._inventory = None
            self._iam_error = IamReadError(
                f"{type(exc).__name__}: {exc}", code="Error", permission=None, cause=exc
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
                        "info", FindingCode.IAM_UNREADABLE, f"Access Advisor unavailable: {exc}",
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
            code = aws_error_code(exc) or type(exc).__name__
            self._notes["metrics"] = Finding(
                "info", FindingCode.METRICS_UNREADABLE, f"IamDbAuthConnection* metrics unreadable: {code}",
                aws_read_fix(exc, "allow cloudwatch:GetMetricData to the cluster's profile"),
            )  # fmt: skip
        self._metrics_at = self._clock()

    def _read_trail(self, client: Any, role_arn: str) -> None:
        try:
            self._trail = lookup_assume_role_events(client, role_arn)
            self._notes.pop("cloudtrail", None)
        except Exception as exc:
            code = aws_error_code(exc) or type(exc).__name__
            self._notes["cloudtrail"] = Finding(
                "info", FindingCode.CLOUDTRAIL_UNREADABLE, f"CloudTrail AssumeRole events unreadable: {code}",
                aws_read_fix(exc, "allow cloudtrail:LookupEvents to the cluster's profile"),
            )  # fmt: skip
        self._trail_at = self._clock()

    def _aws_round(self, resolved: ResolvedClusterLike, session: Any, iam_session: Any, region: str) -> None:
        """Blocking IAM reads due this round (runs in a worker thread)."""
        iam_due = self._due(self._iam_at, self.iam_refresh_s)
        if iam_session is None and self.cfg.iam_profile and iam_due:
            iam_session = self._own_iam_session()
            if iam_session is None:  # the profile itself is the problem: say so, do not try another one
                self._inventory, self._iam_at = None, self._clock()
                iam_due = False
        iam_sess = iam_session or session
        if session is not None and iam_due and resolved.kind == "aurora" and self.cfg.cluster_id:
            self._member_resource_ids = self._read_member_ids(cached_client(session, "rds", region))
        if iam_sess is not None and iam_due:
            # clients are thread-safe (sessions are not): the advisor thread reuses this one
            self._advisor_client = cached_client(iam_sess, "iam", None)
            self._read_iam(self._advisor_client)

    def _session_reads(self, resolved: ResolvedClusterLike, session: Any, region: str) -> None:
        """Blocking metric and CloudTrail reads due this round (in a worker thread beside the IAM reads: they
        share nothing with them, and a new console or `snapshot` waits for the longer of the two only)."""
        if session is not None and self._due(self._metrics_at, self.metrics_refresh_s):
            ids = [i.id for i in resolved.instances]
            if ids:
                self._read_metrics(cached_client(session, "cloudwatch", region), ids)
        if (
            self.cfg.cloudtrail
            and session is not None
            and self._due(self._trail_at, self.cloudtrail_refresh_s)
        ):
            role = self.cfg.monitor_role_arn or self._role_of(session)
            if role:
                self._read_trail(cached_client(session, "cloudtrail", region), role)
            else:
                self._trail_at = self._clock()

    def _role_of(self, session: Any) -> str | None:
        """The role the cluster's session has assumed (the monitoring role), via sts get-caller-identity."""
        try:
            arn = str(cached_client(session, "sts", None).get_caller_identity()["Arn"])
        except Exception as exc:
            log.debug("caller identity unavailable: %s", exc)
            return None
        # arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION -> arn:PARTITION:iam::ACCOUNT:role/NAME
        parts = arn.split(":")
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            name = parts[5].split("/")[1]
            return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
        return None

    def _read_member_ids(self, rds: Any) -> frozenset[str]:
        """The members' own DbiResourceIds: a grant naming one of them instead of the cluster's is wrong."""
        try:
            resp = rds.describe_db_instances(
                Filters=[{"Name": "db-cluster-id", "Values": [self.cfg.cluster_id]}]
            )
        except Exception as exc:  # only sharpens wrong_resource_id; the mapping works without it
            log.debug("members of %s: %s", self.cfg.cluster_id, exc)
            return self._member_resource_ids
        return frozenset(
            str(i["DbiResourceId"]) for i in resp.get("DBInstances", []) if i.get("DbiResourceId")
        )

    def _context(self, resolved: ResolvedClusterLike) -> MappingContext:
        ids = {i.id for i in resolved.instances} | set(self._member_resource_ids)
        for value in (self.cfg.cluster_id, self.cfg.instance_id, self.cfg.name):
            if value:
                ids.add(value)
        endpoint = getattr(resolved, "endpoint", None)
        if isinstance(endpoint, str) and endpoint:
            ids.add(endpoint.split(".", 1)[0])
        label = self.cfg.cluster_id or self.cfg.instance_id or self.cfg.name
        return MappingContext(
            region=resolved.region,
            account_id=getattr(resolved, "account_id", None) or self.cfg.account_id,
            resource_id=getattr(resolved, "resource_id", None) or self.cfg.resource_id,
            iam_auth_enabled=getattr(resolved, "iam_auth_enabled", None),
            identifiers=frozenset(ids),
            monitor_user=self.cfg.user,
            kind=resolved.kind,
            cluster_label=label,
        )

    def _start_advisor(self, client: Any, arns: list[str]) -> concurrent.futures.Future[None]:
        # A daemon thread, not the event loop's executor: asyncio.run() waits for executor threads at exit,
        # and a one-shot `snapshot` must not wait for Access Advisor jobs it no longer needs.
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self._read_advice(client, arns)
                done.set_result(None)
            except BaseException as exc:  # reported through the future, never lost in the thread
                done.set_exception(exc)

        threading.Thread(target=run, name="access-advisor", daemon=True).start()
        return done

    def _advisor_due(self) -> list[str]:
        """Principals able to rds-db:connect somewhere whose Access Advisor answer is missing or old."""
        if not self.access_advisor or self._advisor_off or self._inventory is None:
            return []
        return [
            p.arn
            for p in self._inventory.principals
            if connect_grants(p.policies) and self._due(self._advice_at.get(p.arn), self.advisor_refresh_s)
        ]

    async def collect(
        self,
        resolved: ResolvedClusterLike,
        session: Any,
        fetch: Fetch,
        *,
        iam_session: Any = None,
    ) -> IamSnapshot:
        """One round: the roles query, plus whatever AWS reads are due. See the class docstring."""
        iam = run_side_thread(self._aws_round, resolved, session, iam_session, resolved.region)
        others = run_side_thread(self._session_reads, resolved, session, resolved.region)
        rows, _, _ = await asyncio.gather(fetch(ROLES_SQL, None), iam, others)
        ctx = self._context(resolved)
        # Access Advisor is slow (a job per principal, polled): it runs in the background and this round waits
        # for it only briefly; what it finds later shows in later rounds (unused_grant findings).
        arns = self._advisor_due()
        if arns and self._advisor_client is not None and (self._advisor is None or self._advisor.done()):
            self._advisor = self._start_advisor(self._advisor_client, arns)
        if self._advisor is not None and not self._advisor.done() and self.advisor_wait_s > 0:
            await asyncio.wait({asyncio.wrap_future(self._advisor)}, timeout=self.advisor_wait_s)
        return build_snapshot(
            ctx,
            parse_roles(rows),
            self._inventory,
            iam_error=self._iam_error,
            iam_profile=self.cfg.iam_profile,
            advice=dict(self._advice),
            unused_days=self.unused_days,
            metrics=self._metrics,
            assume_role_events=self._trail,
            extra_findings=tuple(self._notes.values()),
        )
