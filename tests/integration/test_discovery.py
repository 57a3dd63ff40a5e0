"""Discovery against the sandbox's moto: Aurora writer + reader with the cluster's resource id, RDS instance,
direct endpoints, tunnels, classified errors, and `pgiam-tui discover` (print and --write)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from pgiam_tui.aws.discovery import DiscoveryError, ResolvedCluster, resolve_cluster
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import ClusterConfig, load_config

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox, SandboxCluster

BIN = Path(sys.executable).parent
DB_ACCOUNT = "111111111111"


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> SessionFactory:
    return SessionFactory(cache_dir=tmp_path_factory.mktemp("cli-cache"))


@pytest.fixture(scope="module")
def session(sandbox: Sandbox, factory: SessionFactory) -> boto3.Session:
    return factory.session("instancecrossaccount")


def aurora(sandbox: Sandbox) -> SandboxCluster:
    return next(c for c in sandbox.clusters if c.kind == "aurora")


def rds_instance(sandbox: Sandbox) -> SandboxCluster:
    return next(c for c in sandbox.clusters if c.kind == "instance")


def test_every_sandbox_cluster_resolves_as_configured(sandbox: Sandbox, factory: SessionFactory) -> None:
    config = load_config(sandbox.profiles_toml)
    # both kinds must be there, or the branches below would check nothing
    assert {sc.kind for sc in sandbox.clusters} == {"aurora", "instance"}
    for sc in sandbox.clusters:
        cfg = config.cluster(sc.name)
        rc = resolve_cluster(cfg, factory.session(cfg.profile))
        assert (rc.name, rc.account_id, rc.region) == (sc.name, DB_ACCOUNT, sc.region)
        assert (rc.endpoint, rc.port, rc.reader_endpoint) == (sc.endpoint, sc.port, sc.reader_endpoint)
        assert rc.resource_id == sc.resource_id
        assert rc.iam_auth_enabled is True
        assert rc.log_group == sc.log_group and rc.iam_log_group == sc.iam_log_group
        assert {"postgresql", "iam-db-auth-error"} <= set(rc.log_exports)
        # Every instance, its own endpoint, reached through its tunnel (the sandbox's front door port).
        expected = [(i.id, i.role, i.endpoint, i.port, "127.0.0.1", i.listen_port) for i in sc.instances]
        got = [(i.id, i.role, i.endpoint, i.port, i.connect_host, i.connect_port) for i in rc.instances]
        assert sorted(got) == sorted(expected)
        if sc.kind == "aurora":
            assert rc.kind == "aurora" and rc.engine == "aurora-postgresql"
            assert rc.resource_id is not None and rc.resource_id.startswith("cluster-")
            assert [i.role for i in rc.instances] == ["writer", "reader"]  # writer first
            assert rc.writer is not None and rc.writer.role == "writer"
        else:
            assert rc.kind == "instance" and rc.engine == "postgres"
            assert rc.resource_id is not None and rc.resource_id.startswith("db-")
            assert [i.role for i in rc.instances] == ["instance"]


def test_reader_endpoint_only_and_cluster_endpoint_only(sandbox: Sandbox, session: boto3.Session) -> None:
    sc = aurora(sandbox)
    base = load_config(sandbox.profiles_toml).cluster(sc.name)
    reader = resolve_cluster(dataclasses.replace(base, use_reader_endpoint=True), session)
    (only,) = reader.instances
    assert (only.role, only.endpoint, only.connect_port) == (
        "reader",
        sc.reader_endpoint,
        sc.reader_listen_port,
    )
    writer = resolve_cluster(dataclasses.replace(base, watch_members=False), session)
    (only,) = writer.instances
    assert (only.role, only.endpoint, only.connect_port) == ("writer", sc.endpoint, sc.listen_port)


def test_hostaddr_and_local_port_apply_to_the_configs_own_endpoint(
    sandbox: Sandbox, session: boto3.Session
) -> None:
    sc = aurora(sandbox)
    cfg = ClusterConfig(
        name="t",
        cluster_id=sc.cluster_id,
        region=sc.region,
        hostaddr="127.0.0.2",
        local_port=15432,
        watch_members=False,
    )
    (only,) = resolve_cluster(cfg, session).instances
    # TCP goes to the tunnel; the endpoint (TLS name, token) and its canonical port stay.
    assert (only.endpoint, only.port, only.connect_host, only.connect_port) == (
        sc.endpoint,
        5432,
        "127.0.0.2",
        15432,
    )
    members = resolve_cluster(dataclasses.replace(cfg, watch_members=True), session).instances
    assert all(i.connect_host is None and i.connect_port == i.port for i in members)


def test_direct_endpoint_needs_no_aws(sandbox: Sandbox, tmp_path: Path) -> None:
    # A session with no credentials at all: a direct entry must not call AWS.
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    bare = boto3.Session(aws_access_key_id=None, region_name=None, botocore_session=None)
    cfg = ClusterConfig(
        name="legacy",
        endpoint="legacy.abc.eu-west-1.rds.amazonaws.com",
        port=5433,
        resource_id="db-XYZ",
        account_id=DB_ACCOUNT,
        hostaddr="127.0.0.1",
        local_port=25433,
    )
    rc = resolve_cluster(cfg, bare)
    assert (rc.kind, rc.region, rc.endpoint, rc.port, rc.resource_id, rc.account_id) == (
        "direct", "eu-west-1", cfg.endpoint, 5433, "db-XYZ", DB_ACCOUNT,
    )  # fmt: skip
    (only,) = rc.instances
    assert (only.connect_host, only.connect_port, only.port) == ("127.0.0.1", 25433, 5433)


def test_direct_endpoint_without_region_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(DiscoveryError) as info:
        resolve_cluster(ClusterConfig(name="x", endpoint="db.internal"), boto3.Session())
    assert info.value.kind == "no_region"
    assert info.value.hint is not None and "region" in info.value.hint


def test_cluster_not_found_names_profile_region_account(sandbox: Sandbox, session: boto3.Session) -> None:
    with pytest.raises(DiscoveryError) as info:
        resolve_cluster(
            ClusterConfig(name="x", cluster_id="nope", region="us-east-1", profile="instancecrossaccount"),
            session,
        )
    assert info.value.kind == "not_found"
    assert str(info.value) == (
        "cluster 'x': Aurora cluster 'nope' not found in account 111111111111, region us-east-1 "
        "(profile instancecrossaccount)"
    )
    assert (
        info.value.hint is not None and "pgiam-tui discover --profile instancecrossaccount" in info.value.hint
    )

    # the RDS-instance path says the same, naming what it looked for
    cfg = ClusterConfig(name="y", instance_id="nope-db", region="us-east-1", profile="instancecrossaccount")
    with pytest.raises(DiscoveryError) as info:
        resolve_cluster(cfg, session)
    assert info.value.kind == "not_found"
    assert str(info.value) == (
        "cluster 'y': RDS instance 'nope-db' not found in account 111111111111, region us-east-1 "
        "(profile instancecrossaccount)"
    )


def test_wrong_kind_of_identifier_is_explained(sandbox: Sandbox, session: boto3.Session) -> None:
    inst = rds_instance(sandbox)
    with pytest.raises(DiscoveryError) as info:
        resolve_cluster(ClusterConfig(name="x", cluster_id=inst.name, region=inst.region), session)
    assert info.value.hint is not None and "instance_id" in info.value.hint
    sc = aurora(sandbox)
    member = sc.instances[0].id
    with pytest.raises(DiscoveryError) as info:
        resolve_cluster(ClusterConfig(name="x", instance_id=member, region=sc.region), session)
    assert f"member of Aurora cluster '{sc.cluster_id}'" in str(info.value)
    assert info.value.hint == f'use cluster_id = "{sc.cluster_id}" (every member is watched)'


def _set_cluster_iam(sandbox: Sandbox, sc: SandboxCluster, enabled: bool) -> None:
    assert sc.cluster_id is not None
    rds = sandbox.boto_session("sandbox-db-admin").client("rds", region_name=sc.region)
    rds.modify_db_cluster(
        DBClusterIdentifier=sc.cluster_id, EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=True
    )


@pytest.fixture
def iam_disabled(sandbox: Sandbox) -> Iterator[SandboxCluster]:
    """The last Aurora cluster with IAM database authentication switched off (restored afterwards)."""
    sc = [c for c in sandbox.clusters if c.kind == "aurora"][-1]
    _set_cluster_iam(sandbox, sc, False)
    try:
        yield sc
    finally:
        _set_cluster_iam(sandbox, sc, True)


def test_iam_flag_is_the_clusters(
    sandbox: Sandbox, session: boto3.Session, iam_disabled: SandboxCluster
) -> None:
    cfg = load_config(sandbox.profiles_toml).cluster(iam_disabled.name)
    rc: ResolvedCluster = resolve_cluster(cfg, session)
    assert rc.iam_auth_enabled is False
    assert len(rc.instances) == 2


def discover(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pgiam-tui"), "discover", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_discover_prints_entries_load_config_accepts(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**sandbox_env, "HOME": str(tmp_path)}
    done = discover(
        env, "--profile", "instancecrossaccount", "--region", "us-east-1", "--region", "us-east-2"
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "printed.toml"
    out.write_text(done.stdout, encoding="utf-8")
    config = load_config(out)
    want = {c.name: c for c in sandbox.clusters}
    assert {c.name for c in config.clusters} == set(want)
    for c in config.clusters:
        sc = want[c.name]
        assert (c.profile, c.region, c.cluster_id, c.instance_id) == (
            "instancecrossaccount", sc.region, sc.cluster_id, sc.instance_id,
        )  # fmt: skip
        assert f"resource id {sc.resource_id}" in done.stdout


def test_discover_write_appends_without_duplicates(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path, iam_disabled: SandboxCluster
) -> None:
    env = {**sandbox_env, "HOME": str(tmp_path)}
    target = tmp_path / "conf" / "profiles.toml"
    target.parent.mkdir()
    first = aurora(sandbox)
    target.write_text(
        f'[defaults]\ndatabase = "demo"\n\n[[clusters]]\nname = "mine"\ncluster_id = "{first.cluster_id}"\n'
        f'region = "{first.region}"\n',
        encoding="utf-8",
    )
    args = ("--profile", "instancecrossaccount", "--profile", "no-such-profile", "--region", "us-east-1",
            "--region", "us-east-2", "--write", str(target))  # fmt: skip
    done = discover(env, *args)
    # The unknown profile is reported and the good one still scanned.
    assert done.returncode == 1
    assert "AWS profile 'no-such-profile' not found" in done.stderr
    assert (
        f"skipped, IAM database authentication off: {iam_disabled.cluster_id} ({iam_disabled.region})"
        in done.stderr
    )
    expected = {c.name for c in sandbox.clusters} - {first.name, iam_disabled.name}
    assert done.stdout.strip() == f"added {len(expected)} entries to {target} (1 already present)"
    config = load_config(target)
    assert [c.name for c in config.clusters] == [
        "mine",
        *sorted(expected, key=[c.name for c in sandbox.clusters].index),
    ]
    assert all(c.database == "demo" for c in config.clusters)  # the file's own defaults still apply
    # Again: nothing new, file unchanged.
    before = target.read_text(encoding="utf-8")
    again = discover(env, *args[:2], *args[4:])  # the good profile only
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"added 0 entries to {target}")
    assert target.read_text(encoding="utf-8") == before


def test_discover_refuses_to_append_to_a_broken_file(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "broken.toml"
    target.write_text("[[clusters]]\nname = \n", encoding="utf-8")
    done = discover({**sandbox_env, "HOME": str(tmp_path)}, "--write", str(target))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"{target}:2: TOML syntax error" in done.stderr
    assert target.read_text(encoding="utf-8") == "[[clusters]]\nname = \n"


def test_discover_all_profiles_lists_each_database_once(sandbox_env: dict[str, str], tmp_path: Path) -> None:
    done = discover({**sandbox_env, "HOME": str(tmp_path)}, "--all-profiles", "--region", "us-east-1",
                    "--region", "us-east-2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "all.toml"
    out.write_text(done.stdout, encoding="utf-8")
    names = [c.name for c in load_config(out).clusters]
    # Several profiles see the DB account (and the management account has none): one entry each.
    assert sorted(names) == ["pgdemo-1", "pgdemo-2", "pgdemo-3", "pgdemo-rds"], done.stderr


def test_cluster_and_reader_endpoints_keep_their_tunnels(sandbox: Sandbox, session: boto3.Session) -> None:
    sc = aurora(sandbox)
    rc = resolve_cluster(load_config(sandbox.profiles_toml).cluster(sc.name), session)
    assert sc.endpoint not in [
        i.endpoint for i in rc.instances
    ]  # members are watched, not the cluster endpoint
    assert rc.connect_address(sc.endpoint, 5432) == ("127.0.0.1", sc.listen_port)
    assert sc.reader_endpoint is not None
    assert rc.connect_address(sc.reader_endpoint, 5432) == ("127.0.0.1", sc.reader_listen_port)
    assert rc.connect_address("elsewhere.example", 5432) == (None, 5432)
