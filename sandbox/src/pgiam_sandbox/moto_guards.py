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

Trust and permissions are decided by the stand-in's own evaluator (pgiam_sandbox.iam_eval), written from
AWS's documentation; the caller and its policies are read from moto at the moment of the call.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from typing import Any

from pgiam_sandbox.iam_eval import load_document, trust_allows
from pgiam_sandbox.moto_principals import find_assumed_role, find_principal

__all__ = ["GUARDED_ACCOUNTS", "find_assumed_role", "install"]

_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")

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


def _check_assume_role(access_key_id: str, role_arn: str) -> None:
    """AccessDenied unless the role's trust policy and the caller's own policies let it assume ROLE_ARN."""
    from moto.iam.models import iam_backends

    match = _ROLE_ARN.match(role_arn)
    if match and match.group(2) not in GUARDED_ACCOUNTS:
        return  # other accounts (other tests' own moto use) keep moto's permissive behaviour
    caller = find_principal(access_key_id)
    caller_arn = caller.arn if caller is not None else "an unknown principal"
    denied = _access_denied(
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    if not match or caller is None:
        raise denied
    partition, target_account, role_name = match.groups()
    try:
        role = iam_backends[target_account][partition].get_role(role_name)
    except Exception:
        raise denied from None
    trust = load_document(role.assume_role_policy_document)
    if trust is None:
        raise denied
    outcome = trust_allows(
        trust, role_arn, caller.caller, caller.policies, caller.context, session=caller.session_policies
    )
    if not outcome.allowed:
        raise denied
