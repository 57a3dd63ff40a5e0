"""profiles.toml -> typed, validated model.

The dataclasses below are the contract every other module codes against. Loading and validation
(`load_config`) name the file, the line and the key in every error (ConfigError), exit code 2 in the CLI.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    # AWS read requests per minute for this cluster's account and region, shared with every cluster there
    aws_requests_per_minute: int | None = None  # None: aws.budget.DEFAULT_REQUESTS_PER_MINUTE
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


# --------------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------------

CONFIG_ENV = "PGIAM_TUI_CONFIG"
APP_DIR_NAME = "pgiam-tui"

AUTH_MODES: tuple[str, ...] = ("iam", "password")
SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
LOG_SOURCES: tuple[str, ...] = ("auto", "cloudwatch", "rds_logfile", "file", "none")

# Value kinds understood by the validator (TOML has no "optional": absent means the default).
_STR, _INT, _FLOAT, _BOOL, _PORT, _TUNNELS = "string", "integer", "number", "boolean", "port", "tunnels"

_KEY_KINDS: dict[str, str] = {
    "name": _STR,
    "profile": _STR,
    "region": _STR,
    "cluster_id": _STR,
    "instance_id": _STR,
    "endpoint": _STR,
    "port": _PORT,
    "resource_id": _STR,
    "account_id": _STR,
    "use_reader_endpoint": _BOOL,
    "watch_members": _BOOL,
    "database": _STR,
    "user": _STR,
    "auth": _STR,
    "sslmode": _STR,
    "sslrootcert": _STR,
    "hostaddr": _STR,
    "local_port": _PORT,
    "tunnels": _TUNNELS,
    "connect_timeout_s": _FLOAT,
    "statement_timeout_ms": _INT,
    "refresh_s": _FLOAT,
    "aws_requests_per_minute": _INT,
    "iam_profile": _STR,
    "log_source": _STR,
    "log_group": _STR,
    "log_file": _STR,
    "log_line_prefix": _STR,
    "cloudtrail": _BOOL,
    "monitor_role_arn": _STR,
    "group": _STR,
    "allow_actions": _BOOL,
    "read_only": _BOOL,
}
_ENUMS: dict[str, tuple[str, ...]] = {"auth": AUTH_MODES, "sslmode": SSL_MODES, "log_source": LOG_SOURCES}
# Paths are taken relative to the config file's directory, so a config can ship with its CA bundle.
_PATH_KEYS = ("sslrootcert", "log_file")
_TARGET_KEYS = ("cluster_id", "instance_id", "endpoint")
_SECRET_KEYS = ("password", "passwd", "secret", "token")
_TOP_LEVEL = ("defaults", "clusters")
# Names people bring from libpq / psql / the AWS CLI.
_ALIASES = {
    "dbname": "database",
    "username": "user",
    "host": "endpoint",
    "hostname": "endpoint",
    "sslrootcert_path": "sslrootcert",
    "aws_profile": "profile",
    "cluster": "cluster_id",
    "instance": "instance_id",
    "db_instance_identifier": "instance_id",
    "db_cluster_identifier": "cluster_id",
    "timeout": "connect_timeout_s",
    "connect_timeout": "connect_timeout_s",
    "statement_timeout": "statement_timeout_ms",
    "refresh": "refresh_s",
    "interval": "refresh_s",
}

# Shapes AWS gives these values; a typo here would otherwise surface as a confusing AWS or login error.
_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "region": (re.compile(r"[a-z]{2}(-[a-z]+)+-\d+"), "an AWS region name (like us-east-1)"),
    "account_id": (re.compile(r"\d{12}"), "a 12-digit AWS account id"),
    "resource_id": (
        re.compile(r"(cluster|db)-[A-Z0-9]+"),
        "an RDS resource id (cluster-... for Aurora, db-... for an instance)",
    ),
    "monitor_role_arn": (re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/.+"), "an IAM role ARN"),
}

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def resolve_config_path(explicit: str | None) -> Path:
    """Where the config lives: `--config`, then `$PGIAM_TUI_CONFIG`, then the platform config dir."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed on this path; keeps `--help` fast

    return Path(platformdirs.user_config_dir(APP_DIR_NAME)) / "profiles.toml"


@dataclass
class _Lines:
    """Line numbers found by a light scan of the TOML text (tomllib keeps no positions)."""

    defaults: int | None = None
    defaults_keys: dict[str, int] = field(default_factory=dict)
    top_keys: dict[str, int] = field(default_factory=dict)
    clusters: list[int] = field(default_factory=list)
    cluster_keys: list[dict[str, int]] = field(default_factory=list)

    def of(self, index: int | None, key: str | None = None) -> int | None:
        """Line of KEY in cluster INDEX (None = the defaults table), else of the table itself."""
        if index is None:
            if key is not None and key in self.defaults_keys:
                return self.defaults_keys[key]
            return self.defaults
        if index < len(self.clusters):
            if key is not None:
                found = self.cluster_keys[index].get(key)
                if found is not None:
                    return found
            return self.clusters[index]
        # `clusters = [{...}, ...]` written inline: the best we know is where the array starts.
        return self.top_keys.get("clusters")


def _scan_lines(text: str) -> _Lines:
    lines = _Lines()
    section: str | None = None  # "defaults", "clusters", "clusters.tunnels", "other" or None (top level)
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(raw)
        if header:
            name = header.group(2).replace(" ", "")
            if header.group(1) == "[[" and name == "clusters":
                section = "clusters"
                lines.clusters.append(number)
                lines.cluster_keys.append({})
            elif name == "defaults":
                section = "defaults"
                lines.defaults = number
            elif name.startswith("clusters.") and lines.clusters:
                section = "clusters.sub"
                sub = name.split(".", 1)[1]
                lines.cluster_keys[-1].setdefault(sub, number)
            elif name.startswith("defaults."):
                section = "defaults.sub"
                lines.defaults_keys.setdefault(name.split(".", 1)[1], number)
            else:
                section = "other"
                lines.top_keys.setdefault(name.split(".", 1)[0], number)
            continue
        key_match = _KEY_RE.match(raw)
        if key_match is None:
            continue
        key = key_match.group(1).strip("\"'").split(".", 1)[0]
        for quote in ('"""', "'''"):
            if raw.count(quote) % 2 == 1:
                in_multiline = quote
        if section is None:
            lines.top_keys.setdefault(key, number)
        elif section == "defaults":
            lines.defaults_keys.setdefault(key, number)
        elif section == "clusters":
            lines.cluster_keys[-1].setdefault(key, number)
    return lines


class _Checker:
    """Validates one table (defaults or a cluster) and collects typed values."""

    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines

    def error(self, index: int | None, key: str | None, message: str) -> ConfigError:
        line = self.lines.of(index, key)
        if (
            index is not None
            and key is not None
            and index < len(self.lines.cluster_keys)
            and key not in self.lines.cluster_keys[index]
            and key in self.lines.defaults_keys
        ):
            # The value came from [defaults]: point there, and say which entry it broke.
            line = self.lines.defaults_keys[key]
            message += (
                f" (set in [defaults]; for the [[clusters]] entry at line {self.lines.clusters[index]})"
            )
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        what = f" key '{key}':" if key is not None else ""
        return ConfigError(f"{where}:{what} {message}")

    def table(self, raw: Mapping[str, Any], index: int | None) -> dict[str, Any]:
        """Check every key of RAW; returns the typed values (paths resolved, tunnels as pairs)."""
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key.lower() in _SECRET_KEYS:
                cluster = raw.get("name") if index is not None else None
                target = cluster if isinstance(cluster, str) and cluster else "NAME"
                raise self.error(
                    index,
                    key,
                    f"secrets do not belong in this file; store it with `pgiam-tui password set {target}` "
                    "(kept in the OS keyring) and remove this key",
                )
            if key not in _KEY_KINDS or key == "source_line":
                close = [_ALIASES[key]] if key in _ALIASES else []
                close = close or difflib.get_close_matches(key, list(_KEY_KINDS), n=1, cutoff=0.65)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(index, key, f"unknown key{hint}")
            if index is None and key == "name":
                raise self.error(index, key, "a name belongs in a [[clusters]] entry, not in [defaults]")
            out[key] = self.value(index, key, value)
        return out

    def value(self, index: int | None, key: str, value: Any) -> Any:
        kind = _KEY_KINDS[key]
        if kind == _STR:
            if not isinstance(value, str):
                raise self.error(index, key, f"expected a string, got {_type_name(value)}")
            if key in _ENUMS and value not in _ENUMS[key]:
                allowed = ", ".join(repr(v) for v in _ENUMS[key])
                raise self.error(index, key, f"invalid value {value!r} (expected one of {allowed})")
            if not value.strip():
                raise self.error(index, key, "must not be empty")
            pattern = _PATTERNS.get(key)
            if pattern is not None and not pattern[0].fullmatch(value):
                raise self.error(index, key, f"{value!r} is not {pattern[1]}")
            if key in _PATH_KEYS:
                return _resolve_path(self.path, value)
            return value
        if kind == _BOOL:
            if not isinstance(value, bool):
                raise self.error(index, key, f"expected true or false, got {_type_name(value)}")
            return value
        if kind in (_INT, _PORT):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(index, key, f"expected an integer, got {_type_name(value)}")
            if kind == _PORT and not 1 <= value <= 65535:
                raise self.error(index, key, f"port {value} out of range 1-65535")
            if kind == _INT and value <= 0:
                raise self.error(index, key, f"must be positive, got {value}")
            return value
        if kind == _FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(index, key, f"expected a number, got {_type_name(value)}")
            if value <= 0:
                raise self.error(index, key, f"must be positive, got {value}")
            return float(value)
        # tunnels: { "endpoint host" = "addr:port", ... }
        if not isinstance(value, dict):
            raise self.error(
                index, key, f'expected a table of "endpoint" = "addr:port", got {_type_name(value)}'
            )
        pairs: list[tuple[str, str]] = []
        for host, target in value.items():
            if not isinstance(target, str) or parse_hostport(target) is None:
                raise self.error(index, key, f'tunnel for {host!r}: expected "addr:port", got {target!r}')
            pairs.append((host, target))
        return tuple(pairs)


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _resolve_path(config_path: Path, value: str) -> str:
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = config_path.parent.absolute() / p
    return str(p)


def parse_hostport(value: str) -> tuple[str, int] | None:
    """'addr:port' (or '[v6]:port') -> (addr, port); None when malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        return None
    port = int(port_text)
    if not 1 <= port <= 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def load_config(path: Path) -> Config:
    """Read and validate profiles.toml; raises ConfigError naming file, line and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (create it from profiles.example.toml, or pass --config FILE "
            f"or set ${CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a profiles.toml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    return parse_config(text, path)


_TOML_POS_RE = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def parse_config(text: str, path: Path) -> Config:
    """Validate config TEXT (read from PATH, which is only used in messages and for relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS_RE.match(str(exc))
        if m:
            raise ConfigError(
                f"{path}:{m['line']}: TOML syntax error: {m['msg']} (column {m['col']})"
            ) from None
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None

    lines = _scan_lines(text)
    check = _Checker(path, lines)
    for key in data:
        if key not in _TOP_LEVEL:
            line = lines.top_keys.get(key)
            where = f"{path}:{line}" if line else str(path)
            if key in _KEY_KINDS:
                hint = " (cluster settings go in [defaults] or a [[clusters]] entry)"
            elif key.lower() in _SECRET_KEYS:
                hint = " (store passwords with `pgiam-tui password set NAME`)"
            else:
                hint = " (expected [defaults] and [[clusters]])"
            raise ConfigError(f"{where}: key '{key}': unknown top-level key{hint}")

    raw_defaults = data.get("defaults", {})
    if not isinstance(raw_defaults, dict):
        raise check.error(None, "defaults", "expected a table: [defaults]")
    defaults = check.table(raw_defaults, None)

    raw_clusters = data.get("clusters", [])
    if not isinstance(raw_clusters, list) or not all(isinstance(c, dict) for c in raw_clusters):
        line = lines.top_keys.get("clusters")
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: key 'clusters': expected [[clusters]] tables")

    clusters: list[ClusterConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_clusters):
        values = {**defaults, **check.table(raw, index)}
        name = values.get("name")
        if name is None:
            raise check.error(index, None, "[[clusters]] entry without a 'name'")
        if name in seen:
            first = lines.of(seen[name])
            raise check.error(
                index, "name", f"duplicate cluster name {name!r} (first defined at line {first})"
            )
        seen[name] = index
        _check_consistency(check, index, values)
        values["source_line"] = lines.of(index)
        clusters.append(ClusterConfig(**values))
    return Config(path=path, clusters=tuple(clusters))


def _check_consistency(check: _Checker, index: int, values: dict[str, Any]) -> None:
    targets = [k for k in _TARGET_KEYS if values.get(k) is not None]
    if not targets:
        raise check.error(
            index, None, f"cluster {values['name']!r} needs one of cluster_id, instance_id or endpoint"
        )
    if len(targets) > 1:
        # Name the key written in this entry, not one inherited from [defaults].
        raw_keys = check.lines.cluster_keys[index] if index < len(check.lines.cluster_keys) else {}
        key = next((k for k in reversed(targets) if k in raw_keys), targets[-1])
        raise check.error(
            index,
            key,
            f"conflicts with {', '.join(t for t in targets if t != key)}: give only one of "
            "cluster_id (Aurora), instance_id (RDS for PostgreSQL) or endpoint (direct)",
        )
    if values.get("use_reader_endpoint") and values.get("cluster_id") is None:
        raise check.error(
            index, "use_reader_endpoint", "only Aurora clusters (cluster_id) have a reader endpoint"
        )
    if values.get("local_port") is not None and values.get("hostaddr") is None:
        raise check.error(
            index, "local_port", 'needs hostaddr (the tunnel\'s local address, e.g. "127.0.0.1")'
        )
    if values.get("log_source") == "file" and values.get("log_file") is None:
        raise check.error(index, "log_source", 'log_source = "file" needs log_file')
