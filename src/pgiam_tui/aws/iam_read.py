"""Read an account's IAM principals and their identity policies, and Access Advisor's last use of rds-db.

`read_inventory(iam)` makes one paginated `get_account_authorization_details` walk (users with their groups'
policies, roles, customer managed policies) and returns, per principal, the `NamedPolicy` list the evaluator
in `aws.policy` needs. AWS managed policies attached to someone are fetched one by one (`get_policy` +
`get_policy_version`, cached): asking for all of them would download a thousand documents every time.

What is *not* modelled (so a decision here can be more generous than AWS's): permission boundaries, service
control policies, session policies and resource-based policies. The IAM pane says so.

`last_used_rds_db(iam, arn)` asks Access Advisor when the principal last authenticated to the `rds-db`
service (`generate_service_last_accessed_details` + polling `get_service_last_accessed_details`).

Everything here is blocking boto3: callers run it in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pgiam_tui.aws.errors import ACCESS_DENIED_CODES
from pgiam_tui.aws.policy import NamedPolicy, PolicyDocumentError, parse_document
from pgiam_tui.errors import PgiamError

__all__ = [
    "AccessAdvice",
    "IamInventory",
    "IamReadError",
    "Principal",
    "last_used_rds_db",
    "read_inventory",
]


class IamReadError(PgiamError):
    """IAM could not be read. `code` is AWS's error code, `permission` the IAM action that was refused,
    `cause` the exception the read failed with (for aws_read_fix: a timeout is no missing permission)."""

    default_step: ClassVar[str] = "iam"

    def __init__(
        self, message: str, *, code: str, permission: str | None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permission = permission
        self.cause = cause

    @property
    def denied(self) -> bool:
        """True when the profile lacks the permission (as opposed to throttling or a network problem)."""
        return self.code in ACCESS_DENIED_CODES


@dataclass(frozen=True)
class Principal:
    """An IAM user or role with every identity policy that applies to it (a user's groups' included)."""

    arn: str
    kind: Literal["user", "role"]
    name: str
    policies: tuple[NamedPolicy, ...]


@dataclass(frozen=True)
class IamInventory:
    """The principals of one account as read at `read_at`."""

    account_id: str | None
    principals: tuple[Principal, ...]
    read_at: datetime
    unreadable_policies: tuple[str, ...] = ()  # managed policies attached but not readable (names)


@dataclass(frozen=True)
class AccessAdvice:
    """Access Advisor on `rds-db` for one principal (`last_used` None: not used in the tracking period)."""

    principal_arn: str
    last_used: datetime | None
    tracked_since: datetime | None = None


def _error(exc: BaseException, permission: str) -> IamReadError | None:
    resp = getattr(exc, "response", None)
    if not isinstance(resp, dict):
        return None
    err = resp.get("Error", {})
    code = str(err.get("Code", "Unknown"))
    msg = str(err.get("Message", "")).strip()
    text = f"{permission} failed: {code}" + (f" ({msg})" if msg else "")
    denied = code in ACCESS_DENIED_CODES
    return IamReadError(text, code=code, permission=permission if denied else None, cause=exc)


def _doc(raw: Any) -> Mapping[str, Any] | None:
    try:
        return parse_document(raw)
    except PolicyDocumentError:
        return None


def _default_version(policy: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for version in policy.get("PolicyVersionList", []) or []:
        if version.get("IsDefaultVersion"):
            return _doc(version.get("Document"))
    return None


def _inline(kind: str, owner: str, items: Iterable[Mapping[str, Any]], name_key: str) -> list[NamedPolicy]:
    out = []
    for item in items:
        doc = _doc(item.get("PolicyDocument"))
        if doc is not None:
            out.append(NamedPolicy(name=f"{kind}/{owner}/{item.get(name_key, '?')}", arn=None, document=doc))
    return out


def read_inventory(iam: Any, *, account_id: str | None = None) -> IamInventory:
    """Every IAM user and role of the account with its identity policies. Raises IamReadError."""
    users: list[Mapping[str, Any]] = []
    roles: list[Mapping[str, Any]] = []
    groups: dict[str, Mapping[str, Any]] = {}
    managed: dict[str, tuple[str, Mapping[str, Any]]] = {}
    try:
        paginator = iam.get_paginator("get_account_authorization_details")
        for page in paginator.paginate(Filter=["User", "Role", "Group", "LocalManagedPolicy"]):
            users.extend(page.get("UserDetailList", []))
            roles.extend(page.get("RoleDetailList", []))
            for g in page.get("GroupDetailList", []):
                groups[str(g.get("GroupName"))] = g
            for p in page.get("Policies", []):
                doc = _default_version(p)
                if doc is not None:
                    arn = str(p.get("Arn"))
                    # (some API implementations omit the name: fall back to the ARN's last part)
                    managed[arn] = (str(p.get("PolicyName") or arn.rsplit("/", 1)[-1]), doc)
    except Exception as exc:
        err = _error(exc, "iam:GetAccountAuthorizationDetails")
        if err is None:
            raise
        raise err from None

    unreadable: list[str] = []

    def attached(items: Iterable[Mapping[str, Any]]) -> list[NamedPolicy]:
        out = []
        for item in items:
            arn = str(item.get("PolicyArn"))
            if arn not in managed:
                fetched = _fetch_managed(iam, arn)
                if fetched is None:
                    unreadable.append(str(item.get("PolicyName", arn)))
                    continue
                managed[arn] = fetched
            name, doc = managed[arn]
            out.append(NamedPolicy(name=name, arn=arn, document=doc))
        return out

    def group_policies(name: str) -> list[NamedPolicy]:
        g = groups.get(name)
        if g is None:
            return []
        return _inline("group", name, g.get("GroupPolicyList", []), "PolicyName") + attached(
            g.get("AttachedManagedPolicies", [])
        )

    principals: list[Principal] = []
    for u in users:
        name = str(u.get("UserName"))
        pols = _inline("user", name, u.get("UserPolicyList", []), "PolicyName")
        pols += attached(u.get("AttachedManagedPolicies", []))
        for gname in u.get("GroupList", []):
            pols += group_policies(str(gname))
        principals.append(Principal(str(u.get("Arn")), "user", name, tuple(pols)))
    for r in roles:
        name = str(r.get("RoleName"))
        pols = _inline("role", name, r.get("RolePolicyList", []), "PolicyName")
        pols += attached(r.get("AttachedManagedPolicies", []))
        principals.append(Principal(str(r.get("Arn")), "role", name, tuple(pols)))
    if account_id is None and principals:
        parts = principals[0].arn.split(":")
        account_id = parts[4] if len(parts) > 4 else None
    return IamInventory(account_id, tuple(principals), datetime.now(UTC), tuple(sorted(set(unreadable))))


_AWS_MANAGED_CACHE: dict[str, tuple[str, Mapping[str, Any]]] = {}


def _fetch_managed(iam: Any, arn: str) -> tuple[str, Mapping[str, Any]] | None:
    """An AWS managed policy's default version (cached for the process: AWS changes them rarely)."""
    hit = _AWS_MANAGED_CACHE.get(arn)
    if hit is not None:
        return hit
    try:
        pol = iam.get_policy(PolicyArn=arn)["Policy"]
        ver = iam.get_policy_version(PolicyArn=arn, VersionId=pol["DefaultVersionId"])["PolicyVersion"]
    except Exception as exc:
        if _error(exc, "iam:GetPolicy") is None:
            raise
        return None
    doc = _doc(ver.get("Document"))
    if doc is None:
        return None
    value = (str(pol.get("PolicyName", arn)), doc)
    if ":aws:policy/" in arn:  # only AWS managed ones are safe to keep across accounts and reads
        _AWS_MANAGED_CACHE[arn] = value
    return value


def last_used_rds_db(
    iam: Any,
    principal_arn: str,
    *,
    max_polls: int = 20,
    poll_interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> AccessAdvice:
    """When `principal_arn` last authenticated to rds-db (Access Advisor). Raises IamReadError.

    Access Advisor works on jobs: generate, then poll until COMPLETED (usually a second or two). A job still
    running after `max_polls` polls raises IamReadError with code "Timeout".
    """
    try:
        job = iam.generate_service_last_accessed_details(Arn=principal_arn)["JobId"]
    except Exception as exc:
        err = _error(exc, "iam:GenerateServiceLastAccessedDetails")
        if err is None:
            raise
        raise err from None
    for attempt in range(max_polls):
        try:
            resp = iam.get_service_last_accessed_details(JobId=job)
        except Exception as exc:
            err = _error(exc, "iam:GetServiceLastAccessedDetails")
            if err is None:
                raise
            raise err from None
        status = resp.get("JobStatus")
        if status == "COMPLETED":
            for svc in resp.get("ServicesLastAccessed", []):
                if svc.get("ServiceNamespace") == "rds-db":
                    return AccessAdvice(principal_arn, _aware(svc.get("LastAuthenticated")))
            return AccessAdvice(principal_arn, None)
        if status == "FAILED":
            msg = (resp.get("Error") or {}).get("Message", "job failed")
            raise IamReadError(f"Access Advisor: {msg}", code="JobFailed", permission=None)
        if attempt < max_polls - 1:
            sleep(poll_interval_s)
    raise IamReadError("Access Advisor: job did not complete in time", code="Timeout", permission=None)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None
