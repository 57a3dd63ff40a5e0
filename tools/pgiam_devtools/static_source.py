"""Fixed snapshots as a console source: deterministic UI tests, screenshots of canned data, bench.

Dev tooling, not part of the product package: it drives the same SnapshotSource protocol as the live Monitor.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgiam_tui.model import ClusterSnapshot, SessionRow
from pgiam_tui.ui.source import (
    BackendAction,
    CheckProgressSink,
    CheckView,
    Emit,
    MfaHandler,
    SourceUnavailable,
)


class StaticSource:
    """Fixed snapshots (or rounds of them): deterministic UI tests, screenshots of canned data, bench.

    `rounds[0]` is emitted at start; each refresh_now() emits the next round (the last one repeats).
    """

    def __init__(
        self,
        rounds: Sequence[Sequence[ClusterSnapshot]],
        checks: dict[str, CheckView] | None = None,
    ) -> None:
        self.rounds = [tuple(r) for r in rounds]
        self.checks = dict(checks or {})
        self.index = 0
        self.paused = False
        self.intervals: dict[str | None, float] = {}
        self.actions: list[tuple[str, str, int, str]] = []
        self._emit: Emit | None = None

    async def start(self, emit: Emit) -> None:
        """Emit the first round."""
        self._emit = emit
        if self.rounds:
            for snap in self.rounds[0]:
                emit(snap)

    async def stop(self) -> None:
        """Nothing to release."""
        self._emit = None

    async def refresh_now(self, name: str | None) -> None:
        """Emit the next round (filtered to `name` when given)."""
        if self._emit is None or not self.rounds:
            return
        self.index = min(self.index + 1, len(self.rounds) - 1)
        for snap in self.rounds[self.index]:
            if name is None or snap.name == name:
                self._emit(snap)

    def push(self, snapshots: Sequence[ClusterSnapshot]) -> None:
        """Emit these snapshots now (tests drive changes explicitly)."""
        if self._emit is not None:
            for snap in snapshots:
                self._emit(snap)

    def set_interval(self, name: str | None, seconds: float) -> None:
        """Record the interval (nothing polls)."""
        self.intervals[name] = seconds

    def pause(self) -> None:
        """Record the paused state."""
        self.paused = True

    def resume(self) -> None:
        """Record the resumed state."""
        self.paused = False

    async def run_check(self, name: str, progress: CheckProgressSink | None = None) -> CheckView:
        """The canned check result for `name`."""
        try:
            return self.checks[name]
        except KeyError:
            raise SourceUnavailable(f"no connection check recorded for {name!r}") from None

    async def backend_action(self, name: str, instance: str, pid: int, action: BackendAction) -> str:
        """Record the request (no database behind a static source)."""
        self.actions.append((name, instance, pid, action))
        return f"{action} pid {pid} on {instance}: recorded (static data, nothing sent)"

    async def terminate_idle_transactions(self, name: str, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
        """Record each request (no database behind a static source)."""
        for row in sessions:
            self.actions.append((name, row.instance, row.pid, "terminate"))
        return tuple(
            f"terminate pid {r.pid} on {r.instance}: done (static data, nothing sent)" for r in sessions
        )

    def set_mfa_handler(self, handler: MfaHandler | None) -> None:
        """Static data needs no credentials."""

    records_actions = False
