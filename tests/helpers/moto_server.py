"""moto's server in this process, over real HTTP on a free loopback port.

Not ``mock_aws``: that resets every moto backend of the process, which would wipe a session-wide sandbox.
Tests make their own uniquely named resources in moto's default account instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest


@contextmanager
def running_moto() -> Iterator[str]:
    """Start a ThreadedMotoServer on 127.0.0.1 (port chosen by the OS), yield its URL, stop it on exit."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_session(url: str, monkeypatch: pytest.MonkeyPatch, region: str = "us-east-1") -> boto3.Session:
    """A boto3 session whose clients talk to the moto server at URL (AWS_ENDPOINT_URL, as the product reads
    it), with moto's default test keys (requests land in moto's default account 123456789012)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


def policy_document(
    resource: str | list[str], *, action: str = "rds-db:connect", effect: str = "Allow"
) -> str:
    """An IAM policy document (JSON) with one statement: EFFECT ACTION on RESOURCE."""
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def create_aurora_cluster(rds: Any, cluster_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An Aurora PostgreSQL cluster with IAM auth on and its writer `CLUSTER_ID-writer`, made in moto.

    Returns (the DBCluster, the writer's DBInstance) as moto describes them.
    """
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=cluster_id,
        Engine="aurora-postgresql",
        MasterUsername="postgres",
        MasterUserPassword="postgres-pw",
        EnableIAMDatabaseAuthentication=True,
    )["DBCluster"]
    writer = rds.create_db_instance(
        DBInstanceIdentifier=f"{cluster_id}-writer",
        DBClusterIdentifier=cluster_id,
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )["DBInstance"]
    return cluster, writer
