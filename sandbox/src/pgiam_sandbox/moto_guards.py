"""Make moto (5.2) honour the two STS rules the connection check must be able to diagnose.

moto accepts every AssumeRole (it never reads the role's trust policy nor the caller's permissions) and
accepts session credentials forever (it records their expiration but never checks it). The sandbox's
moto server runs in this process, so we wrap two moto methods, once per process:

- ``TokenResponse.assume_role`` into the sandbox's two accounts: the target role must exist, its trust
  policy must name the caller (its IAM user / role ARN, its account root, its account id, or ``*``), and,
  when the trust policy only names the account or the caller sits in another account, the caller's own
  policies must allow ``sts:AssumeRole`` on the role (no explicit Deny). Otherwise moto answers
  ``AccessDenied`` as AWS does. Roles in other accounts keep moto's permissive behaviour.
- ``BaseResponse._authenticate_and_authorize_normal_action`` (runs before every action of every service):
  a request signed with STS session credentials whose expiration has passed gets ``ExpiredToken``.

It also mends one RDS quirk: ``modify_db_cluster(EnableIAMDatabaseAuthentication=...)`` stores the new
value in an attribute moto never reports, so ``describe_db_clusters`` kept saying the old flag; the
product reads describe (as on AWS), so the wrapper makes ``iam_auth`` follow the modification.

The check is deliberately small: enough for the scenario's roles, not a full IAM policy engine.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

# The sandbox's accounts (fake_aws.DB_ACCOUNT, MGMT_ACCOUNT): AssumeRole into them is checked.
GUARDED_ACCOUNTS = frozenset({"111111111111", "222222222222"})

_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Install the guards into moto's classes (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.core.responses import BaseResponse
        from moto.rds.models import RDSBackend
        from moto.sts.responses import TokenResponse

        original_assume: Callable[[Any], Any] = TokenResponse.assume_role
        original_auth: Callable[[Any, str], None] = BaseResponse._authenticate_and_authorize_normal_action

        def assume_role(self: Any) -> Any:
            _check_assume_role(self.get_access_key(), self._get_param("RoleArn") or "")
            return original_assume(self)

        def authenticate(self: Any, resource: str = "*") -> None:
            original_auth(self, resource)
            _check_not_expired(self.get_access_key(), str(self.headers.get("Content-Type", "")))

        original_modify_cluster: Callable[[Any, dict[str, Any]], Any] = RDSBackend.modify_db_cluster

        def modify_db_cluster(self: Any, kwargs: dict[str, Any]) -> Any:
            flag = kwargs.get("enable_iam_database_authentication")
            answer = original_modify_cluster(self, kwargs)  # a copy of the stored cluster ("modifying")
            if flag is not None:
                answer.iam_auth = bool(flag)
                self.clusters[answer.db_cluster_identifier].iam_auth = bool(flag)
            return answer

        setattr(RDSBackend, "modify_db_cluster", modify_db_cluster)  # noqa: B010
        setattr(TokenResponse, "assume_role", assume_role)  # noqa: B010 (mypy forbids assigning methods)
        setattr(BaseResponse, "_authenticate_and_authorize_normal_action", authenticate)  # noqa: B010
        _installed = True


def _access_denied(message: str) -> Exception:
    from moto.core.exceptions import _RESTError

    class AccessDenied(_RESTError):
        code = 403

    return AccessDenied("AccessDenied", message)


def _expired_token(json_protocol: bool) -> Exception:
    from moto.core.exceptions import JsonRESTError, _RESTError

    message = "The security token included in the request is expired"
    cls = JsonRESTError if json_protocol else _RESTError

    class ExpiredToken(cls):  # type: ignore[valid-type,misc]
        code = 400

    # JSON-protocol services (logs, ...) read "__type"; query/XML ones (sts, iam, rds) read <Code>.
    return ExpiredToken("ExpiredTokenException" if json_protocol else "ExpiredToken", message)


def find_assumed_role(access_key_id: str) -> Any | None:
    """moto's AssumedRole record for STS session credentials, or None."""
    from moto.sts.models import sts_backends

    for _account, partitions in list(sts_backends.items()):
        backend = partitions.get("aws") if hasattr(partitions, "get") else None
        if backend is None:
            continue
        role = backend.get_assumed_role_from_access_key(access_key_id)
        if role is not None:
            return role
    return None


def _check_not_expired(access_key_id: str, content_type: str) -> None:
    if not access_key_id.startswith("ASIA"):
        return
    role = find_assumed_role(access_key_id)
    if role is None:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # moto keeps naive UTC datetimes
    expiration = role.expiration
    if expiration.tzinfo is not None:
        expiration = expiration.astimezone(dt.UTC).replace(tzinfo=None)
    if expiration <= now:
        raise _expired_token("json" in content_type)


def _caller(access_key_id: str) -> tuple[str, str, str, list[str]]:
    """(caller ARN, principal ARN as trust policies name it, account id, policy documents)."""
    from moto.iam.models import get_account_id_from, iam_backends

    role = find_assumed_role(access_key_id) if access_key_id.startswith("ASIA") else None
    if role is not None:
        account = role.account_id
        iam = iam_backends[account]["aws"]
        try:
            iam_role = iam.get_role_by_arn(role.role_arn)
        except Exception:  # the role was deleted after it was assumed
            return role.arn, role.role_arn, account, []
        docs = list(iam_role.policies.values()) + [
            _default_doc(p) for p in iam_role.managed_policies.values()
        ]
        return role.arn, role.role_arn, account, docs
    account = get_account_id_from(access_key_id)
    iam = iam_backends[account]["aws"]
    user = iam.get_user_from_access_key_id(access_key_id)
    if user is None:
        return f"arn:aws:iam::{account}:user/unknown", "", account, []
    docs = list(user.policies.values()) + [_default_doc(p) for p in user.managed_policies.values()]
    for group in iam.get_groups_for_user(user.name):
        docs += list(group.policies.values()) + [_default_doc(p) for p in group.managed_policies.values()]
    return user.arn, user.arn, account, docs


def _default_doc(policy: Any) -> str:
    for version in policy.versions:
        if version.is_default:
            return str(version.document)
    return "{}"


def _check_assume_role(access_key_id: str, role_arn: str) -> None:
    from moto.iam.models import iam_backends

    match = re.match(r"^arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)$", role_arn)
    if match and match.group(1) not in GUARDED_ACCOUNTS:
        return  # other accounts (other tests' own moto use) keep moto's permissive behaviour
    caller_arn, principal_arn, caller_account, caller_docs = _caller(access_key_id)
    denied = _access_denied(
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    if not match:
        raise denied
    target_account, role_name = match.groups()
    try:
        role = iam_backends[target_account]["aws"].get_role(role_name)
    except Exception:
        raise denied from None
    trust = _statements(role.assume_role_policy_document)
    names = {principal_arn, f"arn:aws:iam::{caller_account}:root", caller_account, "*"}
    trusted_by_name = False
    trusted_by_account = False
    for stmt in trust:
        if "sts:assumerole" not in {a.lower() for a in _as_list(stmt.get("Action"))}:
            continue
        principals = stmt.get("Principal", {})
        aws = _as_list(principals.get("AWS")) if isinstance(principals, dict) else _as_list(principals)
        hit = names.intersection(aws)
        if stmt.get("Effect") == "Deny" and hit:
            raise denied
        if stmt.get("Effect") == "Allow" and hit:
            if principal_arn in hit:
                trusted_by_name = True
            else:
                trusted_by_account = True
    if not (trusted_by_name or trusted_by_account):
        raise denied
    needs_identity_policy = (trusted_by_account and not trusted_by_name) or caller_account != target_account
    if needs_identity_policy and not _allows(caller_docs, "sts:AssumeRole", role_arn):
        raise denied


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    stmts = document.get("Statement", [])
    return [s for s in (stmts if isinstance(stmts, list) else [stmts]) if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, Iterable) else []


def _allows(docs: Iterable[str], action: str, resource: str) -> bool:
    """Whether the caller's policy documents allow ACTION on RESOURCE: our own evaluator, as the front door
    uses it (explicit Deny wins; a conditional grant does not count, conditions are not evaluated here)."""
    from pgiam_tui.aws.policy import NamedPolicy, PolicyDocumentError, evaluate, parse_document

    policies = []
    for i, doc in enumerate(docs):
        try:
            policies.append(NamedPolicy(f"caller-policy-{i}", None, parse_document(doc)))
        except PolicyDocumentError:
            continue  # a document moto accepted but that is not JSON grants nothing
    decision = evaluate(policies, action, resource)
    return decision.allowed and not decision.explicit_deny
