"""Steps before the network: config, credentials (and the clock against AWS's), discovery and the token.

boto3 calls are blocking: each runs in a worker thread. A step returns False when nothing after it can run.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from pgiam_tui.aws.credential_failure import credential_failure
from pgiam_tui.aws.endpoints import RDS_CA_BUNDLE_URL
from pgiam_tui.aws.errors import AwsCredentialError, DiscoveryError, classify_aws_error, is_timeout
from pgiam_tui.diagnose.causes import Diagnosis
from pgiam_tui.diagnose.context import SKEW_LIMIT_S, CheckContext
from pgiam_tui.diagnose.probe import is_ip
from pgiam_tui.diagnose.result import StepBuilder
from pgiam_tui.fixquote import shell_word
from pgiam_tui.textsafe import clip
from pgiam_tui.vocabulary import CheckCause

if TYPE_CHECKING:
    from pgiam_tui.aws.discovery import ResolvedCluster

_VALID_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# the kind of a credentials failure (aws/errors.py) -> the cause it shows
_CREDENTIAL_CAUSES: dict[str, CheckCause] = {
    "unknown_profile": CheckCause.UNKNOWN_PROFILE,
    "sso_expired": CheckCause.SSO_EXPIRED,
    "imds_unreachable": CheckCause.IMDS_UNREACHABLE,
    "assume_role_denied": CheckCause.ASSUME_ROLE_DENIED,
    "expired": CheckCause.CREDENTIALS_EXPIRED,
    "no_credentials": CheckCause.NO_CREDENTIALS,
    "other": CheckCause.AWS_ERROR,
}


def needs_aws(ctx: CheckContext) -> bool:
    """Whether AWS must be asked at all (IAM tokens, or discovery of the endpoint)."""
    cfg = ctx.cfg
    return cfg.auth == "iam" or cfg.cluster_id is not None or cfg.instance_id is not None


async def step_config(ctx: CheckContext, b: StepBuilder) -> bool:
    """What the config asks for, and anything in it that cannot work."""
    cfg = ctx.cfg
    if cfg.cluster_id:
        target = f"Aurora cluster {cfg.cluster_id}"
    elif cfg.instance_id:
        target = f"RDS instance {cfg.instance_id}"
    elif cfg.endpoint:
        target = f"endpoint {cfg.endpoint}:{cfg.port}"
    else:
        target = "no cluster_id, instance_id or endpoint"
    parts = [
        target,
        f"profile {cfg.profile or '(default chain)'}",
        f"region {cfg.region or '(from profile)'}",
        f"user {cfg.user}",
        f"database {cfg.database}",
        f"auth {cfg.auth}",
        f"sslmode {cfg.sslmode}",
    ]
    if cfg.sslrootcert:
        parts.append(f"sslrootcert {cfg.sslrootcert}")
    if cfg.hostaddr:
        parts.append(f"tunnel {cfg.hostaddr}:{cfg.local_port or cfg.port}")
    if cfg.iam_profile:
        parts.append(f"IAM read via profile {cfg.iam_profile}")
    where = f" (line {cfg.source_line})" if cfg.source_line else ""
    detail = f"{cfg.name}{where}: " + ", ".join(parts)
    problem: str | None = None
    fix = ""
    if not (cfg.cluster_id or cfg.instance_id or cfg.endpoint):
        problem, fix = "nothing to connect to", "give cluster_id, instance_id or endpoint"
    elif cfg.sslmode not in _VALID_SSLMODES:
        problem, fix = f"sslmode {cfg.sslmode!r} is not a libpq sslmode", 'use sslmode = "verify-full"'
    elif cfg.sslrootcert and cfg.sslrootcert != "system" and not os.access(cfg.sslrootcert, os.R_OK):
        problem = f"sslrootcert {cfg.sslrootcert} cannot be read"
        fix = f"download the RDS CA bundle ({RDS_CA_BUNDLE_URL}) and point sslrootcert at it"
    if problem is not None:
        b.fail(f"{detail}: {problem}", fix, cause=CheckCause.CONFIG_INVALID)
        ctx.decide(Diagnosis(CheckCause.CONFIG_INVALID, f"the config entry {cfg.name!r}: {problem}", fix))
        return False
    hint = None
    if cfg.auth == "iam" and cfg.sslmode in ("disable", "allow", "prefer"):
        hint = 'IAM authentication needs TLS: use sslmode = "verify-full" with the RDS CA bundle'
    b.ok(detail, hint)
    return True


def _date_header(meta: Any) -> datetime | None:
    headers = meta.get("HTTPHeaders", {}) if isinstance(meta, dict) else {}
    raw = headers.get("date") if isinstance(headers, dict) else None
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _identity(ctx: CheckContext) -> tuple[str, datetime | None, datetime]:
    """(caller ARN, AWS's Date header, local time at the answer) — blocking."""
    from pgiam_tui.aws.session import sts_client

    session = ctx.session
    assert session is not None
    region = ctx.cfg.region or session.region_name
    response = sts_client(session, region).get_caller_identity()
    local = ctx.clock()
    return str(response["Arn"]), _date_header(response.get("ResponseMetadata")), local


def _skew_from_error(exc: BaseException, ctx: CheckContext) -> float | None:
    if isinstance(exc, botocore.exceptions.ClientError):
        aws = _date_header(exc.response.get("ResponseMetadata"))
        if aws is not None:
            return (ctx.clock() - aws).total_seconds()
    return None


def describe_skew(skew_s: float) -> str:
    """'local clock 1200 s behind AWS' and the like."""
    if abs(skew_s) < 1.5:
        return "local clock agrees with AWS (Date header)"
    side = "behind" if skew_s < 0 else "ahead of"
    return f"local clock {abs(skew_s):.0f} s {side} AWS (Date header of the STS answer)"


def clock_diagnosis(skew_s: float) -> Diagnosis:
    """The clock_skew cause for a measured offset."""
    if skew_s < 0:
        effect = "tokens are signed with a time in the past and look expired (or nearly) to RDS"
    else:
        effect = "tokens are signed with a time in the future and RDS refuses them"
    return Diagnosis(
        CheckCause.CLOCK_SKEW,
        f"the local clock is {abs(skew_s):.0f} s {'behind' if skew_s < 0 else 'ahead of'} AWS: {effect}",
        "synchronise the clock (timedatectl set-ntp true / chronyc makestep; on EC2 the Amazon Time Sync "
        "Service at 169.254.169.123)",
        [describe_skew(skew_s)],
    )


async def step_credentials(ctx: CheckContext, b: StepBuilder) -> bool:
    """Who we are to AWS (sts get-caller-identity), and how far the local clock is from AWS's."""
    if not needs_aws(ctx):
        b.skip("not needed: password auth to an endpoint given in the config")
        return True
    try:
        ctx.session = await asyncio.to_thread(ctx.sessions.session, ctx.cfg.profile)
        # Discovery needs only the session: let it run beside the STS call (its result is used, or
        # dropped, by the discovery step).
        ctx.discovery = asyncio.ensure_future(asyncio.to_thread(_timed_resolve, ctx))
        arn, aws_date, local = await asyncio.to_thread(_identity, ctx)
    except (AwsCredentialError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if is_timeout(exc):
            return _timed_out(ctx, b, "STS (get-caller-identity)", exc)
        err = classify_aws_error(exc, ctx.cfg.profile)
        if err.kind in ("no_credentials", "imds_unreachable"):
            # botocore hides why the instance metadata service gave nothing: ask it, as botocore does
            better = await asyncio.to_thread(credential_failure, err, ctx.cfg.profile)
            err = better if better is not None else err
        code = _CREDENTIAL_CAUSES.get(err.kind, CheckCause.AWS_ERROR)
        skew = _skew_from_error(exc, ctx)
        message = clip(err.message)
        if skew is not None and abs(skew) > SKEW_LIMIT_S:
            diag = clock_diagnosis(skew)
            diag.evidence.insert(0, message)
            b.fail(message, diag.fix, cause=CheckCause.CLOCK_SKEW)
            b.evidence.extend(diag.evidence)
            ctx.decide(diag, "inference")
            return False
        hint = err.hint or "check the profile with `pgiam-tui profiles --resolve`"
        b.fail(message, hint, cause=code)
        b.evidence.append(message)
        ctx.decide(Diagnosis(code, fix=hint, evidence=[message]), "inference")
        return False
    ctx.identity_arn = arn
    detail = f"identity {arn}"
    if aws_date is not None:
        ctx.skew_s = (local - aws_date).total_seconds()
        detail += f"; {describe_skew(ctx.skew_s)}"
    b.ok(detail)
    return True


def _timed_out(ctx: CheckContext, b: StepBuilder, service: str, exc: BaseException) -> bool:
    """Fail the step as a timeout (never as a permissions problem)."""
    message = clip(f"{service} did not answer in time: {exc}")
    fix = (
        "retry once AWS answers; if it keeps timing out, check the network path to AWS "
        "(proxy, VPC endpoint, firewall, AWS_ENDPOINT_URL)"
    )
    b.fail(message, fix, cause=CheckCause.AWS_TIMEOUT)
    ctx.decide(Diagnosis(CheckCause.AWS_TIMEOUT, fix=fix, evidence=[message]), "inference")
    return False


def _timed_resolve(ctx: CheckContext) -> tuple[ResolvedCluster, float]:
    """resolve_cluster and how long it took (ms) — blocking."""
    from pgiam_tui.aws.discovery import resolve_cluster

    assert ctx.session is not None
    started = time.perf_counter()
    cluster = resolve_cluster(ctx.cfg, ctx.session)
    return cluster, (time.perf_counter() - started) * 1000.0


async def step_discovery(ctx: CheckContext, b: StepBuilder) -> bool:
    """Endpoint, resource id, IAM flag and log exports of the cluster (as AWS says, or as configured)."""
    cfg = ctx.cfg
    if ctx.session is None:
        if needs_aws(ctx):
            b.skip("not tried: no AWS session")
            return False
        ctx.session = await asyncio.to_thread(ctx.sessions.session, cfg.profile)
    pending, ctx.discovery = ctx.discovery, None
    try:
        if pending is not None:
            cluster, b.own_ms = await pending
        else:
            cluster, b.own_ms = await asyncio.to_thread(_timed_resolve, ctx)
    except DiscoveryError as exc:
        code = {
            "not_found": CheckCause.CLUSTER_NOT_FOUND,
            "access_denied": CheckCause.DISCOVERY_DENIED,
            CheckCause.REGION_MISMATCH: CheckCause.REGION_MISMATCH,
        }.get(exc.kind, CheckCause.AWS_ERROR)
        message = clip(exc.message)
        b.fail(message, exc.hint, cause=code)
        ctx.decide(Diagnosis(code, fix=exc.hint or "", evidence=[message]), "inference")
        return False
    except (AwsCredentialError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        if is_timeout(exc):
            return _timed_out(ctx, b, "RDS (describe-db-clusters / describe-db-instances)", exc)
        err = classify_aws_error(exc, cfg.profile)
        code = _CREDENTIAL_CAUSES.get(err.kind, CheckCause.AWS_ERROR)
        b.fail(clip(err.message), err.hint, cause=code)
        ctx.decide(Diagnosis(code, fix=err.hint or "", evidence=[clip(err.message)]), "inference")
        return False
    ctx.cluster = cluster
    members = ", ".join(f"{i.role} {i.id}" for i in cluster.instances)
    iam = "enabled" if cluster.iam_auth_enabled else "DISABLED"
    if cluster.kind == "direct":
        iam = "not known (endpoint given directly)"
    detail = (
        f"{cluster.kind} {cluster.name}: endpoint {ctx.endpoint}:{cluster.port}, region {cluster.region}, "
        f"resource id {cluster.resource_id or '(unknown)'}, IAM auth {iam}, "
        f"log exports [{', '.join(cluster.log_exports) or 'none'}], instances: {members or 'none'}"
    )
    if cfg.auth == "iam" and cluster.kind != "direct" and not cluster.iam_auth_enabled:
        if cluster.kind == "aurora":
            fix = (
                f"aws rds modify-db-cluster --db-cluster-identifier {shell_word(cfg.cluster_id or '')} "
                "--enable-iam-database-authentication --apply-immediately"
            )
        else:
            fix = (
                f"aws rds modify-db-instance --db-instance-identifier {shell_word(cfg.instance_id or '')} "
                "--enable-iam-database-authentication --apply-immediately"
            )
        if cfg.profile:
            fix += f" --profile {shell_word(cfg.profile)}"
        evidence = (
            f"describe_db_{'clusters' if cluster.kind == 'aurora' else 'instances'}: "
            "IAMDatabaseAuthenticationEnabled = false"
        )
        b.fail(detail, fix, cause=CheckCause.IAM_AUTH_DISABLED)
        b.evidence.append(evidence)
        ctx.suspect("discovery", Diagnosis(CheckCause.IAM_AUTH_DISABLED, fix=fix, evidence=[evidence]))
        return True  # still try: the login's refusal confirms it
    b.ok(detail)
    return True


def _token_concerns(ctx: CheckContext) -> list[Diagnosis]:
    """Causes the token's binding already predicts (host, port, region, clock)."""
    concerns: list[Diagnosis] = []
    token = ctx.token
    assert token is not None
    tunnel = ctx.tunnel_target()
    if is_ip(token.host) or token.host in ("localhost", "localhost.localdomain"):
        local_port = token.port
        fix = (
            'put the RDS endpoint name in the config (endpoint = "NAME.cluster-ID.REGION.rds.amazonaws.com", '
            f'port = 5432) and the tunnel in hostaddr = "{token.host}", local_port = {local_port}: the token '
            "and the TLS name must be the endpoint's, only TCP goes to the tunnel"
        )
        concerns.append(
            Diagnosis(
                CheckCause.TOKEN_HOST_MISMATCH,
                f"the token is signed for {token.host}:{token.port}, a local/tunnel address: RDS checks the "
                "signed host:port against its endpoint name and port",
                fix,
                [f"token signed for {token.host}:{token.port}"],
            )
        )
    elif tunnel is not None and token.port == tunnel[1] and token.port != 5432:
        concerns.append(
            Diagnosis(
                CheckCause.TOKEN_HOST_MISMATCH,
                f"the token is signed for port {token.port}, the tunnel's local port; RDS expects the "
                "endpoint's own port",
                "set port = 5432 (the endpoint's port) and local_port = the tunnel's port",
                [f"token signed for {token.host}:{token.port}, tunnel {tunnel[0]}:{tunnel[1]}"],
            )
        )
    host_region = ctx.endpoint_region()
    if host_region and host_region != token.region:
        concerns.append(
            Diagnosis(
                CheckCause.REGION_MISMATCH,
                f"the token is signed for region {token.region}, but the endpoint is in {host_region}",
                f'set region = "{host_region}" for this cluster in the config',
                [f"endpoint {token.host} names region {host_region}; token region {token.region}"],
            )
        )
    if ctx.skew_s is not None and abs(ctx.skew_s) > SKEW_LIMIT_S:
        concerns.append(clock_diagnosis(ctx.skew_s))
    return concerns


async def step_token(ctx: CheckContext, b: StepBuilder) -> bool:
    """Sign a token for endpoint:port (never shown), and check what it is bound to."""
    from pgiam_tui.aws.tokens import make_token

    cfg = ctx.cfg
    if cfg.auth != "iam":
        b.skip("auth = password: no token (the password comes from the OS keyring)")
        return True
    if ctx.session is None or ctx.region is None:
        b.skip("not tried: no AWS session or region")
        return False
    try:
        ctx.token = await asyncio.to_thread(
            make_token, ctx.session, ctx.endpoint, ctx.port, cfg.user, ctx.region
        )
    except AwsCredentialError as exc:
        code = _CREDENTIAL_CAUSES.get(exc.kind, CheckCause.TOKEN_ERROR)
        b.fail(clip(exc.message), exc.hint, cause=code)
        ctx.decide(Diagnosis(code, fix=exc.hint or "", evidence=[clip(exc.message)]), "inference")
        return False
    except DiscoveryError as exc:  # asked to sign for a region the endpoint contradicts: nothing was signed
        message = clip(exc.message)
        b.fail(message, exc.hint, cause=CheckCause.REGION_MISMATCH)
        ctx.decide(Diagnosis(CheckCause.REGION_MISMATCH, fix=exc.hint or "", evidence=[message]), "inference")
        return False
    token = ctx.token
    lifetime = (token.expires_at - token.issued_at).total_seconds()
    detail = (
        f"signed for {token.host}:{token.port}, region {token.region}, user {token.user}; "
        f"valid until {token.expires_at.isoformat(timespec='seconds')} ({lifetime:.0f} s; value not shown)"
    )
    concerns = _token_concerns(ctx)
    if concerns:
        first = concerns[0]
        b.fail(f"{detail}; {first.text}", first.fix, cause=first.code)
        for concern in concerns:
            b.evidence.extend(concern.evidence)
            ctx.suspect("token", concern)
        return True  # the login will confirm (or not)
    b.ok(detail)
    return True
