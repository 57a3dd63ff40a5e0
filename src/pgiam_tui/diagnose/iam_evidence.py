"""Evidence for a refused IAM login: AWS's own reason from the iam-db-auth-error log, the caller's policies.

The client only ever sees `PAM authentication failed`. When the cluster exports the `iam-db-auth-error` log,
RDS wrote the true reason (InvalidToken, ExpiredToken, NotAuthorized with the caller ARN, ThrottlingException,
InternalError) to CloudWatch: that decides. Otherwise the caller's identity policies, read with the optional
IAM profile, are evaluated against the user's dbuser ARN to name the policy and the mismatch. Blocking
functions (boto3): callers run them in a thread.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import boto3
import botocore.exceptions

from pgiam_tui.aws.errors import describe_aws_error, is_timeout
from pgiam_tui.aws.policy import CONNECT_ACTION, MatchedStatement, NamedPolicy, connect_grants, evaluate
from pgiam_tui.aws.session import cached_client
from pgiam_tui.collect.iam_log import IAM_CODE_KINDS, parse_iam_line
from pgiam_tui.errors import PgiamError
from pgiam_tui.textsafe import clip

_DBUSER_ARN = re.compile(
    r"^arn:(?P<partition>[^:]*):rds-db:(?P<region>[^:]*):(?P<account>[^:]*):dbuser:(?P<rid>[^/]*)/(?P<user>.*)$"
)

IAM_LOG_CODES = tuple(IAM_CODE_KINDS)
_CODE_OF_KIND = {kind: code for code, kind in IAM_CODE_KINDS.items()}


class EvidenceUnavailable(PgiamError):
    """The evidence source could not be read (no permission, no such group, AWS error); str() says why.

    `timed_out` tells a timeout (AWS did not answer) from a refusal: only the latter is about permissions.
    """

    default_step: ClassVar[str] = "evidence"

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class IamLogLine:
    """One iam-db-auth-error line about our user."""

    code: str  # one of IAM_LOG_CODES (or what AWS wrote)
    user: str
    caller_arn: str | None
    message: str  # the line, control characters made visible
    timestamp_ms: int


def parse_iam_log_line(text: str, timestamp_ms: int = 0) -> IamLogLine | None:
    """The code, user and caller ARN of an iam-db-auth-error line (None when it is not one).

    collect/iam_log.py reads the format (shared with the events pane); this keeps what the check needs.
    """
    event = parse_iam_line(text)
    code = _CODE_OF_KIND.get(event.kind)
    if code is None or event.user is None:
        return None
    return IamLogLine(
        code=code,
        user=event.user,
        caller_arn=event.caller_arn,
        message=clip(text.strip()),
        timestamp_ms=timestamp_ms,
    )


def newest_iam_log_line(
    session: boto3.Session,
    region: str,
    group: str,
    user: str,
    since_ms: int,
    *,
    wait_s: float = 3.0,
) -> IamLogLine | None:
    """The newest line of GROUP about USER at or after SINCE_MS (epoch ms, AWS time).

    CloudWatch delivers log events with a delay, so we look a few times within WAIT_S before saying "none".
    EvidenceUnavailable when the group cannot be read.
    """
    # the shared client: our timeouts (5 s connect, 20 s read), the request budget, made once per process
    logs = cached_client(session, "logs", region)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            newest: IamLogLine | None = None
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
            for _page in range(20):  # bounded: one minute of one cluster's failures
                response = logs.filter_log_events(**kwargs)
                for event in response.get("events", []):
                    line = parse_iam_log_line(str(event.get("message", "")), int(event.get("timestamp", 0)))
                    if line is None or line.user != user:
                        continue
                    if newest is None or line.timestamp_ms >= newest.timestamp_ms:
                        newest = line
                token = response.get("nextToken")
                if not token:
                    break
                kwargs["nextToken"] = token
        except botocore.exceptions.ClientError as exc:
            raise EvidenceUnavailable(
                f"cannot read log group {group}: {clip(describe_aws_error(exc))}"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise EvidenceUnavailable(
                f"cannot read log group {group}: {clip(str(exc))}", timed_out=is_timeout(exc)
            ) from None
        if newest is not None or time.monotonic() >= deadline:
            return newest
        time.sleep(0.3)


@dataclass(frozen=True)
class Principal:
    """The IAM identity behind a caller ARN."""

    kind: str  # "role" | "user"
    name: str
    account_id: str


def principal_of(caller_arn: str) -> Principal | None:
    """Role or user behind an STS/IAM caller ARN (None for root or federated users)."""
    m = re.match(r"^arn:[^:]*:sts::(\d+):assumed-role/([^/]+)/", caller_arn)
    if m:
        return Principal("role", m.group(2), m.group(1))
    m = re.match(r"^arn:[^:]*:iam::(\d+):(user|role)/(?:.*/)?([^/]+)$", caller_arn)
    if m:
        return Principal(m.group(2), m.group(3), m.group(1))
    return None


def _managed(iam: Any, arn: str) -> NamedPolicy:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    return NamedPolicy(
        name=str(policy["PolicyName"]), arn=arn, document=_doc(version["PolicyVersion"]["Document"])
    )


def _doc(document: Any) -> Any:
    from pgiam_tui.aws.policy import parse_document

    return parse_document(document)


def principal_policies(session: boto3.Session, principal: Principal) -> list[NamedPolicy]:
    """Attached and inline identity policies of PRINCIPAL (a user's groups included)."""
    iam: Any = cached_client(session, "iam", None)
    policies: list[NamedPolicy] = []
    try:
        if principal.kind == "role":
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=principal.name):
                policies.extend(_managed(iam, p["PolicyArn"]) for p in page["AttachedPolicies"])
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=principal.name):
                for name in page["PolicyNames"]:
                    doc = iam.get_role_policy(RoleName=principal.name, PolicyName=name)["PolicyDocument"]
                    policies.append(NamedPolicy(f"role/{principal.name}/{name}", None, _doc(doc)))
        else:
            for page in iam.get_paginator("list_attached_user_policies").paginate(UserName=principal.name):
                policies.extend(_managed(iam, p["PolicyArn"]) for p in page["AttachedPolicies"])
            for page in iam.get_paginator("list_user_policies").paginate(UserName=principal.name):
                for name in page["PolicyNames"]:
                    doc = iam.get_user_policy(UserName=principal.name, PolicyName=name)["PolicyDocument"]
                    policies.append(NamedPolicy(f"user/{principal.name}/{name}", None, _doc(doc)))
            for group in iam.list_groups_for_user(UserName=principal.name)["Groups"]:
                gname = group["GroupName"]
                for p in iam.list_attached_group_policies(GroupName=gname)["AttachedPolicies"]:
                    policies.append(_managed(iam, p["PolicyArn"]))
                for name in iam.list_group_policies(GroupName=gname)["PolicyNames"]:
                    doc = iam.get_group_policy(GroupName=gname, PolicyName=name)["PolicyDocument"]
                    policies.append(NamedPolicy(f"group/{gname}/{name}", None, _doc(doc)))
    except botocore.exceptions.ClientError as exc:
        raise EvidenceUnavailable(
            f"cannot read the policies of {principal.kind} {principal.name}: {clip(describe_aws_error(exc))}"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise EvidenceUnavailable(f"cannot read IAM: {clip(str(exc))}", timed_out=is_timeout(exc)) from None
    return policies


@dataclass(frozen=True)
class PolicyFinding:
    """What the caller's policies say about rds-db:connect on the expected ARN."""

    allowed: bool
    explicit_deny: bool
    conditional: bool
    expected_arn: str
    policy_names: tuple[str, ...]
    lines: tuple[str, ...]  # evidence, one statement per line
    mismatch: str | None  # the most telling mismatch, as a sentence
    mismatch_policy: str | None = None  # the policy whose Resource is wrong
    deny_policy: str | None = None  # the policy with the explicit Deny


def _describe_mismatch(
    grant: MatchedStatement, expected: re.Match[str], cluster_names: tuple[str, ...]
) -> str | None:
    m = _DBUSER_ARN.match(grant.resource_pattern)
    if grant.resource_pattern == "*":
        return None
    if m is None:
        return f"resource {grant.resource_pattern!r} is not an rds-db dbuser ARN"
    parts: list[str] = []
    rid = m.group("rid")
    if rid != expected.group("rid") and "*" not in rid and "?" not in rid:
        if rid in cluster_names:
            parts.append(
                f"names the cluster identifier {rid!r} where the resource id "
                f"{expected.group('rid')!r} belongs"
            )
        else:
            parts.append(f"names resource id {rid!r}, this cluster's is {expected.group('rid')!r}")
    for key, label in (("region", "region"), ("account", "account"), ("user", "database user")):
        value = m.group(key)
        if value != expected.group(key) and "*" not in value and "?" not in value:
            parts.append(f"names {label} {value!r}, expected {expected.group(key)!r}")
    if not parts:
        return None
    return f"policy {grant.policy}" + (f" (Sid {grant.sid})" if grant.sid else "") + " " + "; ".join(parts)


def analyse_policies(
    policies: list[NamedPolicy], expected_arn: str, cluster_names: tuple[str, ...]
) -> PolicyFinding:
    """Evaluate POLICIES for rds-db:connect on EXPECTED_ARN and explain a refusal."""
    decision = evaluate(policies, CONNECT_ACTION, expected_arn)
    lines: list[str] = [f"policies read: {', '.join(p.name for p in policies) or 'none'}"]
    for match in decision.matches:
        lines.append(
            f"{match.effect} in {match.policy}"
            + (f" (Sid {match.sid})" if match.sid else "")
            + f" on {match.resource_pattern}"
            + (" [has Condition]" if match.conditional else "")
        )
    mismatch: str | None = None
    mismatch_policy: str | None = None
    expected = _DBUSER_ARN.match(expected_arn)
    if not decision.allowed and not decision.explicit_deny:
        grants = connect_grants(policies)
        if not grants:
            mismatch = f"no statement in {len(policies)} policies grants {CONNECT_ACTION}"
        for grant in grants:
            lines.append(f"grants {CONNECT_ACTION} in {grant.policy} on {grant.resource_pattern}")
            if mismatch is None and expected is not None:
                mismatch = _describe_mismatch(grant, expected, cluster_names)
                mismatch_policy = grant.policy if mismatch else None
    return PolicyFinding(
        allowed=decision.allowed,
        explicit_deny=decision.explicit_deny,
        conditional=decision.conditional,
        expected_arn=expected_arn,
        policy_names=tuple(p.name for p in policies),
        lines=tuple(lines),
        mismatch=mismatch,
        mismatch_policy=mismatch_policy,
        deny_policy=next(
            (m.policy for m in decision.matches if m.effect == "Deny" and not m.conditional), None
        ),
    )
