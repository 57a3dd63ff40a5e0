"""profiles.toml -> typed, validated model.

The dataclasses below are the contract every other module codes against. Loading and validation
(`load_config`) name the file, the line and the key in every error (ConfigError), exit code 2 in the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AuthMode = Literal["iam", "password"]
LogSource = Literal["auto", "cloudwatch", "rds_logfile", "file", "none"]


class ConfigError(Exception):
    """A problem in the config file; str() names file, line and key."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One watched cluster or instance as written in profiles.toml (after defaults are applied)."""

    name: str
    profile: str | None = None  # AWS profile; None = default credential chain
    region: str | None = None
    cluster_id: str | None = None  # Aurora: discover endpoint, port, resource id, members
    instance_id: str | None = None  # RDS for PostgreSQL: DbiResourceId
    endpoint: str | None = None  # given directly (with port and resource_id)
    port: int = 5432
    resource_id: str | None = None
    account_id: str | None = None
    use_reader_endpoint: bool = False  # connect to the reader endpoint instead of member instances
    watch_members: bool = True  # Aurora: watch every member instance (writer and readers)
    database: str = "postgres"
    user: str = "pgmonitor"
    auth: AuthMode = "iam"
    sslmode: str = "verify-full"
    sslrootcert: str | None = None
    hostaddr: str | None = None  # tunnel: TCP goes here, TLS name and token stay the endpoint
    local_port: int | None = None  # tunnel: local port (token still signed for endpoint:port)
    # per-endpoint tunnels for member instances: (endpoint host, "hostaddr:port") pairs;
    # TOML: [clusters.tunnels] "writer.xxx.rds.amazonaws.com" = "127.0.0.1:15433"
    tunnels: tuple[tuple[str, str], ...] = ()
    connect_timeout_s: float = 5.0
    statement_timeout_ms: int = 3000
    refresh_s: float = 2.0
    iam_profile: str | None = None  # optional second profile allowed to read IAM
    log_source: LogSource = "auto"
    log_group: str | None = None  # override /aws/rds/cluster/ID/postgresql
    log_file: str | None = None  # for log_source = "file"
    log_line_prefix: str = "%t:%r:%u@%d:[%p]:"
    cloudtrail: bool = False  # look up AssumeRole events on the monitoring role
    monitor_role_arn: str | None = None
    group: str | None = None  # label used to group clusters in the list
    allow_actions: bool = False  # cancel / terminate backends from the console
    read_only: bool = True
    source_line: int | None = None  # line of the [[clusters]] entry, for messages


@dataclass(frozen=True, slots=True)
class Config:
    """The whole file: defaults already merged into each cluster."""

    path: Path | None
    clusters: tuple[ClusterConfig, ...] = field(default_factory=tuple)

    def cluster(self, name: str) -> ClusterConfig:
        """The cluster called NAME, or ConfigError listing the known names."""
        for c in self.clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters) or "none"
        raise ConfigError(f"{self.path}: no cluster named {name!r} (known: {known})")
