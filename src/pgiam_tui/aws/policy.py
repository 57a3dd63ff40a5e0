"""A small IAM identity-policy evaluator, enough to answer "may this principal `rds-db:connect` as USER?".

Used by the sandbox's front door (to decide like RDS would) and by the product's IAM-mapping collector and
connection check (to explain why a login is refused). It understands what identity policies for
`rds-db:connect` use in practice: Allow/Deny, Action/NotAction, Resource/NotResource (string or list),
`*` and `?` wildcards (case-insensitive for actions, case-sensitive for resources; in a resource ARN they
stay inside one colon-separated segment unless a `*` ends the segment, as AWS documents), ARNs of every
partition, and "explicit Deny wins".

Condition blocks are never evaluated: a statement with a Condition is reported as *conditional*, because the
answer depends on request context (source IP, MFA, tags, time...) that we cannot see. Policy variables such as
`${aws:username}` in a resource (documents of Version 2012-10-17) make a statement conditional too.

The sandbox decides logins with its own evaluator, written separately from AWS's documentation; a
differential property test holds the two together (tests/integration/test_policy_differential.py), and
what this one deliberately does not model is listed in docs/IAM_EVALUATION.md.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONNECT_ACTION",
    "Decision",
    "MatchedStatement",
    "NamedPolicy",
    "PolicyDocumentError",
    "connect_grants",
    "dbuser_arn",
    "evaluate",
    "parse_document",
    "resource_match",
    "wildcard_match",
]

CONNECT_ACTION = "rds-db:connect"

Effect = Literal["Allow", "Deny"]


class PolicyDocumentError(ValueError):
    """A policy document that is not valid JSON / not a JSON object."""


@dataclass(frozen=True)
class NamedPolicy:
    """A policy document with the name (and ARN, for managed policies) it is known by.

    Inline policies have `arn=None`; name them e.g. "user/alice/inline-policy-name" so reports stay readable.
    """

    name: str
    arn: str | None
    document: Mapping[str, Any]


@dataclass(frozen=True)
class MatchedStatement:
    """One statement that applies to the request (evaluate) or grants connect (connect_grants).

    `resource_pattern` is the Resource pattern that matched. For a NotResource statement `not_resource` is
    True and `resource_pattern` is the excluded pattern (the statement covers everything *except* it).
    """

    policy: str
    sid: str | None
    effect: Effect
    resource_pattern: str
    conditional: bool
    not_resource: bool = False


@dataclass(frozen=True)
class Decision:
    """Outcome of evaluating identity policies for one action on one resource.

    - `allowed`: an Allow applies without any Condition and no Deny applies without a Condition.
    - `explicit_deny`: a Deny applies without a Condition (it wins over every Allow).
    - `conditional`: the true outcome depends on a Condition we do not evaluate: either the only Allows that
      apply are conditional, or a conditional Deny could override the Allow. Never guessed either way.
    - `matches`: every statement that applies, Allow and Deny, in policy order.
    """

    allowed: bool
    explicit_deny: bool
    conditional: bool
    matches: tuple[MatchedStatement, ...]

    @property
    def implicit_deny(self) -> bool:
        """Nothing allows the request (no Allow statement applies at all)."""
        return not any(m.effect == "Allow" for m in self.matches)


def dbuser_arn(region: str, account_id: str, resource_id: str, db_user: str) -> str:
    """The ARN RDS checks for `rds-db:connect`: arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER.

    PARTITION follows the region (`aws-cn` for cn-…, `aws-us-gov` for us-gov-…). RESOURCE_ID is the
    cluster's DbClusterResourceId ("cluster-…") for Aurora, the instance's DbiResourceId ("db-…") for RDS for
    PostgreSQL — never the cluster or instance identifier.
    """
    partition = partition_of_region(region)
    return f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{resource_id}/{db_user}"


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # Only `*` and `?` are special in IAM; everything else (including `[`, `.`, `+`) is literal,
    # which is why fnmatch (with its character classes) is not used.
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM-style glob: `*` matches any run of characters (also `:` and `/`), `?` one; the rest is literal.

    Case-sensitive unless `ignore_case` (IAM compares action names case-insensitively, resources exactly).
    """
    return _compile(pattern, ignore_case).fullmatch(value) is not None


_VARIABLE_RE = re.compile(r"\$\{[^}]*\}")
_ANY = "\x00"  # stands for a policy variable while compiling: its value may be anything, colons included


@functools.lru_cache(maxsize=4096)
def _compile_arn(pattern: str) -> re.Pattern[str]:
    # AWS: `*` and `?` match within one colon-separated ARN segment; a `*` that is the last character of a
    # segment may run on across colons. The sixth part (the resource) may itself contain colons.
    out = []
    segment = 0
    for i, ch in enumerate(pattern):
        if ch == _ANY:
            out.append(".*")
        elif ch == "*":
            last_in_segment = i + 1 == len(pattern) or pattern[i + 1] == ":"
            out.append(".*" if segment >= 5 or last_in_segment else "[^:]*")
        elif ch == "?":
            out.append("." if segment >= 5 else "[^:]")
        else:
            if ch == ":":
                segment += 1
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def resource_match(pattern: str, arn: str, *, variables: bool = False) -> bool:
    """Whether a Resource/NotResource PATTERN names ARN (case-sensitive, AWS's per-segment wildcards).

    With `variables`, each `${...}` policy variable is taken to match anything ("could match").
    """
    if variables:
        pattern = _VARIABLE_RE.sub(_ANY, pattern)
    return _compile_arn(pattern).fullmatch(arn) is not None


def partition_of_region(region: str) -> str:
    """The ARN partition of REGION (`aws`, `aws-cn`, `aws-us-gov`, ...), from botocore's partition data."""
    from pgiam_tui.aws.endpoints import partition_of_region as of_region

    return of_region(region)


def parse_document(document: Mapping[str, Any] | str) -> Mapping[str, Any]:
    """A policy document as a mapping; also accepts JSON text or the URL-encoded JSON of the raw IAM API."""
    if isinstance(document, Mapping):
        return document
    text = document.strip()
    if text.startswith("%7B") or text.startswith("%7b"):
        text = urllib.parse.unquote(text)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyDocumentError(f"policy document is not valid JSON: {exc.msg}") from None
    if not isinstance(parsed, Mapping):
        raise PolicyDocumentError("policy document is not a JSON object")
    return parsed


def _as_list(value: Any) -> list[str]:
    """IAM allows a single string or a list of strings almost everywhere."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]


def _statements(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    raw = document.get("Statement", [])
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return
    for st in raw:
        if isinstance(st, Mapping):
            yield st


def _effect(st: Mapping[str, Any]) -> Effect | None:
    # IAM rejects other spellings at write time; a document we cannot read is ignored rather than guessed at.
    eff = st.get("Effect")
    if eff == "Allow":
        return "Allow"
    if eff == "Deny":
        return "Deny"
    return None


def _action_applies(st: Mapping[str, Any], action: str) -> bool:
    if "Action" in st:
        return any(wildcard_match(p, action, ignore_case=True) for p in _as_list(st["Action"]))
    if "NotAction" in st:
        return not any(wildcard_match(p, action, ignore_case=True) for p in _as_list(st["NotAction"]))
    return False


def _has_condition(st: Mapping[str, Any]) -> bool:
    cond = st.get("Condition")
    return bool(cond)


def _has_variable(pattern: str, variables: bool) -> bool:
    return variables and "${" in pattern


def _uses_variables(document: Mapping[str, Any]) -> bool:
    # AWS substitutes policy variables only in documents of Version 2012-10-17; elsewhere `${` is literal.
    return document.get("Version") == "2012-10-17"


def _sid(st: Mapping[str, Any]) -> str | None:
    sid = st.get("Sid")
    return str(sid) if sid is not None else None


def _resource_matches(
    st: Mapping[str, Any], policy: str, effect: Effect, resource: str, variables: bool
) -> list[MatchedStatement]:
    """The MatchedStatement of a statement whose action applies, if it also covers `resource`."""
    cond = _has_condition(st)
    sid = _sid(st)
    if "Resource" in st:
        out = []
        for pat in _as_list(st["Resource"]):
            if _has_variable(pat, variables):
                # `${aws:username}` etc. depend on the request: the pattern might match, we cannot know.
                if resource_match(pat, resource, variables=True):
                    out.append(MatchedStatement(policy, sid, effect, pat, True))
            elif resource_match(pat, resource):
                out.append(MatchedStatement(policy, sid, effect, pat, cond))
        # one statement applies once, however many of its patterns match; a sure match beats a maybe
        out.sort(key=lambda m: m.conditional)
        return out[:1]
    if "NotResource" in st:
        pats = _as_list(st["NotResource"])
        if any(resource_match(p, resource) for p in pats if not _has_variable(p, variables)):
            return []
        conditional = cond or any(_has_variable(p, variables) for p in pats)
        return [MatchedStatement(policy, sid, effect, ",".join(pats), conditional, not_resource=True)]
    return []


def evaluate(policies: Sequence[NamedPolicy], action: str, resource: str) -> Decision:
    """Evaluate identity policies for `action` on `resource` (e.g. "rds-db:connect" on a dbuser ARN).

    Explicit (unconditional) Deny wins; otherwise an unconditional Allow allows; otherwise implicit deny.
    Conditional statements never decide: they set `conditional` (see Decision).
    """
    matches: list[MatchedStatement] = []
    for pol in policies:
        document = parse_document(pol.document)
        variables = _uses_variables(document)
        for st in _statements(document):
            effect = _effect(st)
            if effect is None or not _action_applies(st, action):
                continue
            matches.extend(_resource_matches(st, pol.name, effect, resource, variables))
    deny_hard = any(m.effect == "Deny" and not m.conditional for m in matches)
    deny_soft = any(m.effect == "Deny" and m.conditional for m in matches)
    allow_hard = any(m.effect == "Allow" and not m.conditional for m in matches)
    allow_soft = any(m.effect == "Allow" and m.conditional for m in matches)
    if deny_hard:
        return Decision(False, True, False, tuple(matches))
    allowed = allow_hard and not deny_soft
    conditional = (allow_hard and deny_soft) or (not allow_hard and allow_soft)
    return Decision(allowed, False, conditional, tuple(matches))


def connect_grants(policies: Sequence[NamedPolicy]) -> list[MatchedStatement]:
    """Every Allow statement whose actions cover `rds-db:connect`, once per resource pattern it names.

    Use it to list which database users (and which resource ids) a principal may connect as; a NotResource
    statement is reported once per excluded pattern with `not_resource=True`.
    """
    out: list[MatchedStatement] = []
    for pol in policies:
        document = parse_document(pol.document)
        variables = _uses_variables(document)
        for st in _statements(document):
            if _effect(st) != "Allow" or not _action_applies(st, CONNECT_ACTION):
                continue
            cond = _has_condition(st)
            sid = _sid(st)
            if "Resource" in st:
                for pat in _as_list(st["Resource"]):
                    conditional = cond or _has_variable(pat, variables)
                    out.append(MatchedStatement(pol.name, sid, "Allow", pat, conditional))
            elif "NotResource" in st:
                for pat in _as_list(st["NotResource"]):
                    conditional = cond or _has_variable(pat, variables)
                    out.append(MatchedStatement(pol.name, sid, "Allow", pat, conditional, not_resource=True))
    return out
