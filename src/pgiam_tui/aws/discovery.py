"""Resolve a configured cluster to endpoints, resource id, IAM flag, log exports and member instances.

Aurora: describe_db_clusters (endpoint, reader endpoint, port, DbClusterResourceId, the *cluster's*
IAMDatabaseAuthenticationEnabled — members report false on Aurora and in moto — log exports, members)
plus describe_db_instances for each member's own endpoint, because pg_stat_activity is per instance.
RDS for PostgreSQL: describe_db_instances (DbiResourceId, its own flag). Direct endpoint: config values.
Tunnels map endpoints to local addresses (ResolvedInstance.connect_host/connect_port); tokens and the
TLS name stay the endpoint's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
import botocore.exceptions

from pgiam_tui.aws.endpoints import endpoint_region, require_endpoint_region
from pgiam_tui.aws.errors import (
    ACCESS_DENIED_CODES,
    AwsCredentialError,
    DiscoveryError,
    aws_error_code,
    classify_aws_error,
)
from pgiam_tui.aws.session import rds_client, sts_client
from pgiam_tui.config import ClusterConfig, parse_hostport
from pgiam_tui.fixquote import shell_word

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

ClusterKind = Literal["aurora", "instance", "direct"]
ResolvedRole = Literal["writer", "reader", "instance"]

POSTGRES_ENGINES = ("aurora-postgresql", "postgres")
_ARN_ACCOUNT = re.compile(r"^arn:[^:]+:[^:]*:[^:]*:(\d{12}):")


@dataclass(frozen=True, slots=True)
class ResolvedInstance:
    """One instance to connect to. Token and TLS name: endpoint:port; TCP: connect_host/connect_port."""

    id: str
    role: ResolvedRole
    endpoint: str
    port: int
    connect_host: str | None  # libpq hostaddr (tunnel); None = resolve `endpoint` by DNS
    connect_port: int  # TCP port (the tunnel's local port, else `port`)


@dataclass(frozen=True, slots=True)
class ResolvedCluster:
    """What AWS says about a configured cluster (or what the config says, for kind "direct")."""

    name: str
    account_id: str | None  # from the cluster ARN; config's account_id for direct endpoints (may be None)
    region: str
    endpoint: str
    port: int
    reader_endpoint: str | None
    resource_id: str | None  # cluster-... (Aurora) or db-... (instance); None for direct without config value
    iam_auth_enabled: bool
    log_exports: tuple[str, ...]
    instances: tuple[ResolvedInstance, ...]
    engine: str
    log_group: str | None  # CloudWatch group of the postgresql log when exported (or configured)
    iam_log_group: str | None  # CloudWatch group of iam-db-auth-error when exported
    kind: ClusterKind
    engine_version: str | None = None
    # (endpoint, connect_host, connect_port) for every known endpoint, the cluster and reader endpoints
    # included even when only members are watched (e.g. for a check through the cluster endpoint).
    routes: tuple[tuple[str, str | None, int], ...] = ()

    def instance(self, instance_id: str) -> ResolvedInstance:
        """The instance with that id (KeyError if unknown)."""
        for inst in self.instances:
            if inst.id == instance_id:
                return inst
        raise KeyError(instance_id)

    @property
    def writer(self) -> ResolvedInstance | None:
        """The writer (Aurora) or the only instance."""
        for inst in self.instances:
            if inst.role in ("writer", "instance"):
                return inst
        return None

    def connect_address(self, endpoint: str, port: int) -> tuple[str | None, int]:
        """(hostaddr, TCP port) for ENDPOINT:PORT under this cluster's tunnels (None, PORT) if none."""
        for known, host, tcp_port in self.routes:
            if known == endpoint:
                return host, tcp_port
        for inst in self.instances:
            if inst.endpoint == endpoint:
                return inst.connect_host, inst.connect_port
        return None, port


def region_of(cfg: ClusterConfig, session: boto3.Session) -> str:
    """The cluster's region: the one its RDS endpoint names, else the config's, else the profile's.

    A config region that contradicts the endpoint is refused (DiscoveryError "region_mismatch", naming both):
    RDS refuses every token signed for another region. The profile's or environment's region is only a
    default for API calls and never overrides what the endpoint says.
    """
    named = endpoint_region(cfg.endpoint) if cfg.endpoint else None
    if named is not None:
        if cfg.region:
            try:
                require_endpoint_region(cfg.endpoint or "", cfg.region, "the config")
            except DiscoveryError as exc:
                raise DiscoveryError(f"cluster {cfg.name!r}: {exc.message}", exc.kind, exc.hint) from None
        return named
    if cfg.region:
        return cfg.region
    if session.region_name:
        return session.region_name
    raise DiscoveryError(
        f"cluster {cfg.name!r}: no region (not in the config, the endpoint or profile {cfg.profile!r})",
        "no_region",
        'set region = "..." in the cluster\'s entry or in [defaults]',
    )


def resolve_cluster(cfg: ClusterConfig, session: boto3.Session) -> ResolvedCluster:
    """Describe CFG's cluster/instance with SESSION (synchronous; run it in a thread from async code).

    Raises DiscoveryError (not found, not PostgreSQL, access denied) or AwsCredentialError.
    """
    region = region_of(cfg, session)
    if cfg.cluster_id is not None:
        return _resolve_aurora(cfg, session, region, cfg.cluster_id)
    if cfg.instance_id is not None:
        return _resolve_instance(cfg, session, region, cfg.instance_id)
    if cfg.endpoint is None:  # load_config guarantees one of the three
        raise DiscoveryError(f"cluster {cfg.name!r}: no cluster_id, instance_id or endpoint", "other")
    return _resolve_direct(cfg, region, cfg.endpoint)


# ----------------------------------------------------------------------------------------------- Aurora


def _resolve_aurora(
    cfg: ClusterConfig, session: boto3.Session, region: str, cluster_id: str
) -> ResolvedCluster:
    rds = rds_client(session, region)
    cluster = _describe_one(
        cfg,
        session,
        region,
        ("Aurora cluster", cluster_id),
        lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"],
        ("DBClusterNotFoundFault",),
        instance_hint=True,
    )
    engine = str(cluster.get("Engine", ""))
    _require_postgres(cfg, engine, cluster_id)

    endpoint = str(cluster.get("Endpoint", ""))
    port = int(cluster.get("Port") or cfg.port)
    reader = cluster.get("ReaderEndpoint")
    exports = tuple(str(e) for e in cluster.get("EnabledCloudwatchLogsExports", ()))
    members = cluster.get("DBClusterMembers", ())
    tunnels = dict(cfg.tunnels)
    own = reader if (cfg.use_reader_endpoint and reader) else endpoint

    instances: list[ResolvedInstance] = []
    if cfg.use_reader_endpoint and reader:
        instances.append(
            _instance(cfg, tunnels, own, f"{cluster_id} (reader endpoint)", "reader", reader, port)
        )
    elif not cfg.watch_members or not members:
        instances.append(
            _instance(cfg, tunnels, own, f"{cluster_id} (cluster endpoint)", "writer", endpoint, port)
        )
    else:
        described = _describe_members(rds, cfg, region, [str(m["DBInstanceIdentifier"]) for m in members])
        # Writer first, then readers by id: a stable order for tabs, rows and JSON.
        ordered = sorted(members, key=lambda m: (not m.get("IsClusterWriter"), m["DBInstanceIdentifier"]))
        for member in ordered:
            ident = str(member["DBInstanceIdentifier"])
            info = described.get(ident)
            if info is None or not info.get("Endpoint"):
                continue  # creating/deleting members have no endpoint yet: nothing to connect to
            address = str(info["Endpoint"]["Address"])
            inst_port = int(info["Endpoint"].get("Port") or port)
            role: ResolvedRole = "writer" if member.get("IsClusterWriter") else "reader"
            instances.append(_instance(cfg, tunnels, own, ident, role, address, inst_port))
        if not instances:
            instances.append(
                _instance(cfg, tunnels, own, f"{cluster_id} (cluster endpoint)", "writer", endpoint, port)
            )

    postgres_group = cfg.log_group or (
        f"/aws/rds/cluster/{cluster_id}/postgresql" if "postgresql" in exports else None
    )
    iam_group = f"/aws/rds/cluster/{cluster_id}/iam-db-auth-error" if "iam-db-auth-error" in exports else None
    return ResolvedCluster(
        name=cfg.name,
        account_id=account_from_arn(cluster.get("DBClusterArn")) or cfg.account_id,
        region=region,
        endpoint=endpoint,
        port=port,
        reader_endpoint=str(reader) if reader else None,
        resource_id=cluster.get("DbClusterResourceId") or cfg.resource_id,
        iam_auth_enabled=bool(cluster.get("IAMDatabaseAuthenticationEnabled", False)),
        log_exports=exports,
        instances=tuple(instances),
        engine=engine,
        log_group=postgres_group,
        iam_log_group=iam_group,
        kind="aurora",
        engine_version=cluster.get("EngineVersion"),
        routes=_routes(
            [
                _instance(cfg, tunnels, own, "", "writer", endpoint, port),
                *([_instance(cfg, tunnels, own, "", "reader", str(reader), port)] if reader else []),
                *instances,
            ]
        ),
    )


def _describe_one(
    cfg: ClusterConfig,
    session: boto3.Session,
    region: str,
    what: tuple[str, str],
    describe: Callable[[], Sequence[Mapping[str, Any]]],
    not_found_codes: tuple[str, ...],
    *,
    instance_hint: bool = False,
) -> Mapping[str, Any]:
    """The one DB cluster or instance DESCRIBE returns; WHAT is (kind, identifier) for the messages.

    Not found (an error code in NOT_FOUND_CODES, or an empty answer) is a DiscoveryError naming the account
    and region searched; other AWS errors are classified (access denied, credentials, network).
    """
    kind, ident = what
    try:
        found = describe()
    except botocore.exceptions.ClientError as exc:
        if aws_error_code(exc) in not_found_codes:
            raise _not_found(cfg, session, region, kind, ident, instance_hint=instance_hint) from None
        raise _api_error(exc, cfg, region) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise classify_aws_error(exc, cfg.profile) from None
    if not found:
        raise _not_found(cfg, session, region, kind, ident, instance_hint=instance_hint)
    return found[0]


def _describe_members(
    rds: RDSClient, cfg: ClusterConfig, region: str, ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """describe_db_instances for the members, by id (one call with a filter, pages followed)."""
    out: dict[str, Mapping[str, Any]] = {}
    try:
        paginator = rds.get_paginator("describe_db_instances")
        for page in paginator.paginate(Filters=[{"Name": "db-instance-id", "Values": list(ids)}]):
            for inst in page.get("DBInstances", ()):
                out[str(inst["DBInstanceIdentifier"])] = inst
    except botocore.exceptions.ClientError as exc:
        raise _api_error(exc, cfg, region) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise classify_aws_error(exc, cfg.profile) from None
    return out


# ---------------------------------------------------------------------------------------------- instance


def _resolve_instance(
    cfg: ClusterConfig, session: boto3.Session, region: str, instance_id: str
) -> ResolvedCluster:
    rds = rds_client(session, region)
    info = _describe_one(
        cfg,
        session,
        region,
        ("RDS instance", instance_id),
        lambda: rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"],
        ("DBInstanceNotFound", "DBInstanceNotFoundFault"),
    )
    engine = str(info.get("Engine", ""))
    if info.get("DBClusterIdentifier") and engine == "aurora-postgresql":
        cluster_id = info["DBClusterIdentifier"]
        raise DiscoveryError(
            f"cluster {cfg.name!r}: {instance_id!r} is a member of Aurora cluster {cluster_id!r}; its IAM "
            "policy resource is the cluster's resource id",
            "other",
            f'use cluster_id = "{cluster_id}" (every member is watched)',
        )
    _require_postgres(cfg, engine, instance_id)
    if not info.get("Endpoint"):
        raise DiscoveryError(
            f"cluster {cfg.name!r}: instance {instance_id!r} has no endpoint yet "
            f"(status {info.get('DBInstanceStatus', '?')})",
            "other",
            "wait until the instance is available",
        )
    endpoint = str(info["Endpoint"]["Address"])
    port = int(info["Endpoint"].get("Port") or cfg.port)
    exports = tuple(str(e) for e in info.get("EnabledCloudwatchLogsExports", ()))
    inst = _instance(cfg, dict(cfg.tunnels), endpoint, instance_id, "instance", endpoint, port)
    return ResolvedCluster(
        name=cfg.name,
        account_id=account_from_arn(info.get("DBInstanceArn")) or cfg.account_id,
        region=region,
        endpoint=endpoint,
        port=port,
        reader_endpoint=None,
        resource_id=info.get("DbiResourceId") or cfg.resource_id,
        iam_auth_enabled=bool(info.get("IAMDatabaseAuthenticationEnabled", False)),
        log_exports=exports,
        instances=(inst,),
        engine=engine,
        log_group=cfg.log_group
        or (f"/aws/rds/instance/{instance_id}/postgresql" if "postgresql" in exports else None),
        iam_log_group=(
            f"/aws/rds/instance/{instance_id}/iam-db-auth-error" if "iam-db-auth-error" in exports else None
        ),
        kind="instance",
        engine_version=info.get("EngineVersion"),
        routes=_routes([inst]),
    )


# ------------------------------------------------------------------------------------------------ direct


def _resolve_direct(cfg: ClusterConfig, region: str, endpoint: str) -> ResolvedCluster:
    inst = _instance(
        cfg, dict(cfg.tunnels), endpoint, endpoint.split(".", 1)[0], "instance", endpoint, cfg.port
    )
    return ResolvedCluster(
        name=cfg.name,
        account_id=cfg.account_id,
        region=region,
        endpoint=endpoint,
        port=cfg.port,
        reader_endpoint=None,
        resource_id=cfg.resource_id,
        # Unknown without asking AWS; the config says IAM is how we log in, so assume it is on.
        iam_auth_enabled=cfg.auth == "iam",
        log_exports=(),
        instances=(inst,),
        engine="postgres",
        log_group=cfg.log_group,
        iam_log_group=None,
        kind="direct",
        routes=_routes([inst]),
    )


# ---------------------------------------------------------------------------------------------- helpers


def _instance(
    cfg: ClusterConfig,
    tunnels: Mapping[str, str],
    own_endpoint: str,
    ident: str,
    role: ResolvedRole,
    endpoint: str,
    port: int,
) -> ResolvedInstance:
    """Apply tunnels: an exact [clusters.tunnels] entry wins; hostaddr/local_port apply to the config's
    own endpoint (the cluster endpoint, reader endpoint when chosen, the instance or direct endpoint)."""
    target = tunnels.get(endpoint)
    if target is not None:
        parsed = parse_hostport(target)
        if parsed is not None:
            return ResolvedInstance(ident, role, endpoint, port, parsed[0], parsed[1])
    if endpoint == own_endpoint and cfg.hostaddr is not None:
        return ResolvedInstance(ident, role, endpoint, port, cfg.hostaddr, cfg.local_port or port)
    return ResolvedInstance(ident, role, endpoint, port, None, port)


def _routes(instances: Sequence[ResolvedInstance]) -> tuple[tuple[str, str | None, int], ...]:
    seen: dict[str, tuple[str, str | None, int]] = {}
    for inst in instances:
        seen.setdefault(inst.endpoint, (inst.endpoint, inst.connect_host, inst.connect_port))
    return tuple(seen.values())


def _require_postgres(cfg: ClusterConfig, engine: str, ident: str) -> None:
    if engine not in POSTGRES_ENGINES:
        raise DiscoveryError(
            f"cluster {cfg.name!r}: {ident!r} runs engine {engine!r}, not PostgreSQL",
            "not_postgres",
            "this console watches aurora-postgresql and postgres engines only",
        )


def account_from_arn(arn: object) -> str | None:
    """The 12-digit account id of an ARN, or None."""
    if not isinstance(arn, str):
        return None
    m = _ARN_ACCOUNT.match(arn)
    return m.group(1) if m else None


def _account_of(session: boto3.Session, region: str) -> str:
    """Best-effort account id for messages ("?" when STS cannot tell)."""
    try:
        return str(sts_client(session, region).get_caller_identity()["Account"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return "?"


def _not_found(
    cfg: ClusterConfig,
    session: boto3.Session,
    region: str,
    what: str,
    ident: str,
    *,
    instance_hint: bool = False,
) -> DiscoveryError:
    account = _account_of(session, region)
    profile = cfg.profile or "default chain"
    hint = "check the id, the region and the profile; "
    hint += f"`pgiam-tui discover --profile {shell_word(cfg.profile or 'default')} "
    hint += f"--region {shell_word(region)}` lists what this profile can see"
    if instance_hint:
        hint += " (an RDS for PostgreSQL instance takes instance_id, not cluster_id)"
    return DiscoveryError(
        f"cluster {cfg.name!r}: {what} {ident!r} not found in account {account}, region {region} "
        f"(profile {profile})",
        "not_found",
        hint,
    )


def _api_error(exc: botocore.exceptions.ClientError, cfg: ClusterConfig, region: str) -> Exception:
    code = aws_error_code(exc)
    if code in ACCESS_DENIED_CODES:
        return DiscoveryError(
            f"cluster {cfg.name!r}: {exc.operation_name} denied in {region} for profile "
            f"{cfg.profile or 'default chain'}",
            "access_denied",
            "the profile needs rds:DescribeDBClusters and rds:DescribeDBInstances "
            "(or give endpoint, port and resource_id in the config)",
        )
    credential = classify_aws_error(exc, cfg.profile)
    if credential.kind != "other":
        return credential
    return DiscoveryError(f"cluster {cfg.name!r}: {credential.message}", "other", credential.hint)


__all__ = [
    "POSTGRES_ENGINES",
    "AwsCredentialError",
    "ClusterKind",
    "DiscoveryError",
    "ResolvedCluster",
    "ResolvedInstance",
    "region_of",
    "resolve_cluster",
]
