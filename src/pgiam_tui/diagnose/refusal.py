"""Why RDS said `PAM authentication failed`: AWS's own log line decides; inference is the fallback.

Order of evidence: the cluster's iam-db-auth-error log (newest line about this user since the attempt), then
what earlier steps predicted (IAM flag off, token bound to the wrong host/port/region, clock skew), then the
caller's IAM policies read with the optional IAM profile, then a ranked list of candidates.
"""

from __future__ import annotations

import asyncio

from pgiam_tui.aws.policy import dbuser_arn
from pgiam_tui.diagnose.causes import IAM_OFF_CANDIDATE, IAM_REFUSAL_CANDIDATES, Diagnosis
from pgiam_tui.diagnose.context import CheckContext
from pgiam_tui.diagnose.iam_evidence import (
    EvidenceUnavailable,
    IamLogLine,
    PolicyFinding,
    analyse_policies,
    newest_iam_log_line,
    principal_of,
    principal_policies,
)
from pgiam_tui.diagnose.result import StepBuilder
from pgiam_tui.fixquote import shell_word
from pgiam_tui.vocabulary import CheckCause

_INVALID_TOKEN_SUSPECTS = (CheckCause.TOKEN_HOST_MISMATCH, CheckCause.REGION_MISMATCH, CheckCause.CLOCK_SKEW)


def _expected_arn(ctx: CheckContext) -> str | None:
    cluster = ctx.cluster
    if cluster is None or not cluster.resource_id or not ctx.region:
        return None
    account = cluster.account_id
    if account is None and ctx.identity_arn:
        parts = ctx.identity_arn.split(":")
        account = parts[4] if len(parts) > 4 else None
    if not account:
        return None
    return dbuser_arn(ctx.region, account, cluster.resource_id, ctx.cfg.user)


async def _read_log(ctx: CheckContext, b: StepBuilder, attempt_aws_ms: int) -> tuple[IamLogLine | None, bool]:
    """(newest iam-db-auth-error line about our user since the attempt, whether the log could be read)."""
    cluster = ctx.cluster
    if cluster is None or not cluster.iam_log_group:
        b.evidence.append(
            "the cluster does not export the iam-db-auth-error log (enable it to see AWS's own reason)"
        )
        return None, False
    # With IAM auth off (as discovery saw it) RDS writes no line: a short look is enough to confirm.
    wait_s = min(ctx.log_wait_s, 0.5) if ctx.suspected(CheckCause.IAM_AUTH_DISABLED) else ctx.log_wait_s
    profiles: list[str | None] = [ctx.cfg.profile]
    if ctx.cfg.iam_profile and ctx.cfg.iam_profile != ctx.cfg.profile:
        profiles.append(ctx.cfg.iam_profile)
    problems: list[str] = []
    for profile in profiles:
        try:
            session = await asyncio.to_thread(ctx.sessions.session, profile)
            line = await asyncio.to_thread(
                newest_iam_log_line,
                session,
                cluster.region,
                cluster.iam_log_group,
                ctx.cfg.user,
                attempt_aws_ms,
                wait_s=wait_s,
            )
        except EvidenceUnavailable as exc:
            problems.append(str(exc))
            if exc.timed_out:
                ctx.aws_timeouts.append(f"CloudWatch Logs ({cluster.iam_log_group})")
            continue
        except Exception as exc:  # a credential problem of the second profile is evidence, not a crash
            problems.append(f"profile {profile}: {type(exc).__name__}: {exc}")
            continue
        if line is None:
            b.evidence.append(
                f"{cluster.iam_log_group}: no line about user {ctx.cfg.user} within {wait_s:g} s "
                "of the attempt (RDS writes none when IAM authentication is off)"
            )
        return line, True
    b.evidence.append("iam-db-auth-error log not readable: " + "; ".join(problems))
    return None, False


async def _policy_finding(ctx: CheckContext, b: StepBuilder) -> PolicyFinding | None:
    """The caller's policies evaluated for this user's dbuser ARN (needs cfg.iam_profile)."""
    cfg = ctx.cfg
    expected = _expected_arn(ctx)
    principal = principal_of(ctx.identity_arn) if ctx.identity_arn else None
    if not cfg.iam_profile or expected is None or principal is None:
        if not cfg.iam_profile:
            b.evidence.append("IAM policies not read (no iam_profile in the config)")
        return None
    try:
        session = await asyncio.to_thread(ctx.sessions.session, cfg.iam_profile)
        policies = await asyncio.to_thread(principal_policies, session, principal)
    except EvidenceUnavailable as exc:
        b.evidence.append(str(exc))
        if exc.timed_out:
            ctx.aws_timeouts.append(f"IAM (profile {cfg.iam_profile})")
        return None
    except Exception as exc:
        b.evidence.append(f"IAM not readable with profile {cfg.iam_profile}: {type(exc).__name__}: {exc}")
        return None
    names = tuple(
        n for n in (cfg.cluster_id, cfg.instance_id, ctx.cluster.name if ctx.cluster else None) if n
    )
    names += tuple(i.id for i in ctx.cluster.instances) if ctx.cluster else ()
    return analyse_policies(policies, expected, names)


def _iam_off_fix(ctx: CheckContext) -> str:
    cfg = ctx.cfg
    if cfg.cluster_id:
        what = f"aws rds describe-db-clusters --db-cluster-identifier {shell_word(cfg.cluster_id)}"
    elif cfg.instance_id:
        what = f"aws rds describe-db-instances --db-instance-identifier {shell_word(cfg.instance_id)}"
    else:
        what = "aws rds describe-db-clusters / describe-db-instances"
    return (
        f"check IAMDatabaseAuthenticationEnabled and pending modifications ({what}); enable it with "
        "modify-db-cluster / modify-db-instance --enable-iam-database-authentication --apply-immediately"
    )


def _policy_diagnosis(ctx: CheckContext, finding: PolicyFinding | None, caller: str | None) -> Diagnosis:
    principal = principal_of(caller or ctx.identity_arn or "")
    who = f"{principal.kind} {principal.name}" if principal else (caller or "the caller")
    expected = finding.expected_arn if finding else (_expected_arn(ctx) or "the user's dbuser ARN")
    if finding is not None and finding.explicit_deny:
        return Diagnosis(
            CheckCause.EXPLICIT_DENY,
            f"policy {finding.deny_policy} explicitly denies rds-db:connect on {expected} for {who}",
            f"remove or narrow the Deny statement in {finding.deny_policy}",
            list(finding.lines),
        )
    text = f"no IAM policy of {who} allows rds-db:connect on {expected}"
    if finding is not None and finding.mismatch:
        text += f": {finding.mismatch}"
    if finding is not None and finding.mismatch_policy:
        fix = f"change the Resource in policy {finding.mismatch_policy} to {expected}"
    else:
        fix = f"attach to {who} a policy allowing rds-db:connect on {expected}"
    return Diagnosis(CheckCause.NO_POLICY, text, fix, list(finding.lines) if finding else [])


def _from_log(ctx: CheckContext, line: IamLogLine, finding: PolicyFinding | None) -> Diagnosis:
    """AWS's error code decides the cause; earlier steps' suspicions only refine InvalidToken/ExpiredToken."""
    code = line.code
    if code == "NotAuthorized":
        diag = _policy_diagnosis(ctx, finding, line.caller_arn)
    elif code == "ExpiredToken":
        diag = ctx.suspected(CheckCause.CLOCK_SKEW) or Diagnosis(
            CheckCause.TOKEN_EXPIRED,
            fix="make a fresh token for every connection (tokens live 15 minutes); check the local clock",
        )
    elif code == "InvalidToken":
        found = next((d for c in _INVALID_TOKEN_SUSPECTS if (d := ctx.suspected(c)) is not None), None)
        diag = found or Diagnosis(
            CheckCause.INVALID_TOKEN,
            fix="sign the token with boto3 / `aws rds generate-db-auth-token` for the endpoint name and its "
            "port (not a tunnel address), the cluster's region and the exact user; never edit it",
        )
    elif code == "ThrottlingException":
        diag = Diagnosis(
            CheckCause.THROTTLED,
            fix="keep one long-lived connection per instance and retry with backoff; "
            "RDS limits new IAM connections per second",
        )
    elif code == "InternalError":
        diag = Diagnosis(CheckCause.AWS_INTERNAL_ERROR, fix="retry; if it persists, open an AWS support case")
    else:
        diag = Diagnosis(CheckCause.INVALID_TOKEN, f"RDS refused the token ({code})", "see AWS's message")
    return Diagnosis(
        diag.code, diag.text, diag.fix, [f"AWS iam-db-auth-error: {line.message}", *diag.evidence]
    )


async def explain_iam_refusal(ctx: CheckContext, b: StepBuilder, attempt_local_s: float) -> Diagnosis:
    """The cause of a PAM refusal; sets ctx.evidence_source to "aws_log" or "inference"."""
    attempt_aws_s = attempt_local_s - (ctx.skew_s or 0.0)
    # 1 s of slack: AWS's time is known to us only to the second (the Date header).
    line, log_readable = await _read_log(ctx, b, int((attempt_aws_s - 1.0) * 1000))
    iam_off = ctx.suspected(CheckCause.IAM_AUTH_DISABLED)
    if line is not None and iam_off is not None:
        # RDS logs nothing for logins it does not check with IAM: a line now is another attempt's.
        ctx.evidence_source = "inference"
        b.evidence.append(f"ignored (IAM auth is off, so not this login's): {line.message}")
        return iam_off
    if line is not None:
        finding = await _policy_finding(ctx, b) if line.code == "NotAuthorized" else None
        ctx.evidence_source = "aws_log"
        return _from_log(ctx, line, finding)
    ctx.evidence_source = "inference"
    for code in (CheckCause.IAM_AUTH_DISABLED, *_INVALID_TOKEN_SUSPECTS):
        suspected = ctx.suspected(code)
        if suspected is not None:
            return suspected
    finding = await _policy_finding(ctx, b)
    if finding is not None and not finding.allowed and not finding.conditional:
        return _policy_diagnosis(ctx, finding, None)
    if ctx.aws_timeouts:
        # AWS's reason and the policies could not be read because AWS did not answer: say so, and do
        # not guess a missing permission from silence.
        ctx.candidates = [f"{c}: {t}" for c, t in IAM_REFUSAL_CANDIDATES]
        return Diagnosis(
            CheckCause.AWS_TIMEOUT,
            "the login was refused, and AWS's reason could not be read: "
            + ", ".join(ctx.aws_timeouts)
            + " did not answer in time",
            "run the check again once AWS answers (a timeout says nothing about permissions); "
            "if it keeps timing out, check the network path to AWS (proxy, VPC endpoint, firewall)",
        )
    # the token step checked both of these
    ruled_out: set[CheckCause] = {CheckCause.TOKEN_HOST_MISMATCH, CheckCause.REGION_MISMATCH}
    if ctx.skew_s is not None:
        ruled_out.add(CheckCause.CLOCK_SKEW)
    evidence: list[str] = []
    if finding is not None:
        evidence.extend(finding.lines)
        if finding.allowed:
            ruled_out.add(CheckCause.NO_POLICY)
            evidence.append(f"the caller's policies allow rds-db:connect on {finding.expected_arn}")
    ranked = [(c, t) for c, t in IAM_REFUSAL_CANDIDATES if c not in ruled_out]
    ranked += [(c, t) for c, t in IAM_REFUSAL_CANDIDATES if c in ruled_out and c != CheckCause.NO_POLICY]
    if log_readable:
        # RDS logs every refused IAM login it evaluated; silence points at IAM auth being off for the instance
        # (a modification not applied yet, or describe and reality disagreeing) rather than at the token.
        ranked.insert(0, (CheckCause.IAM_AUTH_DISABLED, IAM_OFF_CANDIDATE))
    ctx.candidates = [f"{c}: {t}" for c, t in ranked]
    top = ranked[0][0] if ranked else CheckCause.AUTH_FAILED
    if top == CheckCause.NO_POLICY:
        diag = _policy_diagnosis(ctx, finding, None)
        diag.text = "most likely: " + diag.text
    elif top == CheckCause.IAM_AUTH_DISABLED:
        diag = Diagnosis(top, "most likely: " + IAM_OFF_CANDIDATE, _iam_off_fix(ctx))
    else:
        diag = Diagnosis(top)
        diag.text = "most likely: " + diag.text
        diag.fix = "see the candidate causes, in order"
    diag.evidence.extend(evidence)
    return diag
