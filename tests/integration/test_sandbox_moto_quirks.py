"""moto quirks the sandbox mends, seen through plain boto3 as the product sees them."""

from __future__ import annotations

from pgiam_sandbox import Sandbox


def _cluster_flag(sandbox: Sandbox, name: str) -> bool:
    sb = sandbox.cluster(name)
    assert sb.cluster_id is not None
    rds = sandbox.boto_session("sandbox-db-admin").client("rds", region_name=sb.region)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=sb.cluster_id)["DBClusters"][0]
    return bool(cluster["IAMDatabaseAuthenticationEnabled"])


def test_modify_db_cluster_iam_flag_is_reported_by_describe(sandbox: Sandbox) -> None:
    sb = next(c for c in sandbox.clusters if c.kind == "aurora")
    assert sb.cluster_id is not None
    rds = sandbox.boto_session("sandbox-db-admin").client("rds", region_name=sb.region)
    assert _cluster_flag(sandbox, sb.name) is True
    try:
        rds.modify_db_cluster(DBClusterIdentifier=sb.cluster_id, EnableIAMDatabaseAuthentication=False)
        assert _cluster_flag(sandbox, sb.name) is False
    finally:
        rds.modify_db_cluster(DBClusterIdentifier=sb.cluster_id, EnableIAMDatabaseAuthentication=True)
    assert _cluster_flag(sandbox, sb.name) is True


def test_resource_ids_are_unique_per_instance(sandbox: Sandbox) -> None:
    ids = [i.resource_id for c in sandbox.clusters for i in c.instances]
    assert len(ids) == len(set(ids)) and all(i.startswith("db-") for i in ids)
