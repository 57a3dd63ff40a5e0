"""profiles.toml -> the typed model of config/schema.py, validated key by key.

Every error (ConfigError) names the file, the line and the key, and is one line: exit code 2 in the CLI. What
a key accepts comes from the schema's dataclass (`KEYS`); this module adds what a type cannot say: aliases
people bring from libpq and the AWS CLI, the shapes of AWS identifiers, and which keys go together.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pgiam_tui.aws.endpoints import REGION_PATTERN
from pgiam_tui.config.errors import ConfigError, Lines, scan_lines
from pgiam_tui.config.schema import KEYS, ClusterConfig, Config, parse_hostport

CONFIG_ENV = "PGIAM_TUI_CONFIG"
APP_DIR_NAME = "pgiam-tui"

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
    "region": (re.compile(REGION_PATTERN), "an AWS region name (like us-east-1)"),
    "account_id": (re.compile(r"[0-9]{12}"), "a 12-digit AWS account id"),
    "resource_id": (
        re.compile(r"(cluster|db)-[A-Z0-9]+"),
        "an RDS resource id (cluster-... for Aurora, db-... for an instance)",
    ),
    "monitor_role_arn": (re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/.+"), "an IAM role ARN"),
}


def resolve_config_path(explicit: str | None) -> Path:
    """Where the config lives: `--config`, then `$PGIAM_TUI_CONFIG`, then the platform config dir."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only needed on this path; keeps `--help` fast

    return Path(platformdirs.user_config_dir(APP_DIR_NAME)) / "profiles.toml"


class _Checker:
    """Validates one table (defaults or a cluster) and collects typed values."""

    def __init__(self, path: Path, lines: Lines) -> None:
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
        what = f" key {_quoted(key)}:" if key is not None else ""
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
            if key not in KEYS:
                close = [_ALIASES[key]] if key in _ALIASES else []
                close = close or difflib.get_close_matches(key, list(KEYS), n=1, cutoff=0.65)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(index, key, f"unknown key{hint}")
            if index is None and key == "name":
                raise self.error(index, key, "a name belongs in a [[clusters]] entry, not in [defaults]")
            out[key] = self.value(index, key, value)
        return out

    def value(self, index: int | None, key: str, value: Any) -> Any:
        spec = KEYS[key]
        kind = spec.kind
        if kind == "string":
            if not isinstance(value, str):
                raise self.error(index, key, f"expected a string, got {_type_name(value)}")
            if spec.choices and value not in spec.choices:
                allowed = ", ".join(repr(v) for v in spec.choices)
                raise self.error(index, key, f"invalid value {_quoted(value)} (expected one of {allowed})")
            if not value.strip():
                raise self.error(index, key, "must not be empty")
            pattern = _PATTERNS.get(key)
            if pattern is not None and not pattern[0].fullmatch(value):
                raise self.error(index, key, f"{_quoted(value)} is not {pattern[1]}")
            if key in _PATH_KEYS:
                try:
                    return _resolve_path(self.path, value)
                except RuntimeError:  # expanduser: "~name/..." for a user this machine does not have
                    raise self.error(
                        index, key, f"{_quoted(value)}: no home directory for that ~user"
                    ) from None
            return spec.enum(value) if spec.enum is not None else value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise self.error(index, key, f"expected true or false, got {_type_name(value)}")
            return value
        if kind in ("integer", "port"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(index, key, f"expected an integer, got {_type_name(value)}")
            if kind == "port" and not 1 <= value <= 65535:
                raise self.error(index, key, f"port {value} out of range 1-65535")
            if kind == "integer" and value <= 0:
                raise self.error(index, key, f"must be positive, got {value}")
            return value
        if kind == "number":
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
                raise self.error(
                    index, key, f'tunnel for {_quoted(host)}: expected "addr:port", got {_quoted(target)}'
                )
            pairs.append((host, target))
        return tuple(pairs)


def _quoted(value: object, limit: int = 60) -> str:
    """VALUE from the file as a message shows it: quoted like Python (a newline in a key stays on one
    line), cut to LIMIT characters (a 5,000-digit port is not worth repeating)."""
    shown = repr(value) if isinstance(value, str) else str(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


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
    """VALUE with ~ expanded, relative to the config file's directory; RuntimeError for an unknown ~user
    (the caller reports it at once, with file, line and key, rather than as a missing file later)."""
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = config_path.parent.absolute() / p
    return str(p)


#: A hand-written profiles.toml is a few KB; anything this large is not one (and would only cost memory).
MAX_CONFIG_BYTES = 1 << 20


def load_config(path: Path) -> Config:
    """Read and validate profiles.toml; raises ConfigError naming file, line and key."""
    path = Path(path)
    return parse_config(_read(path), path)


def _read(path: Path) -> str:
    """The text of PATH, refusing at once anything that is not a regular file of sane size.

    Opened non-blocking and checked with fstat on the open descriptor (no race with a rename): a FIFO would
    otherwise block the read until some writer appears, that is forever, and a device never ends.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found: `pgiam-tui discover --write {path}` writes one for the clusters "
            f"your AWS profiles can see, `pgiam-tui config example > {path}` gives the documented example "
            f"(or pass --config FILE, or set ${CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a profiles.toml file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{path}: is a directory, expected a profiles.toml file")
        raise ConfigError(f"{path}: not a regular file (a pipe or a device?), expected a profiles.toml file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, not a profiles.toml file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None


_TOML_POS_RE = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def parse_config(text: str, path: Path) -> Config:
    """Validate config TEXT (read from PATH, which is only used in messages and for relative paths)."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a few KB of `[[[[...` exhaust the stack
        raise ConfigError(
            f"{path}: TOML nested too deeply (arrays or inline tables within each other)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS_RE.match(str(exc))
        if m:
            raise ConfigError(
                f"{path}:{m['line']}: TOML syntax error: {m['msg']} (column {m['col']})"
            ) from None
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None

    lines = scan_lines(text)
    check = _Checker(path, lines)
    for key in data:
        if key not in _TOP_LEVEL:
            line = lines.top_keys.get(key)
            where = f"{path}:{line}" if line else str(path)
            if key in KEYS:
                hint = " (cluster settings go in [defaults] or a [[clusters]] entry)"
            elif key.lower() in _SECRET_KEYS:
                hint = " (store passwords with `pgiam-tui password set NAME`)"
            else:
                hint = " (expected [defaults] and [[clusters]])"
            raise ConfigError(f"{where}: key {_quoted(key)}: unknown top-level key{hint}")

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
                index, "name", f"duplicate cluster name {_quoted(name)} (first defined at line {first})"
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
            index, None, f"cluster {_quoted(values['name'])} needs one of cluster_id, instance_id or endpoint"
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
    _check_log_format(check, index, values)


def _check_log_format(check: _Checker, index: int, values: dict[str, Any]) -> None:
    """log_line_prefix and log_timezone must be usable by the log parser (its own rules, one message)."""
    from pgiam_tui.collect.logprefix import PrefixError, compile_prefix, parse_zone

    try:
        if values.get("log_line_prefix") is not None:
            compile_prefix(values["log_line_prefix"])
    except PrefixError as exc:
        raise check.error(index, "log_line_prefix", str(exc)) from None
    try:
        if values.get("log_timezone") is not None:
            parse_zone(values["log_timezone"])
    except PrefixError as exc:
        raise check.error(index, "log_timezone", str(exc)) from None
