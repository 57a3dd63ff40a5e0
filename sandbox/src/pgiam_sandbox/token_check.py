"""Verify an RDS IAM auth token the way RDS does, against moto running in this process.

The sandbox starts moto's ThreadedMotoServer in-process, so moto's backends (the state behind the HTTP API)
are importable here: the secret of an access key, STS sessions, IAM policies and the cluster's IAM flag are
read from them at the moment of each login — a fault injected through the ordinary AWS API (detach a policy,
disable IAM auth) takes effect on the next login, as on RDS.

The signature is recomputed with botocore's own SigV4 code (canonical request, string to sign, signing key);
we only supply the timestamp the client signed with instead of "now". The verdict carries the AWS error code
RDS would write to its `iam-db-auth-error` log, and a precise internal reason for the diagnostic log.
Neither ever contains the token or a secret.
"""

from __future__ import annotations

import hmac
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from pgiam_sandbox.iam_eval import CONNECT_ACTION, Request, dbuser_arn, evaluate_with_session
from pgiam_sandbox.moto_principals import MotoPrincipal, find_principal

__all__ = [
    "IAM_ERROR_STATUS",
    "IamErrorCode",
    "TokenTarget",
    "TokenVerifier",
    "Verdict",
]

IamErrorCode = Literal[
    "InvalidToken", "ExpiredToken", "NotAuthorized", "ThrottlingException", "InternalError"
]

#: HTTP-like status RDS prints next to each error code in the iam-db-auth-error log.
IAM_ERROR_STATUS: dict[str, int] = {
    "InvalidToken": 400,
    "ExpiredToken": 400,
    "NotAuthorized": 403,
    "ThrottlingException": 429,
    "InternalError": 500,
}

MAX_EXPIRES = 900  # RDS refuses tokens presigned for longer than 15 minutes
FUTURE_TOLERANCE = 300  # ... and tokens dated more than 5 minutes ahead of its clock
SERVICE = "rds-db"
_REQUIRED = ("Action", "DBUser", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
             "X-Amz-SignedHeaders", "X-Amz-Signature")  # fmt: skip


class SwitchesLike(Protocol):
    """The sandbox switches the verifier reads on every login (see pgiam_sandbox.Switches)."""

    clock_skew_seconds: float
    throttle_per_second: float | None


@dataclass(frozen=True)
class TokenTarget:
    """What one front door protects: tokens are checked against this.

    `hosts`: the endpoint names the listener answers for (the signed host must be one of them; when the
    client sent SNI, it must be that one). `cluster_id` is set for Aurora (the cluster's resource id and IAM
    flag count), else `instance_id` names the RDS for PostgreSQL instance (its DbiResourceId and flag count).
    `instance_id` is also the throttling unit (RDS limits new IAM connections per instance).
    """

    account_id: str
    region: str
    cluster_id: str | None
    instance_id: str
    hosts: tuple[str, ...]
    port: int = 5432


@dataclass(frozen=True)
class Verdict:
    """Outcome of one IAM login.

    - `ok`: the token is valid and the principal may connect.
    - `error_code`: the AWS code RDS logs in iam-db-auth-error; None when ok, and None when IAM auth is off on
      the cluster (RDS then writes no IAM line, only the PAM failure).
    - `reason`: precise, for the sandbox's diagnostic log; never the token.
    - `caller_arn`: the signing principal when the access key was known.
    """

    ok: bool
    error_code: IamErrorCode | None
    reason: str
    caller_arn: str | None = None
    iam_enabled: bool = True
    resource_arn: str | None = None

    @property
    def status_code(self) -> int | None:
        """400/403/429/500 as RDS prints it, or None."""
        return IAM_ERROR_STATUS.get(self.error_code) if self.error_code else None


class _Refused(Exception):
    def __init__(self, code: IamErrorCode | None, reason: str, caller_arn: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.caller_arn = caller_arn


class TokenVerifier:
    """Checks tokens for any number of front doors; thread-safe (the throttle window is locked).

    `switches` supplies clock skew and the throttling rate, read per login; `now` is injectable for tests.
    """

    def __init__(self, switches: SwitchesLike | None = None, now: Callable[[], float] = time.time) -> None:
        self._switches = switches
        self._now = now
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def for_target(self, target: TokenTarget) -> Callable[[str, str, str | None], Verdict]:
        """A `(token, user, sni_host) -> Verdict` callable bound to one front door, as FrontDoor expects."""

        def verify(token: str, user: str, sni_host: str | None = None) -> Verdict:
            return self.verify(token, user, target, sni_host)

        return verify

    def now(self) -> float:
        """The front door's clock: real time plus the sandbox's clock-skew switch."""
        skew = self._switches.clock_skew_seconds if self._switches is not None else 0.0
        return self._now() + float(skew or 0.0)

    def verify(self, token: str, user: str, target: TokenTarget, sni_host: str | None = None) -> Verdict:
        """Verify `token` presented as the password of `user` at `target` (see module doc)."""
        try:
            iam_enabled, resource_id = _cluster_state(target)
        except Exception as exc:  # moto state unreadable: RDS answers InternalError
            return Verdict(False, "InternalError", f"cannot read RDS state for {target.instance_id}: {exc!r}")
        if not iam_enabled:
            what = f"cluster {target.cluster_id}" if target.cluster_id else f"instance {target.instance_id}"
            return Verdict(
                False, None, f"IAM database authentication is disabled on {what}", iam_enabled=False
            )
        resource = dbuser_arn(target.region, target.account_id, resource_id, user)
        try:
            caller = self._check(token, user, target, sni_host, resource)
        except _Refused as ref:
            return Verdict(False, ref.code, ref.reason, ref.caller_arn, resource_arn=resource)
        except Exception as exc:  # a bug or moto hiccup must not look like a bad token
            return Verdict(
                False,
                "InternalError",
                f"internal error verifying token: {type(exc).__name__}",
                resource_arn=resource,
            )
        return Verdict(True, None, "token valid and rds-db:connect allowed", caller, resource_arn=resource)

    # -- steps ---------------------------------------------------------------------------------------------

    def _throttle(self, target: TokenTarget) -> None:
        rate = self._switches.throttle_per_second if self._switches is not None else None
        if rate is None:
            return
        now = self._now()  # the real clock (not skewed): a rate is about elapsed time
        with self._lock:
            window = self._recent.setdefault(target.instance_id, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= rate:
                raise _Refused(
                    "ThrottlingException",
                    f"more than {rate:g} new IAM connections per second on {target.instance_id}",
                )
            window.append(now)

    def _check(self, token: str, user: str, target: TokenTarget, sni_host: str | None, resource: str) -> str:
        self._throttle(target)
        host, port, params = _parse(token)
        if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            raise _Refused("InvalidToken", "unsupported X-Amz-Algorithm")
        if params["Action"] != "connect":
            raise _Refused("InvalidToken", f"Action is {_show(params['Action'])}, not connect")
        if params["X-Amz-SignedHeaders"].lower() != "host":
            raise _Refused("InvalidToken", "X-Amz-SignedHeaders is not 'host'")
        cred = params["X-Amz-Credential"].split("/")
        if len(cred) != 5 or cred[4] != "aws4_request":
            raise _Refused("InvalidToken", "malformed X-Amz-Credential")
        access_key, date, region, service, _ = cred
        stamp = params["X-Amz-Date"]
        try:
            signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise _Refused("InvalidToken", "malformed X-Amz-Date or X-Amz-Expires") from None
        if stamp[:8] != date:
            raise _Refused("InvalidToken", "credential scope date differs from X-Amz-Date")
        if service != SERVICE:
            raise _Refused("InvalidToken", f"signed for service {_show(service)}, not {SERVICE}")

        principal = find_principal(access_key, datetime.fromtimestamp(self.now(), UTC))
        if principal is None:
            raise _Refused("InvalidToken", f"unknown access key {access_key[:8]}…")
        if not principal.active:
            raise _Refused("InvalidToken", f"access key {access_key[:8]}… is inactive", principal.arn)
        expected = _signature(principal, access_key, host, port, params)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise _Refused(
                "InvalidToken", "signature does not match (wrong secret or altered token)", principal.arn
            )
        if principal.session_token is not None and not hmac.compare_digest(
            principal.session_token, params.get("X-Amz-Security-Token", "")
        ):
            raise _Refused(
                "InvalidToken", "missing or wrong X-Amz-Security-Token for STS credentials", principal.arn
            )

        now = self.now()
        if principal.expires_at is not None and principal.expires_at.timestamp() < now:
            raise _Refused("ExpiredToken", "the STS session credentials that signed the token have expired",
                           principal.arn)  # fmt: skip
        if not 0 < expires <= MAX_EXPIRES:
            raise _Refused("InvalidToken", f"X-Amz-Expires {expires} outside 1..{MAX_EXPIRES}", principal.arn)
        age = now - signed_at.timestamp()
        if age > expires:
            raise _Refused(
                "ExpiredToken", f"token expired {age - expires:.0f} s ago (signed {stamp})", principal.arn
            )
        if age < -FUTURE_TOLERANCE:
            raise _Refused(
                "InvalidToken", f"token signed {-age:.0f} s in the future ({stamp})", principal.arn
            )

        wanted_hosts = (sni_host,) if sni_host and sni_host in target.hosts else target.hosts
        if host.lower() not in {h.lower() for h in wanted_hosts}:
            want = " or ".join(wanted_hosts)
            raise _Refused("InvalidToken", f"token signed for host {_show(host)}, not {want}", principal.arn)
        if port != target.port:
            raise _Refused("InvalidToken", f"token signed for port {port}, not {target.port}", principal.arn)
        if region != target.region:
            raise _Refused("InvalidToken", f"token signed for region {_show(region)}, not {target.region}",
                           principal.arn)  # fmt: skip
        if params["DBUser"] != user:
            raise _Refused("InvalidToken", f"token is for DBUser {_show(params['DBUser'])}, login user is "
                           f"{_show(user)}", principal.arn)  # fmt: skip

        context = {**principal.context, "aws:RequestedRegion": region}
        request = Request(CONNECT_ACTION, resource, context)
        decision = evaluate_with_session(principal.policies, principal.session_policies, request)
        if not decision.allowed:
            if decision.explicit_deny:
                why = "an explicit Deny in " + ", ".join(sorted(decision.deny_policies))
            else:
                why = f"no policy of {len(principal.policies)} allows it"
            raise _Refused("NotAuthorized", f"{principal.arn} may not rds-db:connect on {resource}: {why}",
                           principal.arn)  # fmt: skip
        return principal.arn


def _show(value: str, limit: int = 80) -> str:
    """A value from the token for the diagnostic log: repr-quoted (control chars visible), length-capped."""
    return repr(value[:limit] + ("…" if len(value) > limit else ""))


def _parse(token: str) -> tuple[str, int, dict[str, str]]:
    """host, port and query parameters of a token, or InvalidToken."""
    if not token or len(token) > 8192 or any(ord(c) < 0x21 or ord(c) > 0x7E for c in token):
        raise _Refused(
            "InvalidToken", "token is empty, too long or has characters a presigned URL cannot have"
        )
    try:
        parts = urllib.parse.urlsplit("https://" + token)
        host = parts.hostname
        port = parts.port
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _Refused("InvalidToken", "token is not a presigned URL (host:port/?query)") from None
    if not host or port is None or parts.path not in ("/", ""):
        raise _Refused("InvalidToken", "token is not a presigned URL (host:port/?query)")
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise _Refused("InvalidToken", f"parameter {_show(key)} repeated")
        params[key] = value
    missing = [k for k in _REQUIRED if k not in params]
    if missing:
        raise _Refused("InvalidToken", "token lacks " + ", ".join(missing))
    return host, port, params


def _signature(
    principal: MotoPrincipal, access_key: str, host: str, port: int, params: dict[str, str]
) -> str:
    """The signature botocore computes for these parameters, the principal's secret and the token's date."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    region = params["X-Amz-Credential"].split("/")[2]
    signer = SigV4Auth(Credentials(access_key, principal.secret, principal.session_token), SERVICE, region)
    # Every query parameter except the signature is part of the canonical request, as AWS computes it.
    query = {k: v for k, v in params.items() if k != "X-Amz-Signature"}
    request = AWSRequest(method="GET", url=f"https://{host}:{port}/", params=query)
    request.context["timestamp"] = params["X-Amz-Date"]
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


# -- moto state ----------------------------------------------------------------------------------------------


def _cluster_state(target: TokenTarget) -> tuple[bool, str]:
    """(IAM auth enabled, resource id) as moto reports them now. For Aurora the cluster's values count."""
    from moto.rds.models import rds_backends

    backend = rds_backends[target.account_id][target.region]
    if target.cluster_id:
        cluster = backend.clusters[target.cluster_id]
        # moto 5.2 quirk: modify_db_cluster(EnableIAMDatabaseAuthentication=...) stores the new value in
        # `enable_iam_database_authentication` but leaves `iam_auth` (what describe reports) unchanged.
        # The latest request wins here, as on RDS with ApplyImmediately.
        flag = getattr(cluster, "enable_iam_database_authentication", None)
        enabled = cluster.iam_auth if flag is None else flag
        return bool(enabled), str(cluster.db_cluster_resource_id)
    instance = backend.databases[target.instance_id]
    return bool(instance.enable_iam_database_authentication), str(instance.dbi_resource_id)
