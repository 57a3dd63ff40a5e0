"""Pure parts of the check's IAM evidence: AWS's iam-db-auth-error lines and the policy mismatch sentences."""

from __future__ import annotations

import json

from pgiam_tui.aws.policy import NamedPolicy
from pgiam_tui.diagnose import CAUSES, STEP_NAMES, CheckResult, CheckStep, result_to_json
from pgiam_tui.diagnose.iam_evidence import analyse_policies, parse_iam_log_line, principal_of
from pgiam_tui.vocabulary import CheckCause

EXPECTED = "arn:aws:rds-db:us-east-1:111111111111:dbuser:cluster-ABC123/pgmonitor"


def _policy(name: str, resource: str, effect: str = "Allow") -> NamedPolicy:
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": "rds-db:connect", "Resource": resource}],
    }
    return NamedPolicy(name, f"arn:aws:iam::111111111111:policy/{name}", doc)


def test_parse_documented_lines() -> None:
    line = parse_iam_log_line(
        "2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' "
        "because the provided token is malformed or otherwise invalid. "
        "(Status Code: 400, Error Code: InvalidToken)"
    )
    assert line is not None and line.code == "InvalidToken" and line.user == "user_2"
    denied = parse_iam_log_line(
        "2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'pgmonitor' "
        "because the IAM policy assumed by the caller "
        "'arn:aws:sts::111111111111:assumed-role/pg-monitor-role/s1' "
        "is not authorized to perform `rds-db:connect` on the DB instance. (Status Code: 403, Error Code: "
        "NotAuthorized)\x1b[2J"
    )
    assert denied is not None and denied.code == "NotAuthorized"
    assert denied.caller_arn == "arn:aws:sts::111111111111:assumed-role/pg-monitor-role/s1"
    assert denied.message.endswith("NotAuthorized)\x1b[2J")  # kept as written: outputs escape it once
    assert parse_iam_log_line("LOG: connection received: host=1.2.3.4") is None


def test_principal_of_caller_arns() -> None:
    role = principal_of("arn:aws:sts::111111111111:assumed-role/pg-monitor-role/botocore-session-1")
    assert role is not None and (role.kind, role.name, role.account_id) == (
        "role",
        "pg-monitor-role",
        "111111111111",
    )
    user = principal_of("arn:aws:iam::111111111111:user/ops/alice")
    assert user is not None and (user.kind, user.name) == ("user", "alice")
    assert principal_of("arn:aws:iam::111111111111:root") is None


def test_cluster_identifier_instead_of_resource_id_is_named() -> None:
    finding = analyse_policies(
        [_policy("pg-db-monitor-policy", "arn:aws:rds-db:us-east-1:111111111111:dbuser:pgdemo-1/pgmonitor")],
        EXPECTED,
        ("pgdemo-1",),
    )
    assert not finding.allowed
    assert finding.mismatch_policy == "pg-db-monitor-policy"
    assert finding.mismatch is not None
    assert "cluster identifier 'pgdemo-1'" in finding.mismatch and "cluster-ABC123" in finding.mismatch


def test_other_mismatches_and_allow_and_deny() -> None:
    wrong_region = analyse_policies(
        [_policy("p", "arn:aws:rds-db:us-east-2:111111111111:dbuser:*/pgmonitor")], EXPECTED, ()
    )
    assert wrong_region.mismatch is not None and "region 'us-east-2'" in wrong_region.mismatch
    wrong_user = analyse_policies(
        [_policy("p", "arn:aws:rds-db:us-east-1:111111111111:dbuser:cluster-ABC123/someone")], EXPECTED, ()
    )
    assert wrong_user.mismatch is not None and "database user 'someone'" in wrong_user.mismatch
    wildcard = analyse_policies(
        [_policy("p", "arn:aws:rds-db:us-east-1:111111111111:dbuser:*/pgmonitor")], EXPECTED, ()
    )
    assert wildcard.allowed and wildcard.mismatch is None
    denied = analyse_policies(
        [_policy("allow", "*"), _policy("deny", "arn:aws:rds-db:*:*:dbuser:*/pgmonitor", "Deny")],
        EXPECTED,
        (),
    )
    assert denied.explicit_deny and denied.deny_policy == "deny"
    nothing = analyse_policies([], EXPECTED, ())
    assert nothing.mismatch == "no statement in 0 policies grants rds-db:connect"


def test_json_shape_of_a_result() -> None:
    steps = tuple(CheckStep(n, "ok", 1.0, f"{n} fine") for n in STEP_NAMES)
    result = CheckResult("c", True, steps, connected=True)
    data = result_to_json(result)
    assert data["cluster"] == "c" and data["ok"] is True
    assert [s["name"] for s in data["steps"]] == list(STEP_NAMES)
    assert set(data["steps"][0]) >= {"name", "status", "ms", "detail", "hint"}
    assert {"cause", "fix", "evidence", "evidence_source"} <= set(data)


def test_every_cause_has_a_sentence_and_is_serialised_as_its_code() -> None:
    assert set(CAUSES) == set(CheckCause)
    assert all(CAUSES[c] and CAUSES[c] != c.value for c in CheckCause)
    step = CheckStep("tls", "failed", 1.0, "handshake failed", cause=CheckCause.TLS_ERROR)
    result = CheckResult("c", False, (step,), cause=CheckCause.NO_POLICY, candidates=("no_policy: why",))
    text = json.dumps(result_to_json(result))
    # the JSON contract is the code as a plain string, exactly as before the enum
    assert json.loads(text)["cause"] == "no_policy" and '"cause": "no_policy"' in text
    assert '"cause": "tls_error"' in text
