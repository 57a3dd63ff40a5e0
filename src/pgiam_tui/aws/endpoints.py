"""RDS endpoint host names: the one place that reads region, partition and kind out of them.

Every form RDS and Aurora publish is read, in any letter case and with or without a trailing dot:

    NAME.cluster-ID.REGION.rds.amazonaws.com          cluster (writer) endpoint
    NAME.cluster-ro-ID.REGION.rds.amazonaws.com       reader endpoint
    NAME.cluster-custom-ID.REGION.rds.amazonaws.com   custom endpoint
    NAME.ID.REGION.rds.amazonaws.com                  instance endpoint
    NAME.proxy-ID.REGION.rds.amazonaws.com            RDS Proxy (also ENDPOINT.endpoint.proxy-ID....)
    NAME.shardgrp-ID.REGION.rds.amazonaws.com         Aurora Limitless shard group
    NAME.cluster-ID.rds.cn-northwest-1.amazonaws.com.cn   China (older: ….cn-north-1.rds.amazonaws.com.cn)
    NAME.cluster-ID.us-gov-west-1.rds.amazonaws.com       GovCloud (also ….rds.us-gov-west-1.amazonaws.com)

The partition of a region and its DNS suffix come from botocore's own partition data (the table the AWS
SDKs use), so a new region needs no change here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "RDS_CA_BUNDLE_URL",
    "REGION_PATTERN",
    "EndpointKind",
    "RdsEndpoint",
    "endpoint_region",
    "parse_rds_endpoint",
    "partition_of_region",
    "require_endpoint_region",
]

#: The CA bundle that signs every RDS and Aurora server certificate, in every commercial region (AWS's docs).
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

EndpointKind = Literal["cluster", "reader", "custom", "instance", "proxy", "shard-group"]

_KINDS: dict[str, EndpointKind] = {
    "cluster-ro-": "reader",
    "cluster-custom-": "custom",
    "cluster-": "cluster",
    "proxy-": "proxy",
    "shardgrp-": "shard-group",
}

#: The shape of an AWS region name (us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1), the one rule for
#: the region in an endpoint host and in the config file.
REGION_PATTERN = r"[a-z]{2,4}(?:-[a-z]+)+-\d+"
_REGION = REGION_PATTERN
_HOST = re.compile(
    r"^(?P<name>[a-z0-9-]+)\.(?:(?P<sub>[a-z0-9-]+)\.)?"
    r"(?P<kind>cluster-ro-|cluster-custom-|cluster-|proxy-|shardgrp-)?(?P<id>[a-z0-9]+)\."
    rf"(?:rds\.(?P<region_after>{_REGION})|(?P<region_before>{_REGION})\.rds)\.(?P<suffix>[a-z0-9.-]+)$"
)


@dataclass(frozen=True)
class RdsEndpoint:
    """What an RDS endpoint's host name says about itself."""

    host: str  # lower case, no trailing dot
    name: str  # the cluster / instance / proxy / custom endpoint identifier (first label)
    kind: EndpointKind
    region: str
    partition: str  # aws, aws-cn, aws-us-gov, ...


@functools.lru_cache(maxsize=1)
def _partitions() -> list[dict[str, Any]]:
    from botocore.loaders import Loader

    data: dict[str, Any] = Loader().load_data("partitions")
    return list(data["partitions"])


def partition_of_region(region: str) -> str:
    """The ARN partition of REGION (`aws`, `aws-cn`, `aws-us-gov`, ...); `aws` when botocore knows none."""
    return _partition_entry(region)[0]


def _partition_entry(region: str) -> tuple[str, str]:
    """(partition id, DNS suffix) for REGION, from botocore's partition table."""
    lowered = region.lower()
    for entry in _partitions():
        if lowered in entry.get("regions", {}) or re.match(entry["regionRegex"], lowered):
            return str(entry["id"]), str(entry["outputs"]["dnsSuffix"])
    return "aws", "amazonaws.com"


def parse_rds_endpoint(host: str) -> RdsEndpoint | None:
    """Kind, region and partition of an RDS endpoint host name; None for anything else (IPs, own DNS)."""
    lowered = host.strip().rstrip(".").lower()
    m = _HOST.match(lowered)
    if m is None:
        return None
    region = m.group("region_after") or m.group("region_before")
    partition, suffix = _partition_entry(region)
    # A China region must end in amazonaws.com.cn (either layout); the older China layout puts the region
    # before `rds` and ends in amazonaws.com.cn as well.
    if m.group("suffix") != suffix:
        return None
    kind: EndpointKind = _KINDS.get(m.group("kind") or "", "instance")
    if m.group("sub") is not None and kind != "proxy":
        return None  # only RDS Proxy has an extra label (ENDPOINT.endpoint.proxy-ID...)
    return RdsEndpoint(lowered, m.group("name"), kind, region, partition)


def endpoint_region(host: str) -> str | None:
    """The region an RDS endpoint host name is in, or None when HOST is not an RDS endpoint."""
    parsed = parse_rds_endpoint(host)
    return parsed.region if parsed is not None else None


def require_endpoint_region(host: str, region: str, source: str) -> None:
    """Refuse REGION (which SOURCE gave, e.g. "the config") when the RDS endpoint HOST names another one.

    A token signed for a region other than the endpoint's is always refused by RDS; better to say so, naming
    both, than to sign it. Raises DiscoveryError(kind="region_mismatch").
    """
    from pgiam_tui.aws.errors import DiscoveryError

    named = endpoint_region(host)
    if named is not None and named != region.lower():
        shown = host.lower().rstrip(".")
        raise DiscoveryError(
            f"endpoint {shown} is in region {named}, but {source} says {region}",
            "region_mismatch",
            f'remove the region setting or set region = "{named}" (a token must be signed for {named})',
        )
