"""The stand-in's own IAM evaluator on the rules and examples AWS documents.

Each case names its page under https://docs.aws.amazon.com/IAM/latest/UserGuide/ (or the full address).
"""

from __future__ import annotations

from typing import Any

import pytest
from pgiam_sandbox.iam_eval import (
    CONNECT_ACTION,
    Caller,
    Policy,
    Request,
    dbuser_arn,
    evaluate,
    evaluate_with_session,
    load_document,
    partition_of_region,
    resource_matches,
    trust_allows,
)

ACCT = "111122223333"
RESOURCE = f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:db-ABCDEFGHIJKL01234/db_user"


def policy(*statements: dict[str, Any], version: str = "2012-10-17") -> Policy:
    return Policy("p", {"Version": version, "Statement": list(statements)})


def allow(resource: Any = RESOURCE, action: Any = CONNECT_ACTION, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def connect(*policies: Policy, resource: str = RESOURCE, **context: Any) -> bool:
    ctx = {k.replace("__", ":").replace("_slash_", "/"): v for k, v in context.items()}
    return evaluate(list(policies), Request(CONNECT_ACTION, resource, ctx)).allowed


# -- evaluation logic: reference_policies_evaluation-logic.html ---------------------------------------------


def test_the_rds_documented_policy_allows_its_user_only() -> None:
    # UsingWithRDS.IAMDBAuth.IAMPolicy.html: the example policy for db_user on one instance
    doc = policy(allow())
    assert connect(doc)
    assert not connect(doc, resource=RESOURCE.replace("db_user", "other_user"))
    assert not connect(doc, resource=RESOURCE.replace("db_user", "DB_USER"))  # resources are case-sensitive


def test_explicit_deny_wins_and_names_its_policy() -> None:
    # reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
    deny = Policy("deny-all", {"Statement": [{"Effect": "Deny", "Action": "rds-db:*", "Resource": "*"}]})
    outcome = evaluate([policy(allow()), deny], Request(CONNECT_ACTION, RESOURCE))
    assert not outcome.allowed and outcome.deny_policies == ("deny-all",)
    implicit = evaluate([], Request(CONNECT_ACTION, RESOURCE))
    assert not implicit.allowed and not implicit.explicit_deny


def test_actions_are_case_insensitive_with_wildcards() -> None:
    # reference_policies_elements_action.html: "Action values are not case sensitive"
    for action in ("RDS-DB:Connect", "rds-db:*", "rds-db:conn?ct", "*"):
        assert connect(policy(allow(action=action))), action
    assert not connect(policy(allow(action="rds:*")))


def test_not_action_and_not_resource() -> None:
    # reference_policies_elements_notresource.html: the HRPayroll deny, with an rds-db resource
    deny_others = {"Effect": "Deny", "Action": "rds-db:connect", "NotResource": RESOURCE}
    assert connect(policy(allow("*"), deny_others))
    assert not connect(policy(allow("*"), deny_others), resource=RESOURCE + "x")
    # reference_policies_elements_notaction.html: NotAction with Allow allows everything else
    assert connect(policy({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}))
    assert not connect(policy({"Effect": "Allow", "NotAction": "rds-db:*", "Resource": "*"}))


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        # reference_policies_elements_resource.html#reference_policies_elements_resource_wildcards
        (f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:*/db_user", True),
        ("arn:aws:rds-db:*", True),  # a `*` ending a segment runs on across colons
        (f"arn:aws:rds-db:us-*-2:{ACCT}:dbuser:db-ABCDEFGHIJKL01234/db_user", True),
        (f"arn:aws:rds-db:us-east-?:{ACCT}:dbuser:db-ABCDEFGHIJKL01234/db_user", True),
        # inside a segment a `*` or `?` does not cross a colon
        ("arn:aws:rds-db:u*3:dbuser:db-ABCDEFGHIJKL01234/db_user", False),
        (f"arn:aws:rds-db:us-east-2?{ACCT}:dbuser:db-ABCDEFGHIJKL01234/db_user", False),
        # in the resource part (after the fifth colon) it does
        (f"arn:aws:rds-db:us-east-2:{ACCT}:*/db_user", True),
        (f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser?db-ABCDEFGHIJKL01234/db_user", True),
        (f"arn:aws-cn:rds-db:us-east-2:{ACCT}:dbuser:*/db_user", False),  # partitions differ
        ("*", True),
    ],
)
def test_resource_wildcards_per_segment(pattern: str, matches: bool) -> None:
    assert resource_matches(pattern, RESOURCE) is matches


def test_policy_variables_need_the_2012_version_and_a_value() -> None:
    # reference_policies_variables.html
    doc = policy(allow(f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:*/${{aws:username}}"))
    assert connect(doc, aws__username="db_user")
    assert not connect(doc, aws__username="someone")
    assert not connect(doc)  # no value: the pattern matches nothing
    with_default = policy(allow(f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:*/${{aws:username, 'db_user'}}"))
    assert connect(with_default)
    old = policy(allow(f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:*/${{aws:username}}"), version="2008-10-17")
    assert not connect(old, aws__username="db_user")  # `${` is literal text before 2012-10-17
    star = policy(allow(f"arn:aws:rds-db:us-east-2:{ACCT}:dbuser:*/${{*}}"))
    assert not connect(star)  # `${*}` is a literal asterisk, not a wildcard
    assert connect(star, resource=RESOURCE.replace("db_user", "*"))


# -- conditions: reference_policies_elements_condition_operators.html ----------------------------------------


def test_missing_key_is_false_but_true_for_negated_operators_and_if_exists() -> None:
    def with_cond(cond: dict[str, Any]) -> Policy:
        return policy(allow(Condition=cond))

    assert not connect(with_cond({"StringEquals": {"aws:PrincipalTag/team": "dba"}}))
    assert connect(with_cond({"StringNotEquals": {"aws:PrincipalTag/team": "dev"}}))
    assert connect(with_cond({"StringEqualsIfExists": {"aws:PrincipalTag/team": "dba"}}))
    assert connect(with_cond({"Null": {"aws:PrincipalTag/team": "true"}}))
    assert not connect(with_cond({"Null": {"aws:PrincipalTag/team": "false"}}))
    # condition key names are case-insensitive, values of StringEquals are not
    assert connect(
        with_cond({"StringEquals": {"AWS:principaltag/TEAM": "dba"}}), aws__PrincipalTag_slash_team="dba"
    )
    assert not connect(
        with_cond({"StringEquals": {"aws:PrincipalTag/team": "dba"}}), aws__PrincipalTag_slash_team="DBA"
    )


def test_several_values_or_and_several_keys_and() -> None:
    # reference_policies_multi-value-conditions.html: values OR, keys AND, negated values NOR
    cond = {"StringEquals": {"aws:PrincipalTag/team": ["dba", "ops"], "aws:PrincipalTag/env": "prod"}}
    doc = policy(allow(Condition=cond))
    assert connect(doc, aws__PrincipalTag_slash_team="ops", aws__PrincipalTag_slash_env="prod")
    assert not connect(doc, aws__PrincipalTag_slash_team="ops", aws__PrincipalTag_slash_env="dev")
    nor = policy(allow(Condition={"StringNotEquals": {"aws:PrincipalTag/team": ["dev", "test"]}}))
    assert connect(nor, aws__PrincipalTag_slash_team="dba")
    assert not connect(nor, aws__PrincipalTag_slash_team="test")


@pytest.mark.parametrize(
    ("operator", "key", "value", "context", "holds"),
    [
        ("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.7", True),
        ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.1", True),
        ("IpAddress", "aws:SourceIp", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", True),
        ("DateLessThan", "aws:CurrentTime", "2013-06-30T00:00:00Z", "2013-06-29T12:00:00Z", True),
        ("DateGreaterThan", "aws:CurrentTime", "2013-06-30T00:00:00Z", "2013-06-29T12:00:00Z", False),
        ("NumericLessThanEquals", "aws:MultiFactorAuthAge", "3600", "3600", True),
        ("Bool", "aws:SecureTransport", "true", "false", False),
        ("Bool", "aws:SecureTransport", True, "true", True),
        ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/dba-*", f"arn:aws:iam::{ACCT}:role/dba-1", True),
        ("ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/dba-*", f"arn:aws:iam::{ACCT}:user/x", True),
        ("StringLike", "aws:userid", "AIDA*", "AIDAEXAMPLE", True),
        ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a"], True),
        ("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], ["a", "c"], False),
        ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c", "b"], True),
        ("NoSuchOperator", "aws:userid", "x", "x", False),  # unknown operators fail closed
    ],
)
def test_condition_operators(operator: str, key: str, value: Any, context: Any, holds: bool) -> None:
    doc = policy(allow(Condition={operator: {key: value}}))
    assert evaluate([doc], Request(CONNECT_ACTION, RESOURCE, {key: context})).allowed is holds


# -- sessions, trust, partitions ---------------------------------------------------------------------------


def test_a_session_policy_narrows_the_role() -> None:
    role = [policy(allow("*"))]
    narrow = [Policy("session-policy", {"Statement": [allow(RESOURCE.replace("db_user", "x"))]})]
    assert not evaluate_with_session(role, narrow, Request(CONNECT_ACTION, RESOURCE)).allowed
    assert evaluate_with_session(role, [], Request(CONNECT_ACTION, RESOURCE)).allowed


ROLE = f"arn:aws:iam::{ACCT}:role/pg-role"
ALICE = Caller(f"arn:aws:iam::{ACCT}:user/alice", (f"arn:aws:iam::{ACCT}:user/alice",), ACCT)
STRANGER = Caller(
    "arn:aws:iam::444455556666:user/bob", ("arn:aws:iam::444455556666:user/bob",), "444455556666"
)


def trust(principal: Any, effect: str = "Allow") -> dict[str, Any]:
    return {"Statement": [{"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}]}


def test_trust_naming_the_caller_is_enough_in_the_same_account() -> None:
    # reference_policies_evaluation-logic.html (resource-based policy naming the principal)
    assert trust_allows(trust({"AWS": ALICE.arn}), ROLE, ALICE, []).allowed
    # naming the account delegates to the account: the caller's own policy must allow
    assert not trust_allows(trust({"AWS": ACCT}), ROLE, ALICE, []).allowed
    may_assume = [policy(allow(ROLE, action="sts:AssumeRole"))]
    assert trust_allows(trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), ROLE, ALICE, may_assume).allowed


def test_cross_account_needs_both_sides_and_deny_wins() -> None:
    # reference_policies_evaluation-logic-cross-account.html
    may_assume = [policy(allow(ROLE, action="sts:AssumeRole"))]
    assert not trust_allows(trust({"AWS": STRANGER.arn}), ROLE, STRANGER, []).allowed
    assert trust_allows(trust({"AWS": STRANGER.arn}), ROLE, STRANGER, may_assume).allowed
    assert not trust_allows(
        trust({"AWS": "arn:aws:iam::999999999999:root"}), ROLE, STRANGER, may_assume
    ).allowed
    denied = [*may_assume, policy({"Effect": "Deny", "Action": "sts:*", "Resource": "*"})]
    assert not trust_allows(trust({"AWS": ALICE.arn}), ROLE, ALICE, denied).allowed
    assert not trust_allows(trust({"AWS": "*"}, effect="Deny"), ROLE, ALICE, may_assume).allowed


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        # https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html
        ("us-east-1", "aws"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_partitions(region: str, partition: str) -> None:
    assert partition_of_region(region) == partition
    assert dbuser_arn(region, ACCT, "cluster-X", "u").startswith(f"arn:{partition}:rds-db:{region}:")


def test_documents_as_the_iam_api_returns_them() -> None:
    assert load_document("%7B%22Statement%22%3A%5B%5D%7D") == {"Statement": []}
    assert load_document("not json") is None
    assert load_document("[1]") is None
