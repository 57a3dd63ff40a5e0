"""The default command: the console (TUI) on every cluster of the config file.

`pgiam-tui [--config FILE]`. A missing or invalid config is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add an explicit `console` subcommand (the same as giving no command)."""
    p = subparsers.add_parser("console", help="the interactive console (default when no command is given)")
    p.set_defaults(func=run)


def load(explicit: str | None) -> Any:
    """The validated Config, or a one-line message on stderr and None."""
    from pgiam_tui.config import ConfigError, load_config, resolve_config_path

    try:
        config = load_config(resolve_config_path(explicit))
    except ConfigError as exc:
        print(f"pgiam-tui: {exc}", file=sys.stderr)
        return None
    except OSError as exc:
        print(f"pgiam-tui: cannot read config: {exc}", file=sys.stderr)
        return None
    if not config.clusters:
        print(f"pgiam-tui: {config.path}: no clusters configured", file=sys.stderr)
        return None
    return config


def run_console(config: Any, *, cache_dir: Path | None = None) -> int:
    """Run the app on the live Monitor until the user quits; the app's exit code."""
    from pgiam_tui.ui.app import PgiamApp
    from pgiam_tui.ui.source import MonitorSource

    app = PgiamApp(MonitorSource(config, cache_dir=cache_dir), config.clusters)
    result = app.run()
    return int(result or 0)


def run(args: argparse.Namespace) -> int:
    """Load the config, run the console; exit 2 on config errors."""
    config = load(getattr(args, "config", None))
    if config is None:
        return 2
    return run_console(config)
