"""Inventory: every PostgreSQL Aurora cluster and RDS instance a profile sees in a region (`discover`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import boto3
import botocore.exceptions

from pgiam_tui.aws.discovery import account_from_arn
from pgiam_tui.aws.errors import ACCESS_DENIED_CODES, DiscoveryError, aws_error_code, classify_aws_error
from pgiam_tui.aws.session import rds_client


@dataclass(frozen=True, slots=True)
class DiscoveredDatabase:
    """A PostgreSQL cluster or instance found by `scan_region` (input for ready [[clusters]] entries)."""

    kind: Literal["aurora", "instance"]
    identifier: str  # DBClusterIdentifier or DBInstanceIdentifier
    account_id: str | None
    region: str
    profile: str | None
    engine: str
    endpoint: str | None
    port: int | None
    resource_id: str | None
    iam_auth_enabled: bool
    log_exports: tuple[str, ...]
    database_name: str | None = None  # the database created with the cluster/instance, if any


def scan_region(session: boto3.Session, region: str, profile: str | None) -> list[DiscoveredDatabase]:
    """Every PostgreSQL Aurora cluster and standalone RDS instance SESSION sees in REGION.

    Raises AwsCredentialError or DiscoveryError (access denied, ...) for the whole region.
    """
    rds = rds_client(session, region)
    found: list[DiscoveredDatabase] = []
    try:
        for page in rds.get_paginator("describe_db_clusters").paginate():
            for c in page.get("DBClusters", ()):
                if c.get("Engine") != "aurora-postgresql":
                    continue
                found.append(
                    DiscoveredDatabase(
                        kind="aurora",
                        identifier=str(c["DBClusterIdentifier"]),
                        account_id=account_from_arn(c.get("DBClusterArn")),
                        region=region,
                        profile=profile,
                        engine=str(c.get("Engine")),
                        endpoint=c.get("Endpoint"),
                        port=c.get("Port"),
                        resource_id=c.get("DbClusterResourceId"),
                        iam_auth_enabled=bool(c.get("IAMDatabaseAuthenticationEnabled", False)),
                        log_exports=tuple(c.get("EnabledCloudwatchLogsExports", ())),
                        database_name=c.get("DatabaseName"),
                    )
                )
        for ipage in rds.get_paginator("describe_db_instances").paginate():
            for inst in ipage.get("DBInstances", ()):
                # Aurora members are covered by their cluster (its resource id is the one policies name).
                if inst.get("Engine") != "postgres" or inst.get("DBClusterIdentifier"):
                    continue
                address = inst.get("Endpoint", {})
                found.append(
                    DiscoveredDatabase(
                        kind="instance",
                        identifier=str(inst["DBInstanceIdentifier"]),
                        account_id=account_from_arn(inst.get("DBInstanceArn")),
                        region=region,
                        profile=profile,
                        engine=str(inst.get("Engine")),
                        endpoint=address.get("Address"),
                        port=address.get("Port"),
                        resource_id=inst.get("DbiResourceId"),
                        iam_auth_enabled=bool(inst.get("IAMDatabaseAuthenticationEnabled", False)),
                        log_exports=tuple(inst.get("EnabledCloudwatchLogsExports", ())),
                        database_name=inst.get("DBName"),
                    )
                )
    except botocore.exceptions.ClientError as exc:
        code = aws_error_code(exc)
        if code in ACCESS_DENIED_CODES:
            raise DiscoveryError(
                f"{exc.operation_name} denied in {region} for profile {profile or 'default chain'}",
                "access_denied",
                "the profile needs rds:DescribeDBClusters and rds:DescribeDBInstances",
            ) from None
        raise classify_aws_error(exc, profile) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise classify_aws_error(exc, profile) from None
    return found
