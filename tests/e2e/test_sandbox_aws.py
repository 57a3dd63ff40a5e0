"""The sandbox's fake AWS with plain boto3: accounts, role chains, IMDSv2, STS guards, RDS, files."""

from __future__ import annotations

import json
import os
import tomllib
import urllib.error
import urllib.request
from typing import Any

import boto3
import botocore.exceptions
import pytest
from pgiam_sandbox import Sandbox
from pgiam_sandbox.imds import ImdsServer

DB = "111111111111"
MGMT = "222222222222"


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def _session(sandbox: Sandbox, profile: str, imds_url: str | None = None) -> boto3.Session:
    """A fresh session (no cached credentials), optionally on another IMDS than the sandbox's."""
    import botocore.session

    core = botocore.session.Session(profile=profile)
    core.set_config_variable("config_file", str(sandbox.aws_config_file))
    core.set_config_variable("credentials_file", str(sandbox.aws_credentials_file))
    if imds_url:
        # set explicitly: AWS_EC2_METADATA_SERVICE_ENDPOINT (exported) outranks the config file
        core.set_config_variable("ec2_metadata_service_endpoint", imds_url)
    return boto3.Session(botocore_session=core)


# -- role chains -------------------------------------------------------------------------------------------


def test_instancecrossaccount_resolves_via_imds_to_monitor_role_in_db_account(sandbox: Sandbox) -> None:
    # Plain boto3 with only the exported environment, as a user's shell after `. env.sh`.
    ident = boto3.Session(profile_name="instancecrossaccount").client("sts").get_caller_identity()
    assert ident["Account"] == DB
    assert ident["Arn"].startswith(f"arn:aws:sts::{DB}:assumed-role/pg-monitor-role/")


def test_imds_credentials_are_the_management_role(sandbox: Sandbox) -> None:
    import botocore.session
    from botocore.utils import InstanceMetadataFetcher

    # The endpoint reaches botocore through AWS_EC2_METADATA_SERVICE_ENDPOINT (exported by the fixture).
    endpoint = botocore.session.get_session().get_config_variable("ec2_metadata_service_endpoint")
    assert endpoint == sandbox.imds_url
    fetcher = InstanceMetadataFetcher(
        timeout=2, num_attempts=1, config={"ec2_metadata_service_endpoint": endpoint}
    )
    creds: dict[str, Any] = fetcher.retrieve_iam_role_credentials()
    assert creds["role_name"] == "pg-mgmt-role"
    assert creds["access_key"].startswith("ASIA")
    session = boto3.Session(
        aws_access_key_id=creds["access_key"],
        aws_secret_access_key=creds["secret_key"],
        aws_session_token=creds["token"],
        region_name="us-east-1",
    )
    arn = session.client("sts").get_caller_identity()["Arn"]
    assert arn.startswith(f"arn:aws:sts::{MGMT}:assumed-role/pg-mgmt-role/i-")


def test_source_profile_chain_resolves_to_oltp_rw_role(sandbox: Sandbox) -> None:
    arn = sandbox.boto_session("pgdemo-oltp-rw").client("sts").get_caller_identity()["Arn"]
    assert arn.startswith(f"arn:aws:sts::{DB}:assumed-role/pgdemo-oltp-rw-role/")


@pytest.mark.parametrize(
    ("profile", "arn"),
    [
        ("sandbox-db-admin", f"arn:aws:iam::{DB}:user/sandbox-db-admin"),
        ("iam-reader", f"arn:aws:iam::{DB}:user/iam-reader"),
        ("sandbox-mgmt-admin", f"arn:aws:iam::{MGMT}:user/sandbox-mgmt-admin"),
    ],
)
def test_static_profiles_belong_to_their_accounts(sandbox: Sandbox, profile: str, arn: str) -> None:
    assert sandbox.boto_session(profile).client("sts").get_caller_identity()["Arn"] == arn


# -- IMDSv2 ------------------------------------------------------------------------------------------------


def _imds(url: str, path: str, token: str | None = None, method: str = "GET") -> tuple[int, str]:
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    if method == "PUT":
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    req = urllib.request.Request(url + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_imds_requires_a_v2_token(sandbox: Sandbox) -> None:
    base = "/latest/meta-data/iam/security-credentials/"
    assert _imds(sandbox.imds_url, base)[0] == 401
    assert _imds(sandbox.imds_url, base, token="not-a-token")[0] == 401
    status, token = _imds(sandbox.imds_url, "/latest/api/token", method="PUT")
    assert status == 200 and token
    assert _imds(sandbox.imds_url, base, token) == (200, "pg-mgmt-role")
    status, body = _imds(sandbox.imds_url, "/latest/dynamic/instance-identity/document", token)
    doc = json.loads(body)
    assert (status, doc["accountId"], doc["region"]) == (200, MGMT, "us-east-1")
    assert _imds(sandbox.imds_url, "/latest/meta-data/nothing-here", token)[0] == 404


def test_imds_renews_credentials_before_they_expire(sandbox: Sandbox) -> None:
    # renew_before >= duration: every request finds the credentials "about to expire" and renews them.
    eager = ImdsServer(MGMT, duration_s=900, renew_before_s=900)
    lazy = ImdsServer(MGMT, duration_s=900, renew_before_s=60)
    eager.start()
    lazy.start()
    try:
        assert eager.current_access_key_id() != eager.current_access_key_id()
        assert lazy.current_access_key_id() == lazy.current_access_key_id()
        before = lazy.current_access_key_id()
        lazy.renew()
        assert lazy.current_access_key_id() != before
    finally:
        eager.stop()
        lazy.stop()


# -- STS guards: trust policies and expired sessions -------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "role_arn"),
    [
        # iam-reader has no sts:AssumeRole permission and is not named by the trust policy
        ("iam-reader", f"arn:aws:iam::{DB}:role/pg-monitor-role"),
        # admin in the management account, but pg-monitor-role trusts pg-mgmt-role only
        ("sandbox-mgmt-admin", f"arn:aws:iam::{DB}:role/pg-monitor-role"),
        # pg-mgmt-role trusts the EC2 service only
        ("sandbox-mgmt-admin", f"arn:aws:iam::{MGMT}:role/pg-mgmt-role"),
        # no such role
        ("sandbox-db-admin", f"arn:aws:iam::{DB}:role/no-such-role"),
    ],
)
def test_assume_role_is_denied_unless_trusted_and_allowed(
    sandbox: Sandbox, profile: str, role_arn: str
) -> None:
    sts = sandbox.boto_session(profile).client("sts")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="guard-test")
    assert _error_code(info.value) == "AccessDenied"
    assert "sts:AssumeRole" in str(info.value)


def test_assume_role_allowed_for_account_trust_with_permission(sandbox: Sandbox) -> None:
    sts = sandbox.boto_session("sandbox-db-admin").client("sts")
    out = sts.assume_role(RoleArn=f"arn:aws:iam::{DB}:role/pgdemo-oltp-ro-role", RoleSessionName="guard-test")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{DB}:assumed-role/pgdemo-oltp-ro-role/guard-test"


def test_cross_account_assume_needs_the_callers_permission(sandbox: Sandbox) -> None:
    """Remove pg-mgmt-role's sts:AssumeRole grant: the chain fails with AccessDenied; restore it."""
    mgmt_iam = sandbox.boto_session("sandbox-mgmt-admin").client("iam")
    name = "pg-mgmt-assume-monitor"
    document = mgmt_iam.get_role_policy(RoleName="pg-mgmt-role", PolicyName=name)["PolicyDocument"]
    mgmt_iam.delete_role_policy(RoleName="pg-mgmt-role", PolicyName=name)
    try:
        fresh = _session(sandbox, "instancecrossaccount")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            fresh.client("sts").get_caller_identity()
        assert _error_code(info.value) == "AccessDenied"
        assert f"arn:aws:sts::{MGMT}:assumed-role/pg-mgmt-role/" in str(info.value)
    finally:
        mgmt_iam.put_role_policy(
            RoleName="pg-mgmt-role", PolicyName=name, PolicyDocument=json.dumps(document)
        )
    fresh = _session(sandbox, "instancecrossaccount")
    assert "pg-monitor-role" in fresh.client("sts").get_caller_identity()["Arn"]


def test_expired_session_credentials_are_refused(sandbox: Sandbox) -> None:
    sts = sandbox.boto_session("sandbox-db-admin").client("sts")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{DB}:role/pgdemo-oltp-ro-role", RoleSessionName="expiring"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    endpoint = sandbox.endpoint_url
    assert session.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"] == DB
    assert sandbox.expire_sessions(access_key_id=creds["AccessKeyId"]) == 1
    with pytest.raises(botocore.exceptions.ClientError) as info:
        session.client("sts", endpoint_url=endpoint).get_caller_identity()
    assert _error_code(info.value) == "ExpiredToken"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        session.client("rds", endpoint_url=endpoint).describe_db_clusters()
    assert _error_code(info.value) == "ExpiredToken"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        session.client("logs", endpoint_url=endpoint).describe_log_groups()
    assert _error_code(info.value) == "ExpiredTokenException"


def test_expired_instance_credentials_break_the_cross_account_chain(sandbox: Sandbox) -> None:
    # An IMDS of our own, so the shared one keeps serving good credentials to other tests.
    imds = ImdsServer(MGMT)
    imds.start()
    try:
        sandbox.expire_sessions(access_key_id=imds.current_access_key_id())
        with pytest.raises(botocore.exceptions.ClientError) as info:
            _session(sandbox, "instancecrossaccount", imds.url).client("sts").get_caller_identity()
        assert _error_code(info.value) == "ExpiredToken"
        imds.renew()
        arn = _session(sandbox, "instancecrossaccount", imds.url).client("sts").get_caller_identity()["Arn"]
        assert "pg-monitor-role" in arn
    finally:
        imds.stop()


# -- seeded RDS, IAM and logs ------------------------------------------------------------------------------


def test_aurora_clusters_as_the_scenario_says(sandbox: Sandbox) -> None:
    aurora = [c for c in sandbox.clusters if c.kind == "aurora"]
    assert len(aurora) == 3
    assert {c.region for c in aurora} == {"us-east-1", "us-east-2"}
    for c in aurora:
        rds = sandbox.boto_session("iam-reader").client("rds", region_name=c.region)
        desc = rds.describe_db_clusters(DBClusterIdentifier=str(c.cluster_id))["DBClusters"][0]
        assert desc["Engine"] == "aurora-postgresql"
        assert desc["IAMDatabaseAuthenticationEnabled"] is True
        assert set(desc["EnabledCloudwatchLogsExports"]) == {"postgresql", "iam-db-auth-error"}
        assert desc["DbClusterResourceId"] == c.resource_id and c.resource_id.startswith("cluster-")
        assert desc["Endpoint"] == c.endpoint and desc["ReaderEndpoint"] == c.reader_endpoint
        members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in desc["DBClusterMembers"]}
        assert members == {f"{c.name}-writer": True, f"{c.name}-reader": False}
        for inst in c.instances:
            d = rds.describe_db_instances(DBInstanceIdentifier=inst.id)["DBInstances"][0]
            assert d["Endpoint"]["Address"] == inst.endpoint
            assert d["DbiResourceId"] == inst.resource_id
            # moto quirk worked around by the sandbox: members mirror the cluster's flag
            assert d["IAMDatabaseAuthenticationEnabled"] is True


def test_instance_resource_ids_are_unique(sandbox: Sandbox) -> None:
    ids = [i.resource_id for c in sandbox.clusters for i in c.instances]
    assert len(ids) == len(set(ids)) == 7
    assert all(i.startswith("db-") for i in ids)


def test_rds_for_postgresql_instance(sandbox: Sandbox) -> None:
    (inst,) = [c for c in sandbox.clusters if c.kind == "instance"]
    rds = sandbox.boto_session("iam-reader").client("rds", region_name=inst.region)
    d = rds.describe_db_instances(DBInstanceIdentifier=str(inst.instance_id))["DBInstances"][0]
    assert d["Engine"] == "postgres" and d["IAMDatabaseAuthenticationEnabled"] is True
    assert d["DbiResourceId"] == inst.resource_id
    assert inst.log_group == f"/aws/rds/instance/{inst.instance_id}/postgresql"


def test_log_groups_exist_per_export(sandbox: Sandbox) -> None:
    for c in sandbox.clusters:
        logs = sandbox.boto_session("iam-reader").client("logs", region_name=c.region)
        groups = {
            g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/rds/")["logGroups"]
        }
        assert {c.log_group, c.iam_log_group} <= groups


def test_iam_scenario_policies(sandbox: Sandbox) -> None:
    iam = sandbox.boto_session("iam-reader").client("iam")
    trust: Any = iam.get_role(RoleName="pg-monitor-role")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{MGMT}:role/pg-mgmt-role"
    attached = iam.list_attached_role_policies(RoleName="pg-monitor-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["pg-db-monitor-policy"]
    arn = attached[0]["PolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc: Any = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    connect = next(s for s in doc["Statement"] if s["Action"] == "rds-db:connect")
    assert connect["Resource"] == f"arn:aws:rds-db:*:{DB}:dbuser:*/pgmonitor"

    attached = iam.list_attached_role_policies(RoleName="pgdemo-oltp-rw-role")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["pgdemo-oltp-rw-user-policy"]
    arn = attached[0]["PolicyArn"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    expected = {
        f"arn:aws:rds-db:{c.region}:{DB}:dbuser:{c.resource_id}/oltp_rw_user" for c in sandbox.clusters
    }
    assert set(doc["Statement"][0]["Resource"]) == expected


# -- files -------------------------------------------------------------------------------------------------


def test_env_sh_exports_the_contract_variables(sandbox: Sandbox) -> None:
    text = (sandbox.root / "env.sh").read_text()
    for name in (
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "PGIAM_TUI_CONFIG",
        "PGIAM_SANDBOX_ADMIN_DSN",
        "PGIAM_SANDBOX_CA",
    ):
        assert f"export {name}=" in text
        assert os.environ[name] == sandbox.env[name]
    assert sandbox.env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_credentials_file_is_private(sandbox: Sandbox) -> None:
    assert sandbox.aws_credentials_file.stat().st_mode & 0o077 == 0


def test_profiles_toml_describes_every_cluster(sandbox: Sandbox) -> None:
    data = tomllib.loads(sandbox.profiles_toml.read_text())
    entries = {e["name"]: e for e in data["clusters"]}
    assert set(entries) == {c.name for c in sandbox.clusters}
    for c in sandbox.clusters:
        e = entries[c.name]
        assert e["profile"] == "instancecrossaccount" and e["iam_profile"] == "iam-reader"
        assert e["sslmode"] == "verify-full" and e["sslrootcert"] == str(sandbox.ca_path)
        assert e["database"] == "demo" and e["user"] == "pgmonitor"
        assert e["group"] == f"db-account/{c.region}"
        assert e["tunnels"][c.endpoint] == f"127.0.0.1:{c.listen_port}"
        for inst in c.instances:
            assert e["tunnels"][inst.endpoint] == f"127.0.0.1:{inst.listen_port}"
        if c.kind == "aurora":
            assert e["cluster_id"] == c.cluster_id
            assert e["tunnels"][c.reader_endpoint] == f"127.0.0.1:{c.reader_listen_port}"
        else:
            assert e["instance_id"] == c.instance_id


def test_profiles_toml_loads_with_the_console_loader(sandbox: Sandbox) -> None:
    config_mod = pytest.importorskip("pgiam_tui.config")
    if not hasattr(config_mod, "load_config"):
        pytest.skip("config loader not there yet")
    cfg = config_mod.load_config(sandbox.profiles_toml)
    assert [c.name for c in cfg.clusters] == [c.name for c in sandbox.clusters]


def test_sandbox_json(sandbox: Sandbox) -> None:
    data = json.loads((sandbox.root / "sandbox.json").read_text())
    assert data["db_account_id"] == DB and data["mgmt_account_id"] == MGMT
    by_name = {c["name"]: c for c in data["clusters"]}
    for c in sandbox.clusters:
        entry = by_name[c.name]
        for key in ("cluster_id", "account_id", "region", "endpoint", "port", "listen_host", "listen_port"):
            assert entry[key] == getattr(c, key)
        for key in ("resource_id", "database", "log_group", "log_file"):
            assert entry[key] == getattr(c, key)
        assert [i["id"] for i in entry["instances"]] == [i.id for i in c.instances]


def test_roles_outside_the_sandbox_accounts_keep_motos_behaviour(sandbox: Sandbox) -> None:
    # Other tests use moto in this process with their own throwaway accounts and lax trust policies.
    stranger = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sts = stranger.client("sts", endpoint_url=sandbox.endpoint_url)
    out = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/anything", RoleSessionName="lax")
    assert out["AssumedRoleUser"]["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/anything/")
