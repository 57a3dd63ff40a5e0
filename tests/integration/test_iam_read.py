"""IAM inventory over moto's server (real boto3 over HTTP), Access Advisor and CloudTrail via Stubber (moto
lacks them), IamDbAuthConnection* metrics over moto's CloudWatch."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
import pytest
from botocore.stub import Stubber

from helpers.moto_server import moto_session, running_moto
from helpers.moto_server import policy_document as _doc
from pgiam_tui.aws.cloudtrail import lookup_assume_role_events
from pgiam_tui.aws.iam_read import IamReadError, last_used_rds_db, read_inventory
from pgiam_tui.aws.metrics import IAM_METRICS, fetch_iam_metrics
from pgiam_tui.aws.policy import CONNECT_ACTION, evaluate

REGION = "us-east-1"
JOB = "00000000-0000-0000-0000-000000000002"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server of this module's own (real HTTP), stopped at the end."""
    with running_moto() as url:
        yield url


@pytest.fixture()
def session(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    return moto_session(moto_url, monkeypatch, REGION)


def test_inventory_users_groups_roles_inline_and_managed(session: boto3.Session) -> None:
    iam = session.client("iam")
    tag = uuid.uuid4().hex[:6]
    arn = f"arn:aws:rds-db:{REGION}:123456789012:dbuser:cluster-ABC/"
    managed = iam.create_policy(PolicyName=f"rw-{tag}", PolicyDocument=_doc(arn + "oltp_rw_user"))["Policy"][
        "Arn"
    ]
    # a second version becomes the default: the inventory must use it, not v1
    iam.create_policy_version(
        PolicyArn=managed, PolicyDocument=_doc(arn + "oltp_rw_user_v2"), SetAsDefault=True
    )
    iam.create_group(GroupName=f"g-{tag}")
    iam.put_group_policy(
        GroupName=f"g-{tag}", PolicyName="grp-inline", PolicyDocument=_doc(arn + "from_group")
    )
    iam.create_user(UserName=f"alice-{tag}")
    iam.add_user_to_group(GroupName=f"g-{tag}", UserName=f"alice-{tag}")
    iam.put_user_policy(UserName=f"alice-{tag}", PolicyName="own", PolicyDocument=_doc(arn + "alice"))
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}
            ],
        }
    )
    iam.create_role(RoleName=f"r-{tag}", AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName=f"r-{tag}", PolicyArn=managed)

    inv = read_inventory(iam)
    assert inv.account_id == "123456789012"
    by_name = {p.name: p for p in inv.principals}
    alice = by_name[f"alice-{tag}"]
    assert alice.kind == "user"
    assert {p.name for p in alice.policies} == {f"user/alice-{tag}/own", f"group/g-{tag}/grp-inline"}
    assert evaluate(alice.policies, CONNECT_ACTION, arn + "from_group").allowed
    role = by_name[f"r-{tag}"]
    assert role.kind == "role" and role.arn.endswith(f":role/r-{tag}")
    assert {p.name for p in role.policies} == {f"rw-{tag}"}
    assert evaluate(role.policies, CONNECT_ACTION, arn + "oltp_rw_user_v2").allowed
    assert not evaluate(role.policies, CONNECT_ACTION, arn + "oltp_rw_user").allowed
    assert inv.unreadable_policies == ()


def test_inventory_fetches_attached_aws_managed_policies_one_by_one() -> None:
    """AWS managed policies are not listed (a thousand documents); the attached ones are fetched."""
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    admin = "arn:aws:iam::aws:policy/AdministratorAccess-Test"
    now = datetime(2025, 1, 1, tzinfo=UTC)
    role = {
        "RoleName": "admin",
        "Arn": "arn:aws:iam::111111111111:role/admin",
        "Path": "/",
        "RoleId": "AROAEXAMPLEROLEID1",
        "CreateDate": now,
        "AttachedManagedPolicies": [
            {"PolicyName": "AdministratorAccess-Test", "PolicyArn": admin},
            {"PolicyName": "Gone", "PolicyArn": "arn:aws:iam::aws:policy/Gone"},
        ],
    }
    with Stubber(iam) as stub:
        stub.add_response(
            "get_account_authorization_details",
            {"RoleDetailList": [role], "IsTruncated": False},
            {"Filter": ["User", "Role", "Group", "LocalManagedPolicy"]},
        )
        stub.add_response(
            "get_policy",
            {"Policy": {"PolicyName": "AdministratorAccess-Test", "Arn": admin, "DefaultVersionId": "v3"}},
            {"PolicyArn": admin},
        )
        stub.add_response(
            "get_policy_version",
            {
                "PolicyVersion": {
                    "VersionId": "v3",
                    "IsDefaultVersion": True,
                    "Document": _doc("*", action="*"),
                }
            },
            {"PolicyArn": admin, "VersionId": "v3"},
        )
        stub.add_client_error("get_policy", service_error_code="NoSuchEntity", http_status_code=404)
        inv = read_inventory(iam)
        stub.assert_no_pending_responses()
    (p,) = inv.principals
    assert [x.name for x in p.policies] == ["AdministratorAccess-Test"]
    assert evaluate(p.policies, CONNECT_ACTION, "arn:aws:rds-db:us-east-1:1:dbuser:cluster-X/u").allowed
    assert inv.unreadable_policies == ("Gone",)


def test_inventory_access_denied_names_the_permission() -> None:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(iam) as stub:
        stub.add_client_error(
            "get_account_authorization_details",
            service_error_code="AccessDenied",
            service_message="User: arn:aws:sts::1:assumed-role/m/s is not authorized",
            http_status_code=403,
        )
        with pytest.raises(IamReadError) as err:
            read_inventory(iam)
    assert err.value.denied
    assert err.value.permission == "iam:GetAccountAuthorizationDetails"
    assert "AccessDenied" in str(err.value)


def test_access_advisor_polls_until_completed() -> None:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    arn = "arn:aws:iam::111111111111:role/pg-monitor-role"
    last = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    sleeps: list[float] = []
    common = {"JobCreationDate": last, "JobCompletionDate": last}
    with Stubber(iam) as stub:
        stub.add_response(
            "generate_service_last_accessed_details",
            {"JobId": "00000000-0000-0000-0000-000000000001"},
            {"Arn": arn},
        )
        stub.add_response(
            "get_service_last_accessed_details",
            {"JobStatus": "IN_PROGRESS", "ServicesLastAccessed": [], **common},
            {"JobId": "00000000-0000-0000-0000-000000000001"},
        )
        stub.add_response(
            "get_service_last_accessed_details",
            {
                "JobStatus": "COMPLETED",
                **common,
                "ServicesLastAccessed": [
                    {
                        "ServiceName": "AWS STS",
                        "ServiceNamespace": "sts",
                        "LastAuthenticated": last + timedelta(1),
                    },
                    {
                        "ServiceName": "Amazon RDS IAM Authentication",
                        "ServiceNamespace": "rds-db",
                        "LastAuthenticated": last,
                    },
                ],
            },
            {"JobId": "00000000-0000-0000-0000-000000000001"},
        )
        advice = last_used_rds_db(iam, arn, sleep=sleeps.append)
        stub.assert_no_pending_responses()
    assert advice.last_used == last
    assert sleeps == [0.5]


def test_access_advisor_never_used_and_denied() -> None:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    arn = "arn:aws:iam::111111111111:user/old"
    now = datetime(2025, 9, 1, tzinfo=UTC)
    with Stubber(iam) as stub:
        stub.add_response("generate_service_last_accessed_details", {"JobId": JOB}, {"Arn": arn})
        stub.add_response(
            "get_service_last_accessed_details",
            {
                "JobStatus": "COMPLETED",
                "JobCreationDate": now,
                "JobCompletionDate": now,
                "ServicesLastAccessed": [
                    {"ServiceName": "Amazon RDS IAM Authentication", "ServiceNamespace": "rds-db"}
                ],
            },
            {"JobId": JOB},
        )
        assert last_used_rds_db(iam, arn, sleep=lambda _: None).last_used is None
        stub.add_client_error(
            "generate_service_last_accessed_details", service_error_code="AccessDenied", http_status_code=403
        )
        with pytest.raises(IamReadError) as err:
            last_used_rds_db(iam, arn, sleep=lambda _: None)
        assert err.value.permission == "iam:GenerateServiceLastAccessedDetails"


def test_cloudtrail_assume_role_events_filtered_by_role() -> None:
    ct = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    role = "arn:aws:iam::111111111111:role/pg-monitor-role"
    now = datetime(2025, 9, 22, 12, 0, tzinfo=UTC)

    def event(i: int, role_arn: str, ip: str) -> dict[str, Any]:
        detail = {
            "eventName": "AssumeRole",
            "sourceIPAddress": ip,
            "userIdentity": {
                "type": "AssumedRole",
                "accountId": "222222222222",
                "arn": "arn:aws:sts::222222222222:assumed-role/pg-mgmt-role/i-0abc",
            },
            "requestParameters": {"roleArn": role_arn, "roleSessionName": "s"},
        }
        return {
            "EventId": f"e{i}",
            "EventName": "AssumeRole",
            "EventTime": now - timedelta(minutes=i),
            "CloudTrailEvent": json.dumps(detail),
        }

    expected = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}],
        "StartTime": now - timedelta(hours=24),
        "EndTime": now,
    }
    with Stubber(ct) as stub:
        stub.add_response(
            "lookup_events",
            {
                "Events": [event(5, role, "10.1.1.1"), event(1, "arn:aws:iam::111111111111:role/other", "x")],
                "NextToken": "t",
            },
            expected,
        )
        stub.add_response(
            "lookup_events",
            {"Events": [event(2, role, "10.2.2.2"), {"EventId": "bad", "CloudTrailEvent": "{not json"}]},
            {**expected, "NextToken": "t"},
        )
        got = lookup_assume_role_events(ct, role, now=now)
        stub.assert_no_pending_responses()
    assert [(e.source_ip, e.source_account, e.time) for e in got] == [
        ("10.2.2.2", "222222222222", now - timedelta(minutes=2)),
        ("10.1.1.1", "222222222222", now - timedelta(minutes=5)),
    ]
    assert got[0].principal_arn == "arn:aws:sts::222222222222:assumed-role/pg-mgmt-role/i-0abc"


def test_iam_metrics_from_cloudwatch(session: boto3.Session) -> None:
    cw = session.client("cloudwatch")
    inst = f"db-{uuid.uuid4().hex[:6]}"
    # two minutes past a period boundary: the window is [now - 57 min, now + 3 min), 12 slots of 5 minutes
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 5 - 2 + (5 if now.minute % 5 < 2 else 0))
    data: list[MetricDatumTypeDef] = []
    for minutes_ago, name, value in [
        (50, "IamDbAuthConnectionRequests", 3),
        (10, "IamDbAuthConnectionRequests", 2),
        (10, "IamDbAuthConnectionFailureInvalidToken", 1),
        (10, "IamDbAuthConnectionSuccess", 4),
        # the current minute (RDS stamps a datapoint with its minute's start) is part of the last hour
        (0, "IamDbAuthConnectionRequests", 7),
        (70, "IamDbAuthConnectionRequests", 100),  # older than the hour: left out
    ]:
        data.append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": inst}],
                "Timestamp": now - timedelta(minutes=minutes_ago),
                "Value": value,
                "Unit": "Count",
            }
        )
    # a datapoint of another instance must not leak in
    data.append({**data[0], "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": inst + "-other"}]})
    cw.put_metric_data(Namespace="AWS/RDS", MetricData=data)
    (m, quiet) = fetch_iam_metrics(cw, [inst, inst + "-quiet"], now=now + timedelta(seconds=30))
    assert m.instance == inst
    assert m.totals == {"requests": 12.0, "failure_invalid_token": 1.0, "success": 4.0}
    assert len(m.series["requests"]) == 12 and sum(m.series["requests"]) == 12.0
    # slots start at now - 57 min: -50 min is slot 1, -10 min slot 9, the current minute the last
    assert (m.series["requests"][1], m.series["requests"][9], m.series["requests"][11]) == (3.0, 2.0, 7.0)
    assert quiet.totals == {} and quiet.series == {}
    assert len(IAM_METRICS) == 7


_QUIET_MOTO = """
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

from pgiam_sandbox.fake_aws import MotoServer

server = MotoServer(log_file=Path(sys.argv[1]))
server.start()
try:
    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))
    try:
        iam.generate_service_last_accessed_details(Arn="arn:aws:iam::123456789012:role/x")
    except Exception as exc:
        print("client saw", type(exc).__name__)
    # werkzeug logs the error after it has answered 500: wait for it (bounded; not a timing assertion)
    for _ in range(600):
        if server.errors:
            break
        time.sleep(0.05)
    print("errors", server.errors)
finally:
    server.stop()
"""


def test_sandbox_moto_keeps_its_tracebacks_in_its_log_file(tmp_path: Path) -> None:
    """An action moto lacks: werkzeug's traceback goes to moto.log, nothing to the terminal (a real process,
    as `sandbox up` and the demo run it: no pytest log capture in between)."""
    log_file = tmp_path / "moto.log"
    out = subprocess.run(
        [sys.executable, "-c", _QUIET_MOTO, str(log_file)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "client saw" in out.stdout and "errors 1" in out.stdout, out.stdout
    assert "Traceback" not in out.stderr and "Error on request" not in out.stderr, out.stderr[-2000:]
    text = log_file.read_text(encoding="utf-8")
    assert "ERROR Error on request" in text and "generate_service_last_accessed_details" in text
