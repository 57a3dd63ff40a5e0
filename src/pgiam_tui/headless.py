"""The Monitor without a screen: what `snapshot`, `record` and `serve` run (no Textual on this path).

The console, `snapshot`, `record` and `serve` share one Monitor class and so one collection path: what is
printed, recorded or exported is what the console would show. This module adds what a headless command
needs: choosing clusters, MFA codes asked on the terminal, one round or a long run that stops cleanly on
SIGINT/SIGTERM/SIGHUP or after a duration, and one-line errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pgiam_tui.config import Config, ConfigError
from pgiam_tui.model import ClusterSnapshot

if TYPE_CHECKING:
    from pgiam_tui.monitor import Monitor

__all__ = ["collect_once", "headless_monitor", "run_monitor", "select_clusters"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def select_clusters(config: Config, names: Sequence[str] | None) -> Config:
    """CONFIG narrowed to NAMES (all when empty); ConfigError names an unknown one and lists the known."""
    if not names:
        if not config.clusters:
            raise ConfigError(f"{config.path}: no clusters configured")
        return config
    chosen = tuple(config.cluster(n) for n in dict.fromkeys(names))
    return dataclasses.replace(config, clusters=chosen)


def headless_monitor(config: Config, on_snapshot: Callable[[ClusterSnapshot], None] | None = None) -> Monitor:
    """The Monitor of a command without a screen: MFA codes are asked on the terminal (the console asks in a
    modal instead)."""
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.commands._cliutil import terminal_mfa_prompt
    from pgiam_tui.monitor import Monitor

    return Monitor(config, SessionFactory(mfa_prompt=terminal_mfa_prompt), on_snapshot)


async def collect_once(config: Config, names: Sequence[str] | None = None) -> list[ClusterSnapshot]:
    """One round of every cluster of NAMES (default: all), in config order; the Monitor is stopped after."""
    monitor = headless_monitor(config)
    try:
        return await monitor.collect_once(names)
    finally:
        await monitor.stop()


async def run_monitor(
    config: Config,
    on_snapshot: Callable[[ClusterSnapshot], None],
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> str:
    """Run the Monitor, handing every snapshot it publishes to ON_SNAPSHOT, until a stop signal, DURATION_S,
    or STOP is set. Returns why it stopped (`signal SIGINT`, `duration`, `stopped`)."""
    stop = stop or asyncio.Event()
    why: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        why.append(f"signal {sig.name}")
        stop.set()

    installed = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    monitor = headless_monitor(config, on_snapshot)
    try:
        await monitor.start()
        try:
            await asyncio.wait_for(stop.wait(), timeout=duration_s)
        except TimeoutError:
            why.append("duration")
    finally:
        await monitor.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return why[0] if why else "stopped"
