"""Table-driven tests of the rds-db:connect policy evaluator (pure: no AWS, no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgiam_tui.aws.policy import (
    CONNECT_ACTION,
    NamedPolicy,
    PolicyDocumentError,
    connect_grants,
    dbuser_arn,
    evaluate,
    parse_document,
    wildcard_match,
)

ACCOUNT = "111111111111"
REGION = "us-east-1"
CLUSTER_RID = "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY0"
OTHER_RID = "cluster-ZZZZZZZZZZZZZZZZZZZZZZZZZZ"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(resource: Any, action: Any = CONNECT_ACTION, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(resource: Any, action: Any = CONNECT_ACTION, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def arn(user: str, rid: str = CLUSTER_RID, region: str = REGION, account: str = ACCOUNT) -> str:
    return dbuser_arn(region, account, rid, user)


# The scenario's two policies, as in the blog walkthrough.
MONITOR_POLICY = NamedPolicy(
    "pg-db-monitor-policy",
    f"arn:aws:iam::{ACCOUNT}:policy/pg-db-monitor-policy",
    doc(
        {
            "Effect": "Allow",
            "Action": ["rds-db:connect"],
            "Resource": [f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/pgmonitor"],
        }
    ),
)
OLTP_RW_POLICY = NamedPolicy(
    "pgdemo-oltp-rw-user-policy",
    f"arn:aws:iam::{ACCOUNT}:policy/pgdemo-oltp-rw-user-policy",
    doc(
        {
            "Sid": "VisualEditor0",
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{CLUSTER_RID}/oltp_rw_user",
        }
    ),
)


def P(name: str, *statements: dict[str, Any]) -> NamedPolicy:
    return NamedPolicy(name, None, doc(*statements))


# (id, policies, action, resource, outcome): "allow", "deny" (explicit), "cond" (depends on a Condition)
# or "no" (implicit deny).
OUTCOMES = {
    "allow": (True, False, False),
    "deny": (False, True, False),
    "cond": (False, False, True),
    "no": (False, False, False),
}
CASES: list[tuple[str, list[NamedPolicy], str, str, str]] = [
    ("monitor wildcard, pgmonitor on cluster", [MONITOR_POLICY], CONNECT_ACTION, arn("pgmonitor"), "allow"),
    ("monitor wildcard, any cluster", [MONITOR_POLICY], CONNECT_ACTION, arn("pgmonitor", OTHER_RID), "allow"),
    (
        "monitor wildcard, rds instance id",
        [MONITOR_POLICY],
        CONNECT_ACTION,
        arn("pgmonitor", "db-ABC"),
        "allow",
    ),
    ("monitor wildcard, other user", [MONITOR_POLICY], CONNECT_ACTION, arn("oltp_rw_user"), "no"),
    (
        "monitor wildcard, other region",
        [MONITOR_POLICY],
        CONNECT_ACTION,
        arn("pgmonitor", region="us-east-2"),
        "no",
    ),
    (
        "monitor wildcard, other account",
        [MONITOR_POLICY],
        CONNECT_ACTION,
        arn("pgmonitor", account="222222222222"),
        "no",
    ),
    (
        "monitor wildcard, user suffix is not a match",
        [MONITOR_POLICY],
        CONNECT_ACTION,
        arn("pgmonitor2"),
        "no",
    ),
    ("oltp rw, right resource id", [OLTP_RW_POLICY], CONNECT_ACTION, arn("oltp_rw_user"), "allow"),
    ("oltp rw, other cluster", [OLTP_RW_POLICY], CONNECT_ACTION, arn("oltp_rw_user", OTHER_RID), "no"),
    ("oltp rw, other user", [OLTP_RW_POLICY], CONNECT_ACTION, arn("oltp_ro_user"), "no"),
    ("oltp rw, other action", [OLTP_RW_POLICY], "rds:DescribeDBClusters", arn("oltp_rw_user"), "no"),
    ("both policies", [MONITOR_POLICY, OLTP_RW_POLICY], CONNECT_ACTION, arn("oltp_rw_user"), "allow"),
    ("no policies", [], CONNECT_ACTION, arn("pgmonitor"), "no"),
    (
        "cluster identifier instead of resource id",
        [P("by-name", allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:pgdemo-1/oltp_rw_user"))],
        CONNECT_ACTION,
        arn("oltp_rw_user"),
        "no",
    ),
    (
        "action case-insensitive",
        [P("p", allow(arn("u"), "RDS-DB:Connect"))],
        CONNECT_ACTION,
        arn("u"),
        "allow",
    ),
    ("action service wildcard", [P("p", allow(arn("u"), "rds-db:*"))], CONNECT_ACTION, arn("u"), "allow"),
    ("action star", [P("p", allow("*", "*"))], CONNECT_ACTION, arn("u"), "allow"),
    ("action prefix wildcard", [P("p", allow(arn("u"), "rds-db:conn*"))], CONNECT_ACTION, arn("u"), "allow"),
    ("action question mark", [P("p", allow(arn("u"), "rds-db:connec?"))], CONNECT_ACTION, arn("u"), "allow"),
    (
        "action question mark needs one char",
        [P("p", allow(arn("u"), "rds-db:connect?"))],
        CONNECT_ACTION,
        arn("u"),
        "no",
    ),
    ("other service wildcard", [P("p", allow("*", "rds:*"))], CONNECT_ACTION, arn("u"), "no"),
    ("resource case-sensitive", [P("p", allow(arn("PGMONITOR")))], CONNECT_ACTION, arn("pgmonitor"), "no"),
    ("resource question mark", [P("p", allow(arn("user_?")))], CONNECT_ACTION, arn("user_2"), "allow"),
    (
        "resource question mark one char only",
        [P("p", allow(arn("user_?")))],
        CONNECT_ACTION,
        arn("user_22"),
        "no",
    ),
    (
        "resource list, second matches",
        [P("p", allow([arn("a"), arn("b")]))],
        CONNECT_ACTION,
        arn("b"),
        "allow",
    ),
    (
        "resource wildcard in region",
        [P("p", allow(f"arn:aws:rds-db:*:{ACCOUNT}:dbuser:{CLUSTER_RID}/*"))],
        CONNECT_ACTION,
        arn("anyone"),
        "allow",
    ),
    ("regex metachars are literal", [P("p", allow(arn("a.c")))], CONNECT_ACTION, arn("abc"), "no"),
    ("brackets are literal", [P("p", allow(arn("[ab]")))], CONNECT_ACTION, arn("a"), "no"),
    (
        "explicit deny wins",
        [MONITOR_POLICY, P("deny", deny(arn("pgmonitor")))],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "deny",
    ),
    (
        "deny star wins",
        [OLTP_RW_POLICY, P("deny", deny("*", "*"))],
        CONNECT_ACTION,
        arn("oltp_rw_user"),
        "deny",
    ),
    (
        "deny for other user does not apply",
        [MONITOR_POLICY, P("deny", deny(arn("oltp_rw_user")))],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "allow",
    ),
    ("deny alone", [P("deny", deny("*"))], CONNECT_ACTION, arn("pgmonitor"), "deny"),
    (
        "NotAction covers connect",
        [P("p", {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
        CONNECT_ACTION,
        arn("u"),
        "allow",
    ),
    (
        "NotAction excludes connect",
        [P("p", {"Effect": "Allow", "NotAction": ["rds-db:*"], "Resource": "*"})],
        CONNECT_ACTION,
        arn("u"),
        "no",
    ),
    (
        "NotResource excludes user",
        [P("p", {"Effect": "Allow", "Action": "rds-db:connect", "NotResource": arn("admin")})],
        CONNECT_ACTION,
        arn("admin"),
        "no",
    ),
    (
        "NotResource allows others",
        [P("p", {"Effect": "Allow", "Action": "rds-db:connect", "NotResource": [arn("admin")]})],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "allow",
    ),
    (
        "Deny NotResource denies outside",
        [MONITOR_POLICY, P("d", {"Effect": "Deny", "Action": "*", "NotResource": arn("x", OTHER_RID)})],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "deny",
    ),
    (
        "Deny NotAction spares connect",
        [MONITOR_POLICY, P("d", {"Effect": "Deny", "NotAction": "rds-db:connect", "Resource": "*"})],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "allow",
    ),
    (
        "conditional allow is not guessed",
        [P("p", allow(arn("u"), Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))],
        CONNECT_ACTION,
        arn("u"),
        "cond",
    ),
    (
        "conditional deny over allow",
        [MONITOR_POLICY, P("d", deny("*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}))],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "cond",
    ),
    (
        "conditional allow plus plain allow",
        [
            MONITOR_POLICY,
            P("p", allow(arn("pgmonitor"), Condition={"StringEquals": {"aws:ResourceTag/x": "y"}})),
        ],
        CONNECT_ACTION,
        arn("pgmonitor"),
        "allow",
    ),
    (
        "hard deny beats conditional allow",
        [P("p", allow(arn("u"), Condition={"Bool": {"x": "y"}})), P("d", deny(arn("u")))],
        CONNECT_ACTION,
        arn("u"),
        "deny",
    ),
    (
        "empty condition is no condition",
        [P("p", allow(arn("u"), Condition={}))],
        CONNECT_ACTION,
        arn("u"),
        "allow",
    ),
    (
        "policy variable is conditional",
        [P("p", allow(arn("${aws:username}")))],
        CONNECT_ACTION,
        arn("alice"),
        "cond",
    ),
    (
        "unknown effect ignored",
        [P("p", {"Effect": "allow", "Action": "*", "Resource": "*"})],
        CONNECT_ACTION,
        arn("u"),
        "no",
    ),
    (
        "single statement object",
        [NamedPolicy("obj", None, {"Statement": allow(arn("u"))})],
        CONNECT_ACTION,
        arn("u"),
        "allow",
    ),
    (
        "statement without resource ignored",
        [P("p", {"Effect": "Allow", "Action": "*"})],
        CONNECT_ACTION,
        arn("u"),
        "no",
    ),
]


@pytest.mark.parametrize(
    ("policies", "action", "resource", "outcome"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_evaluate(policies: list[NamedPolicy], action: str, resource: str, outcome: str) -> None:
    decision = evaluate(policies, action, resource)
    assert (decision.allowed, decision.explicit_deny, decision.conditional) == OUTCOMES[outcome]
    if decision.allowed:
        assert any(m.effect == "Allow" and not m.conditional for m in decision.matches)


def test_matches_name_policy_and_pattern() -> None:
    d = evaluate([MONITOR_POLICY, OLTP_RW_POLICY], CONNECT_ACTION, arn("oltp_rw_user"))
    assert [(m.policy, m.sid, m.effect, m.resource_pattern) for m in d.matches] == [
        ("pgdemo-oltp-rw-user-policy", "VisualEditor0", "Allow", arn("oltp_rw_user"))
    ]
    denied = evaluate([MONITOR_POLICY, P("d", deny("*"))], CONNECT_ACTION, arn("pgmonitor"))
    assert {m.effect for m in denied.matches} == {"Allow", "Deny"}
    assert not evaluate([], CONNECT_ACTION, arn("x")).matches
    assert evaluate([], CONNECT_ACTION, arn("x")).implicit_deny


def test_connect_grants_lists_each_pattern() -> None:
    policies = [
        MONITOR_POLICY,
        OLTP_RW_POLICY,
        P("other", allow("*", "s3:GetObject")),
        P("deny", deny("*")),
        P("two", allow([arn("a"), arn("b")], "rds-db:*", Sid="S2")),
        P("cond", allow(arn("c"), Condition={"Bool": {"k": "v"}})),
        P("notres", {"Effect": "Allow", "Action": "*", "NotResource": arn("admin")}),
    ]
    got = [
        (g.policy, g.sid, g.resource_pattern, g.conditional, g.not_resource) for g in connect_grants(policies)
    ]
    assert got == [
        ("pg-db-monitor-policy", None, f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/pgmonitor", False, False),
        ("pgdemo-oltp-rw-user-policy", "VisualEditor0", arn("oltp_rw_user"), False, False),
        ("two", "S2", arn("a"), False, False),
        ("two", "S2", arn("b"), False, False),
        ("cond", None, arn("c"), True, False),
        ("notres", None, arn("admin"), False, True),
    ]


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    [
        ("*", "", False, True),
        ("*", "anything:at/all", False, True),
        ("a?c", "abc", False, True),
        ("a?c", "ac", False, False),
        ("a*c", "a:b/c", False, True),
        ("ABC", "abc", False, False),
        ("ABC", "abc", True, True),
        ("a.c", "abc", False, False),
        ("a+", "aa", False, False),
        ("a\\*", "a\\xyz", False, True),
        ("line", "line\nbreak", False, False),
    ],
)
def test_wildcard_match(pattern: str, value: str, ignore_case: bool, expected: bool) -> None:
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is expected


def test_parse_document_forms() -> None:
    d = doc(allow(arn("u")))
    assert parse_document(d) is d
    assert parse_document(json.dumps(d)) == d
    from urllib.parse import quote

    assert parse_document(quote(json.dumps(d))) == d
    with pytest.raises(PolicyDocumentError):
        parse_document("{not json")
    with pytest.raises(PolicyDocumentError):
        parse_document("[1, 2]")


def test_string_document_is_evaluated() -> None:
    pol = NamedPolicy("text", None, json.dumps(doc(allow(arn("u")))))  # type: ignore[arg-type]
    assert evaluate([pol], CONNECT_ACTION, arn("u")).allowed


def test_dbuser_arn() -> None:
    assert dbuser_arn("us-east-2", "111111111111", "db-XYZ", "pgmonitor") == (
        "arn:aws:rds-db:us-east-2:111111111111:dbuser:db-XYZ/pgmonitor"
    )
