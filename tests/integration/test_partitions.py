"""Every partition end to end: the product signs, the stand-in verifies and authorizes (moto in-process).

A China (aws-cn) and a GovCloud (aws-us-gov) database each get an IAM user in their own partition whose policy
names the partition's rds-db ARN. The product's token for the endpoint (host name as AWS publishes it for that
partition) must be accepted by the stand-in's token check and its own evaluator; a policy naming the `aws`
partition must not grant it, and a token for another region is never made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pgiam_sandbox.token_check import TokenTarget, TokenVerifier

from helpers.moto_server import policy_document, running_moto
from pgiam_tui.aws.endpoints import endpoint_region
from pgiam_tui.aws.errors import DiscoveryError
from pgiam_tui.aws.policy import dbuser_arn
from pgiam_tui.aws.tokens import make_token

ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with running_moto() as url:
        yield url


def _client(service: str, url: str, region: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=region, endpoint_url=url, aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )  # fmt: skip


# Host name layouts from AWS's own driver tests (aws/aws-advanced-dotnet-data-provider-wrapper,
# AwsWrapperDataProvider.Tests/Driver/Utils/RdsUtilsTests.cs); only the instance name is ours.
PLACES = [
    ("cn-northwest-1", "{name}.XYZ.rds.cn-northwest-1.amazonaws.com.cn", "aws-cn"),
    ("us-gov-west-1", "{name}.123456789012.rds.us-gov-west-1.amazonaws.com", "aws-us-gov"),
]


@pytest.mark.parametrize(("region", "layout", "partition"), PLACES)
def test_a_login_in_another_partition(moto_url: str, region: str, layout: str, partition: str) -> None:
    sfx = uuid.uuid4().hex[:8]
    rds = _client("rds", moto_url, region)
    iam = _client("iam", moto_url, region)  # IAM of the region's partition
    instance_id = f"pgpart-{sfx}"
    inst = rds.create_db_instance(
        DBInstanceIdentifier=instance_id, Engine="postgres", DBInstanceClass="db.t3.micro",
        MasterUsername="postgres", MasterUserPassword="postgres-pw", AllocatedStorage=20,
        EnableIAMDatabaseAuthentication=True,
    )["DBInstance"]  # fmt: skip
    host = layout.format(name=instance_id)
    assert endpoint_region(host) == region
    user = f"dba-{sfx}"
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    assert arn.startswith(f"arn:{partition}:iam::")
    resource = dbuser_arn(region, ACCOUNT, inst["DbiResourceId"], "pgmonitor")
    assert resource.startswith(f"arn:{partition}:rds-db:{region}:")
    iam.put_user_policy(UserName=user, PolicyName="connect", PolicyDocument=policy_document(resource))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    target = TokenTarget(ACCOUNT, region, None, instance_id, (host,))
    verifier = TokenVerifier()

    token = make_token(session, host.upper(), 5432, "pgmonitor", region)  # any letter case
    verdict = verifier.verify(token.value, "pgmonitor", target)
    assert verdict.ok, verdict.reason
    assert verdict.resource_arn == resource and verdict.caller_arn == arn

    # The same grant written in the `aws` partition does not reach this database.
    iam.put_user_policy(
        UserName=user,
        PolicyName="connect",
        PolicyDocument=policy_document(resource.replace(partition, "aws", 1)),
    )
    verdict = verifier.verify(make_token(session, host, 5432, "pgmonitor", region).value, "pgmonitor", target)
    assert not verdict.ok and verdict.error_code == "NotAuthorized", verdict.reason

    # A token for another region than the endpoint's is refused before anything is signed.
    with pytest.raises(DiscoveryError, match=f"is in region {region}, but the token request says us-east-1"):
        make_token(session, host, 5432, "pgmonitor", "us-east-1")
