"""The default command: the console (TUI) on every cluster of the config file.

`pgiam-tui [--config FILE]`. A missing or invalid config is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgiam_tui.commands._signals import ExitSignals


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


def run_console(config: Any, *, cache_dir: Path | None = None, signals: ExitSignals | None = None) -> int:
    """Run the app on the live Monitor until the user quits or a signal ends it; the app's exit code.

    SIGTERM/SIGHUP/SIGINT exit through the app's own path (monitor stopped, terminal restored), with
    128 + the signal's number. SIGNALS, when given, is the caller's (the demo keeps it for its own cleanup).
    """
    from pgiam_tui.commands._signals import ExitSignals
    from pgiam_tui.ui.app import PgiamApp
    from pgiam_tui.ui.source import MonitorSource

    app = PgiamApp(MonitorSource(config, cache_dir=cache_dir), config.clusters)
    if signals is not None:
        return int(signals.run_app(app) or 0)
    with ExitSignals() as own:
        return int(own.run_app(app) or 0)


def run(args: argparse.Namespace) -> int:
    """Load the config, run the console; exit 2 on config errors."""
    from pgiam_tui.commands._signals import leave_terminal_program

    config = load(getattr(args, "config", None))
    if config is None:
        return 2
    return leave_terminal_program(run_console(config))
