"""Who owns an access key, read from moto's backends at the moment of the request (every partition).

The sandbox runs moto's server in this process, so the IAM user or assumed-role session behind an access
key, its secret, its policies (managed, inline, group, session) and its tags are read straight from moto's
state on every login or AssumeRole: a policy attached or detached through the ordinary AWS API counts for
the very next request. No caching here, on purpose.

The request context the stand-in's IAM evaluator reads (`aws:PrincipalArn`, `aws:username`, tags, ...)
is built here too, as AWS documents the global condition keys:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgiam_sandbox.iam_eval import Caller, Policy, load_document

__all__ = ["MotoPrincipal", "find_assumed_role", "find_principal", "iam_backends_of", "managed_and_inline"]


@dataclass(frozen=True)
class MotoPrincipal:
    """An IAM user or an assumed-role session as moto holds it now."""

    arn: str  # what STS / the iam-db-auth-error log print as the caller
    caller: Caller  # for trust policies
    secret: str = field(repr=False)
    session_token: str | None = field(repr=False)
    policies: tuple[Policy, ...]
    session_policies: tuple[Policy, ...]  # an AssumeRole session policy narrows what the role grants
    expires_at: datetime | None
    active: bool
    context: dict[str, str | list[str]]


def iam_backends_of(account: Any) -> Iterator[Any]:
    """The IAM backends of one moto account, one per partition that has been used (aws, aws-cn, ...)."""
    for _partition, backend in list(account.items()):
        yield backend


def find_assumed_role(access_key_id: str) -> Any | None:
    """moto's AssumedRole record for STS session credentials, in any account and partition, or None."""
    from moto.sts.models import sts_backends

    for _account, partitions in list(sts_backends.items()):
        for _partition, backend in list(partitions.items()):
            role = backend.get_assumed_role_from_access_key(access_key_id)
            if role is not None:
                return role
    return None


def _default_document(policy: Any) -> Any:
    return next((v.document for v in policy.versions if v.version_id == policy.default_version_id), None)


def managed_and_inline(owner: str, managed: Iterable[Any], inline: dict[str, Any]) -> list[Policy]:
    """The policies attached to one user, group or role (copies: moto's threads may change them meanwhile)."""
    out: list[Policy] = []
    for pol in list(managed):
        doc = load_document(_default_document(pol) or "")
        if doc is not None:
            out.append(Policy(pol.name, doc))
    for name, text in list(inline.items()):
        doc = load_document(text)
        if doc is not None:  # moto validated it on the way in; an unreadable one grants nothing
            out.append(Policy(f"{owner}/{name}", doc))
    return out


def _tags(pairs: Iterable[dict[str, str]]) -> dict[str, str | list[str]]:
    return {f"aws:PrincipalTag/{t['Key']}": t["Value"] for t in pairs if "Key" in t and "Value" in t}


def _base_context(arn: str, account: str, kind: str, now: datetime) -> dict[str, str | list[str]]:
    return {
        "aws:PrincipalArn": arn,
        "aws:PrincipalAccount": account,
        "aws:PrincipalType": kind,
        "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now.timestamp())),
    }


def find_principal(access_key: str, now: datetime | None = None) -> MotoPrincipal | None:
    """The IAM user or assumed-role session owning ACCESS_KEY, with secret, policies and context."""
    from moto.iam.models import iam_backends

    moment = now or datetime.now(UTC)
    for account_id, account in list(iam_backends.items()):
        for iam in iam_backends_of(account):
            key = iam.access_keys.get(access_key)
            if key is not None:
                return (
                    _role_session(iam, key, account_id, moment)
                    if key.role_arn
                    else _user(iam, key, account_id, moment)
                )
    return None


def _role_session(iam: Any, key: Any, account_id: str, now: datetime) -> MotoPrincipal | None:
    session = find_assumed_role(key.access_key_id)
    if session is None:
        return None
    try:
        role = iam.get_role_by_arn(key.role_arn)
    except Exception:
        return None  # the role was deleted: its sessions are worthless
    policies = managed_and_inline(f"role/{role.name}", role.managed_policies.values(), role.policies)
    session_doc = load_document(session.policy) if session.policy else None
    context = _base_context(role.arn, account_id, "AssumedRole", now)
    context["aws:userid"] = f"{role.id}:{session.session_name}"
    context.update(_tags(role.tags or []))
    return MotoPrincipal(
        arn=session.arn,
        caller=Caller(session.arn, (role.arn, session.arn), account_id),
        secret=key.secret_access_key,
        session_token=session.session_token,
        policies=tuple(policies),
        session_policies=(Policy("session-policy", session_doc),) if session_doc is not None else (),
        expires_at=session.expiration.replace(tzinfo=UTC),
        active=key.status == "Active",
        context=context,
    )


def _user(iam: Any, key: Any, account_id: str, now: datetime) -> MotoPrincipal | None:
    if key.user_name is None:
        return None
    user = iam.get_user(key.user_name)
    policies = managed_and_inline(f"user/{user.name}", user.managed_policies.values(), user.policies)
    for group in iam.get_groups_for_user(user.name):
        policies += managed_and_inline(f"group/{group.name}", group.managed_policies.values(), group.policies)
    context = _base_context(user.arn, account_id, "User", now)
    context["aws:username"] = user.name
    context["aws:userid"] = user.id
    with contextlib.suppress(Exception):  # tags are extra context; a moto without them must not refuse login
        context.update(_tags(iam.list_user_tags(user.name)))
    return MotoPrincipal(
        arn=user.arn,
        caller=Caller(user.arn, (user.arn,), account_id),
        secret=key.secret_access_key,
        session_token=None,
        policies=tuple(policies),
        session_policies=(),
        expires_at=None,
        active=key.status == "Active",
        context=context,
    )
