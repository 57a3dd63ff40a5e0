"""profiles.toml's schema: the dataclasses every module codes against, and what the loader derives from them.

The dataclass is the one description of a cluster's settings: each field's type says the kind of value the
file must hold (string, integer, number, boolean, port, tunnels) and, for a `Literal` or a `StrEnum` of the
vocabulary, the allowed values.
The loader validates with `KEYS`, derived here from the fields, so a new setting is one new field.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from types import UnionType
from typing import Literal

from pgiam_tui.config.errors import ConfigError
from pgiam_tui.vocabulary import LogSource

AuthMode = Literal["iam", "password"]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

# A field's metadata may name its kind when its type alone does not (a port is an int in 1..65535), or mark it
# as the loader's own (not a key of the file).
_PORT = {"kind": "port"}
_INTERNAL = {"internal": True}


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """One watched cluster or instance as written in profiles.toml (after defaults are applied)."""

    name: str
    profile: str | None = None  # AWS profile; None = default credential chain
    region: str | None = None
    cluster_id: str | None = None  # Aurora: discover endpoint, port, resource id, members
    instance_id: str | None = None  # RDS for PostgreSQL: DbiResourceId
    endpoint: str | None = None  # given directly (with port and resource_id)
    port: int = field(default=5432, metadata=_PORT)
    resource_id: str | None = None
    account_id: str | None = None
    use_reader_endpoint: bool = False  # connect to the reader endpoint instead of member instances
    watch_members: bool = True  # Aurora: watch every member instance (writer and readers)
    database: str = "postgres"
    user: str = "pgmonitor"
    auth: AuthMode = "iam"
    sslmode: SslMode = "verify-full"
    sslrootcert: str | None = None
    hostaddr: str | None = None  # tunnel: TCP goes here, TLS name and token stay the endpoint
    # tunnel: local port (the token is still signed for endpoint:port)
    local_port: int | None = field(default=None, metadata=_PORT)
    # per-endpoint tunnels for member instances: (endpoint host, "hostaddr:port") pairs;
    # TOML: [clusters.tunnels] "writer.xxx.rds.amazonaws.com" = "127.0.0.1:15433"
    tunnels: tuple[tuple[str, str], ...] = ()
    connect_timeout_s: float = 5.0
    statement_timeout_ms: int = 3000
    refresh_s: float = 2.0
    # AWS read requests per minute for this cluster's account and region, shared by every cluster there
    # (None: aws.budget.DEFAULT_REQUESTS_PER_MINUTE; the smallest value given for one account and region wins)
    aws_requests_per_minute: int | None = None
    iam_profile: str | None = None  # optional second profile allowed to read IAM
    log_source: LogSource = LogSource.AUTO
    log_group: str | None = None  # override /aws/rds/cluster/ID/postgresql
    log_file: str | None = None  # for log_source = "file"
    log_line_prefix: str = "%t:%r:%u@%d:[%p]:"
    log_timezone: str | None = None  # the server's log_timezone (IANA name) when it does not log UTC
    cloudtrail: bool = False  # look up AssumeRole events on the monitoring role
    monitor_role_arn: str | None = None
    group: str | None = None  # label used to group clusters in the list
    allow_actions: bool = False  # cancel / terminate backends from the console
    read_only: bool = True
    # the line of the [[clusters]] entry, for messages (set by the loader, not a key of the file)
    source_line: int | None = field(default=None, metadata=_INTERNAL)


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
        import difflib

        names = [c.name for c in self.clusters]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"{self.path}: no cluster named {name!r} ({guess}known: {', '.join(names) or 'none'})"
        )


Kind = Literal["string", "integer", "number", "boolean", "port", "tunnels"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What one key of a cluster table accepts: its kind and, for a choice, the allowed values."""

    name: str
    kind: Kind
    choices: tuple[str, ...] = ()
    enum: type[StrEnum] | None = None  # the choices as members: the loader stores the member


def _spec(name: str, hint: object, metadata: typing.Mapping[str, object]) -> KeySpec:
    if isinstance(hint, UnionType):  # `X | None`: absent in TOML means the default
        (hint,) = (a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is Literal:
        return KeySpec(name, "string", tuple(str(a) for a in typing.get_args(hint)))
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return KeySpec(name, "string", tuple(m.value for m in hint), hint)
    if metadata.get("kind") == "port":
        return KeySpec(name, "port")
    kinds: dict[object, Kind] = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in kinds:
        return KeySpec(name, kinds[hint])
    if typing.get_origin(hint) is tuple:
        return KeySpec(name, "tunnels")
    raise TypeError(f"ClusterConfig.{name}: no config kind for {hint!r}")  # a new field's type needs one


def _key_specs() -> dict[str, KeySpec]:
    hints = typing.get_type_hints(ClusterConfig)
    return {
        f.name: _spec(f.name, hints[f.name], f.metadata)
        for f in fields(ClusterConfig)
        if not f.metadata.get("internal")
    }


#: Every key a [defaults] table or [[clusters]] entry may hold, in the dataclass's order.
KEYS: dict[str, KeySpec] = _key_specs()


def parse_hostport(value: str) -> tuple[str, int] | None:
    """'addr:port' (or '[v6]:port') -> (addr, port); None when malformed."""
    host, sep, port_text = value.rpartition(":")
    # ASCII digits only, at most 5: int() refuses "²" and 5,000-digit strings with an exception
    if not sep or not host or not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port
