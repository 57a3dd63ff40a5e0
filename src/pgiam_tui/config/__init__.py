"""profiles.toml: the schema (dataclasses every module codes against), the loader, and error positions.

The names below are the package's public face; the modules are `schema`, `loader` and `errors`.
"""

from __future__ import annotations

from pgiam_tui.config.errors import ConfigError
from pgiam_tui.config.loader import (
    APP_DIR_NAME,
    CONFIG_ENV,
    MAX_CONFIG_BYTES,
    load_config,
    parse_config,
    resolve_config_path,
)
from pgiam_tui.config.schema import (
    KEYS,
    AuthMode,
    ClusterConfig,
    Config,
    KeySpec,
    SslMode,
    parse_hostport,
)

__all__ = [
    "APP_DIR_NAME",
    "CONFIG_ENV",
    "KEYS",
    "MAX_CONFIG_BYTES",
    "AuthMode",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "KeySpec",
    "SslMode",
    "load_config",
    "parse_config",
    "parse_hostport",
    "resolve_config_path",
]
