"""The stand-in's own IAM evaluator: `rds-db:connect` on a dbuser ARN and `sts:AssumeRole` trust.

The stand-in is the product's independent oracle, so this module is written from AWS's documentation, never
from pgiam_tui's code (and imports nothing of it). What it follows, and where AWS says so:

- Evaluation: an explicit Deny in any applicable policy wins; else an Allow allows; else implicit deny.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
  A session policy (AssumeRole's `Policy`) narrows the role: both must allow, a Deny in either denies.
- Action / NotAction: `*` and `?` wildcards, action names case-insensitive.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
- Resource / NotResource: ARNs compared case-sensitively; `*` and `?` work inside one colon-separated segment
  of the ARN, and a `*` that ends a segment may run on past the colons.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
  ARN layout `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` (the resource part may itself hold colons):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
- Policy variables (`${aws:username}`, `${aws:PrincipalTag/team}`, `${key, 'default'}`, `${*}` `${?}` `${$}`)
  only in `"Version": "2012-10-17"` documents; a variable without a value makes the pattern match nothing.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
- Condition: see pgiam_sandbox.iam_conditions.
- Principal (trust policies): `"*"`, an account id or its `:root` ARN (the account decides through its
  identity policies), an IAM user / role ARN, an assumed-role session ARN; no partial wildcards.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
  Same account: a trust policy naming the caller itself is enough; naming the account needs the caller's
  identity policy too; cross-account always needs both.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
- Partitions: `aws`, `aws-cn` (regions `cn-…`), `aws-us-gov` (regions `us-gov-…`), and the isolated ones.
  https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html

What it leaves out is written down in docs/IAM_EVALUATION.md (permission boundaries, SCPs, resource
policies other than trust policies).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pgiam_sandbox.iam_conditions import Context, conditions_hold

__all__ = [
    "CONNECT_ACTION",
    "Caller",
    "Outcome",
    "Policy",
    "Request",
    "dbuser_arn",
    "evaluate",
    "evaluate_with_session",
    "load_document",
    "partition_of_region",
    "resource_matches",
    "trust_allows",
]

CONNECT_ACTION = "rds-db:connect"

# Region prefixes of the partitions other than `aws` (longest first: `us-isob-` before `us-iso-`).
_PARTITION_PREFIXES = (
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
)


def partition_of_region(region: str) -> str:
    """The ARN partition a region belongs to (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    lowered = region.lower()
    for prefix, partition in _PARTITION_PREFIXES:
        if lowered.startswith(prefix):
            return partition
    return "aws"


def dbuser_arn(region: str, account_id: str, resource_id: str, db_user: str) -> str:
    """The resource RDS authorizes a login against: arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RID/USER."""
    return f"arn:{partition_of_region(region)}:rds-db:{region}:{account_id}:dbuser:{resource_id}/{db_user}"


@dataclass(frozen=True)
class Policy:
    """A policy document under the name the sandbox's diagnostic log uses for it."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    """What is asked: ACTION on RESOURCE, with the request context conditions and variables read."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The verdict: allowed, or denied explicitly (naming the policies whose Deny applied) or implicitly."""

    allowed: bool
    deny_policies: tuple[str, ...] = ()

    @property
    def explicit_deny(self) -> bool:
        """A Deny statement applied (it wins over every Allow)."""
        return bool(self.deny_policies)


def load_document(document: Mapping[str, Any] | str) -> Mapping[str, Any] | None:
    """A policy document as a mapping (also from JSON text or the IAM API's URL-encoded JSON), else None."""
    if isinstance(document, Mapping):
        return document
    text = document.strip()
    if text[:3].upper() == "%7B":
        text = urllib.parse.unquote(text)
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, Mapping) else None


def _statements(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    raw = document.get("Statement", [])
    for st in [raw] if isinstance(raw, Mapping) else raw if isinstance(raw, list) else []:
        if isinstance(st, Mapping):
            yield st


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# -- matching ----------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


def _context_value(context: Context, key: str) -> str | None:
    """A single-valued context key's value (names case-insensitive); multi-valued keys do not substitute."""
    wanted = key.lower()
    for name, value in context.items():
        if name.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def _resolve(text: str, context: Context) -> list[tuple[str, bool]] | None:
    """TEXT split into (piece, is_literal) with its policy variables resolved; None if one has no value.

    Values of variables and `${*}`-style escapes are literal: their `*` and `?` are not wildcards.
    """
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        pieces.append((text[pos : m.start()], False))
        inner = m.group(1).strip()
        if inner in _LITERAL_VARIABLES:
            pieces.append((_LITERAL_VARIABLES[inner], True))
        else:
            key, _, default = inner.partition(",")
            value = _context_value(context, key.strip())
            if value is None:
                default = default.strip()
                if len(default) >= 2 and default[0] == default[-1] == "'":
                    value = default[1:-1].replace("''", "'")
            if value is None:
                return None
            pieces.append((value, True))
        pos = m.end()
    pieces.append((text[pos:], False))
    return pieces


def _arn_regex(pieces: list[tuple[str, bool]]) -> re.Pattern[str]:
    """The documented Resource wildcard rules as a regex over an ARN (see module doc)."""
    out: list[str] = []
    colons = 0
    flat: list[tuple[str, bool]] = [(ch, literal) for piece, literal in pieces for ch in piece]
    for i, (ch, literal) in enumerate(flat):
        if literal or ch not in "*?":
            out.append(re.escape(ch))
            if ch == ":" and not literal:
                colons += 1
            continue
        in_resource_part = colons >= 5  # after arn:PARTITION:SERVICE:REGION:ACCOUNT:
        ends_segment = i + 1 == len(flat) or flat[i + 1] == (":", False)
        if ch == "*":
            out.append(".*" if in_resource_part or ends_segment else "[^:]*")
        else:
            out.append("." if in_resource_part else "[^:]")
    return re.compile("".join(out), re.DOTALL)


def resource_matches(pattern: str, resource: str, context: Context | None = None, *,
                     variables: bool = True) -> bool:  # fmt: skip
    """Whether a Resource/NotResource PATTERN names RESOURCE (exact case; see module doc for wildcards)."""
    pieces = _resolve(pattern, context or {}) if variables else [(pattern, False)]
    if pieces is None:
        return False
    return _arn_regex(pieces).fullmatch(resource) is not None


def _action_matches(pattern: str, action: str) -> bool:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(body, action, re.IGNORECASE | re.DOTALL) is not None


def _applies(st: Mapping[str, Any], request: Request, variables: bool) -> bool:
    """Whether one statement covers the request (Effect aside)."""
    if ("Action" in st) == ("NotAction" in st):
        return False  # IAM refuses a statement with both or neither
    if "Action" in st:
        if not any(_action_matches(p, request.action) for p in _strings(st["Action"])):
            return False
    elif any(_action_matches(p, request.action) for p in _strings(st["NotAction"])):
        return False
    if ("Resource" in st) == ("NotResource" in st):
        return False

    def named(pattern: str) -> bool:
        return resource_matches(pattern, request.resource, request.context, variables=variables)

    if "Resource" in st:
        if not any(named(p) for p in _strings(st["Resource"])):
            return False
    elif any(named(p) for p in _strings(st["NotResource"])):
        return False
    substitute = (lambda text: _substitute(text, request.context)) if variables else None
    return conditions_hold(st.get("Condition"), request.context, substitute)


def _substitute(text: str, context: Context) -> str | None:
    pieces = _resolve(text, context)
    return None if pieces is None else "".join(piece for piece, _ in pieces)


def _uses_variables(document: Mapping[str, Any]) -> bool:
    # Before 2012-10-17 (or with no Version) `${...}` is plain text.
    return document.get("Version") == "2012-10-17"


# -- identity policies -------------------------------------------------------------------------------------


def evaluate(policies: Sequence[Policy], request: Request) -> Outcome:
    """Identity-based policies for one request: explicit Deny wins, then Allow, else implicit deny."""
    allowed = False
    denied_by: list[str] = []
    for policy in policies:
        variables = _uses_variables(policy.document)
        for st in _statements(policy.document):
            effect = st.get("Effect")
            if effect not in ("Allow", "Deny") or not _applies(st, request, variables):
                continue
            if effect == "Deny":
                if policy.name not in denied_by:
                    denied_by.append(policy.name)
            else:
                allowed = True
    return Outcome(allowed and not denied_by, tuple(denied_by))


def evaluate_with_session(identity: Sequence[Policy], session: Sequence[Policy], request: Request) -> Outcome:
    """A role session: the role's policies and the session policy must both allow; a Deny in either wins."""
    role = evaluate(identity, request)
    if not session:
        return role
    narrowed = evaluate(session, request)
    denies = role.deny_policies + tuple(n for n in narrowed.deny_policies if n not in role.deny_policies)
    return Outcome(role.allowed and narrowed.allowed and not denies, denies)


# -- trust policies ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who calls AssumeRole: ARN as STS reports it, the ARN trust policies name it by, its account."""

    arn: str  # arn:aws:iam::ACCT:user/NAME or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
    principal_arns: tuple[str, ...]  # the user ARN, or the role ARN and the session ARN
    account_id: str


def _account_principals(account_id: str) -> set[str]:
    return {account_id} | {f"arn:{p}:iam::{account_id}:root" for p in _all_partitions()}


def _all_partitions() -> tuple[str, ...]:
    return ("aws", *(partition for _, partition in _PARTITION_PREFIXES))


def _principal_match(principal: Any, caller: Caller) -> str | None:
    """'self' when PRINCIPAL names the caller itself, 'account' when it names its account (or `*`)."""
    if principal == "*":
        return "account"
    if not isinstance(principal, Mapping):
        return None
    names = set(_strings(principal.get("AWS")))
    if names & set(caller.principal_arns):
        return "self"
    if "*" in names or names & _account_principals(caller.account_id):
        return "account"
    return None


def trust_allows(
    trust_document: Mapping[str, Any],
    role_arn: str,
    caller: Caller,
    identity: Sequence[Policy],
    context: Context | None = None,
    *,
    session: Sequence[Policy] = (),
) -> Outcome:
    """May CALLER `sts:AssumeRole` into ROLE_ARN, given the role's trust policy and the caller's policies
    (IDENTITY, narrowed by SESSION policies when the caller is itself a role session)."""
    request = Request("sts:AssumeRole", role_arn, context or {})
    mine = evaluate_with_session(identity, session, request)
    trusted: str | None = None
    trust_denied = False
    for st in _statements(trust_document):
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny") or ("Action" in st) == ("NotAction" in st):
            continue
        if "Action" in st:
            covers = any(_action_matches(p, request.action) for p in _strings(st["Action"]))
        else:
            covers = not any(_action_matches(p, request.action) for p in _strings(st["NotAction"]))
        if not covers or not conditions_hold(st.get("Condition"), request.context):
            continue
        if "Principal" in st:
            match = _principal_match(st["Principal"], caller)
        elif "NotPrincipal" in st:
            match = None if _principal_match(st["NotPrincipal"], caller) else "account"
        else:
            continue
        if match is None:
            continue
        if effect == "Deny":
            trust_denied = True
        elif trusted != "self":
            trusted = match
    denies = mine.deny_policies + (("trust-policy",) if trust_denied else ())
    if denies or trusted is None:
        return Outcome(False, denies)
    same_account = role_arn.split(":")[4:5] == [caller.account_id]
    if trusted == "self" and same_account:
        return Outcome(True)
    return Outcome(mine.allowed)
