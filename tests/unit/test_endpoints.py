"""RDS endpoint host names as AWS publishes them: region, partition and kind read by one parser.

Sources (named again beside each case):
- AURORA_TYPES: Aurora User Guide, "Types of Aurora endpoints",
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.Types.html
- AURORA_CUSTOM: Aurora User Guide, "Amazon Aurora custom endpoints" (AWS CLI examples),
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.Custom.html
- AWS_WRAPPER: AWS's own driver tests, aws/aws-advanced-dotnet-data-provider-wrapper,
  AwsWrapperDataProvider.Tests/Driver/Utils/RdsUtilsTests.cs ("copied from aws-advanced-jdbc-wrapper"):
  RDS Proxy, China (new and old layout), GovCloud, ISO partitions, upper-case names.
"""

from __future__ import annotations

import boto3
import pytest

from pgiam_tui.aws.discovery import region_of
from pgiam_tui.aws.endpoints import endpoint_region, parse_rds_endpoint, partition_of_region
from pgiam_tui.aws.errors import DiscoveryError
from pgiam_tui.aws.policy import dbuser_arn
from pgiam_tui.aws.tokens import make_token
from pgiam_tui.config import ClusterConfig

AURORA_TYPES = "AURORA_TYPES"
AURORA_CUSTOM = "AURORA_CUSTOM"
AWS_WRAPPER = "AWS_WRAPPER"

PUBLISHED = [
    # (source, host, kind, name, region, partition)
    (AURORA_TYPES, "mydbcluster.cluster-c7tj4example.us-east-1.rds.amazonaws.com", "cluster", "mydbcluster",
     "us-east-1", "aws"),
    (AURORA_TYPES, "mydbcluster.cluster-ro-c7tj4example.us-east-1.rds.amazonaws.com", "reader", "mydbcluster",
     "us-east-1", "aws"),
    (AURORA_TYPES, "myendpoint.cluster-custom-c7tj4example.us-east-1.rds.amazonaws.com", "custom",
     "myendpoint", "us-east-1", "aws"),
    (AURORA_TYPES, "mydbinstance.c7tj4example.us-east-1.rds.amazonaws.com", "instance", "mydbinstance",
     "us-east-1", "aws"),
    (AURORA_CUSTOM, "big-instances.cluster-custom-c7tj4example.ca-central-1.rds.amazonaws.com", "custom",
     "big-instances", "ca-central-1", "aws"),
    (AWS_WRAPPER, "proxy-test-name.proxy-XYZ.us-east-2.rds.amazonaws.com", "proxy", "proxy-test-name",
     "us-east-2", "aws"),
    (AWS_WRAPPER, "database-test-name.shardgrp-XYZ.us-east-2.rds.amazonaws.com", "shard-group",
     "database-test-name", "us-east-2", "aws"),
    (AWS_WRAPPER, "database-test-name.cluster-XYZ.rds.cn-northwest-1.amazonaws.com.cn", "cluster",
     "database-test-name", "cn-northwest-1", "aws-cn"),
    (AWS_WRAPPER, "database-test-name.cluster-ro-XYZ.rds.cn-northwest-1.amazonaws.com.cn", "reader",
     "database-test-name", "cn-northwest-1", "aws-cn"),
    (AWS_WRAPPER, "custom-test-name.cluster-custom-XYZ.rds.cn-northwest-1.amazonaws.com.cn", "custom",
     "custom-test-name", "cn-northwest-1", "aws-cn"),
    (AWS_WRAPPER, "instance-test-name.XYZ.rds.cn-northwest-1.amazonaws.com.cn", "instance",
     "instance-test-name", "cn-northwest-1", "aws-cn"),
    (AWS_WRAPPER, "proxy-test-name.proxy-XYZ.rds.cn-northwest-1.amazonaws.com.cn", "proxy", "proxy-test-name",
     "cn-northwest-1", "aws-cn"),
    (AWS_WRAPPER, "database-test-name.cluster-XYZ.cn-northwest-1.rds.amazonaws.com.cn", "cluster",
     "database-test-name", "cn-northwest-1", "aws-cn"),  # the older China layout
    (AWS_WRAPPER, "mydb.123456789012.rds.cn-north-1.amazonaws.com.cn", "instance", "mydb", "cn-north-1",
     "aws-cn"),
    (AWS_WRAPPER, "mydb.cluster-123456789012.rds.us-gov-west-1.amazonaws.com", "cluster", "mydb",
     "us-gov-west-1", "aws-us-gov"),
    (AWS_WRAPPER, "mydb.proxy-123456789012.rds.us-gov-west-1.amazonaws.com", "proxy", "mydb", "us-gov-west-1",
     "aws-us-gov"),
    (AWS_WRAPPER, "database-test-name.cluster-XYZ.rds.us-gov-east-1.amazonaws.com", "cluster",
     "database-test-name", "us-gov-east-1", "aws-us-gov"),
    (AWS_WRAPPER, "database-test-name.cluster-XYZ.rds.us-iso-east-1.c2s.ic.gov", "cluster",
     "database-test-name", "us-iso-east-1", "aws-iso"),
    (AWS_WRAPPER, "instance-test-name.XYZ.rds.us-isob-east-1.sc2s.sgov.gov", "instance", "instance-test-name",
     "us-isob-east-1", "aws-iso-b"),
    (AWS_WRAPPER, "MYDB.CLUSTER-123456789012.US-EAST-1.RDS.AMAZONAWS.COM", "cluster", "mydb", "us-east-1",
     "aws"),
    (AWS_WRAPPER, "mydb.cluster-123456789012.us-east-1.RDS.AMAZONAWS.COM", "cluster", "mydb", "us-east-1",
     "aws"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "host", "kind", "name", "region", "partition"), PUBLISHED)
def test_published_endpoint_forms(
    source: str, host: str, kind: str, name: str, region: str, partition: str
) -> None:
    parsed = parse_rds_endpoint(host)
    assert parsed is not None, source
    assert (parsed.kind, parsed.name, parsed.region, parsed.partition) == (kind, name, region, partition)
    assert parse_rds_endpoint(host + ".") == parsed  # a fully qualified name (trailing dot) too


@pytest.mark.parametrize(
    "host",
    [
        # AWS_WRAPPER: not RDS endpoints: a China region without .cn, no region, another service, addresses
        "database-test-name.cluster-XYZ.rds.cn-northwest-1.amazonaws.com",
        "database-test-name.cluster-XYZ.rds.amazonaws.com.cn",
        "elb-name.elb.us-east-2.amazonaws.com",
        "192.168.1.1",
        "2001:db8::8a2e:370:7334",
        "example.com",
        "",
        "127.0.0.1",
    ],
)
def test_other_names_are_not_rds_endpoints(host: str) -> None:
    assert parse_rds_endpoint(host) is None
    assert endpoint_region(host) is None


def test_rds_db_arns_follow_the_partition() -> None:
    # China's ARNs use arn:aws-cn (docs.amazonaws.cn, "Constructing an ARN for Amazon RDS")
    assert (
        dbuser_arn("cn-northwest-1", "1", "db-X", "u") == "arn:aws-cn:rds-db:cn-northwest-1:1:dbuser:db-X/u"
    )
    assert dbuser_arn("us-gov-west-1", "1", "db-X", "u").startswith("arn:aws-us-gov:rds-db:us-gov-west-1:")
    assert partition_of_region("eu-west-1") == "aws"


CHINA = "database-test-name.cluster-XYZ.rds.cn-northwest-1.amazonaws.com.cn"  # AWS_WRAPPER


def _session(region: str | None) -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=region)


def test_the_endpoint_decides_the_region_over_profile_and_environment() -> None:
    cfg = ClusterConfig(name="cn", endpoint=CHINA)
    assert region_of(cfg, _session("us-east-1")) == "cn-northwest-1"
    upper = ClusterConfig(name="up", endpoint=CHINA.upper())
    assert region_of(upper, _session(None)) == "cn-northwest-1"


def test_a_config_region_contradicting_the_endpoint_is_refused_naming_both() -> None:
    cfg = ClusterConfig(name="cn", endpoint=CHINA, region="us-east-1")
    with pytest.raises(DiscoveryError) as caught:
        region_of(cfg, _session("us-east-1"))
    assert caught.value.kind == "region_mismatch"
    assert "us-east-1" in caught.value.message and "cn-northwest-1" in caught.value.message
    assert region_of(ClusterConfig(name="cn", endpoint=CHINA, region="cn-northwest-1"), _session(None))


@pytest.mark.parametrize(
    "host", [CHINA, CHINA.upper(), "mydb.proxy-123456789012.rds.us-gov-west-1.amazonaws.com"]
)
def test_tokens_are_signed_for_the_endpoints_region_only(host: str) -> None:
    region = endpoint_region(host) or ""
    token = make_token(_session("us-east-1"), host, 5432, "alice", region)
    assert f"%2F{region}%2Frds-db%2Faws4_request" in token.value and token.region == region
    with pytest.raises(DiscoveryError) as caught:
        make_token(_session("us-east-1"), host, 5432, "alice", "us-east-1")
    assert caught.value.kind == "region_mismatch"
    assert region in caught.value.message and "us-east-1" in caught.value.message
