"""Where the console's snapshots come from: the live Monitor (canned ones: tools/pgiam_devtools).

The app talks to a `SnapshotSource` only; it never imports collectors itself, so a fixed list of snapshots
exercises the same rendering path as the live Monitor. Heavy imports (boto3, psycopg) stay inside methods.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pgiam_tui.model import ClusterSnapshot, ConnEvent, EventKind, SessionRow
from pgiam_tui.vocabulary import CheckCause

if TYPE_CHECKING:
    from pgiam_tui.config import Config

Emit = Callable[[ClusterSnapshot], None]
BackendAction = Literal["cancel", "terminate"]
MfaHandler = Callable[[str], str]


class SourceUnavailable(Exception):
    """A feature the current source cannot provide (message is one line for the user)."""


@dataclass(frozen=True, slots=True)
class CheckStepView:
    """One step of a connection check as the modal shows it (mirrors diagnose.CheckStep)."""

    name: str
    status: str  # ok | failed | skipped
    ms: float | None = None
    detail: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class CheckView:
    """A connection check result as the modal shows it (mirrors diagnose.CheckResult)."""

    cluster: str
    ok: bool
    steps: tuple[CheckStepView, ...]
    cause: CheckCause | None = None
    fix: str | None = None
    cause_text: str | None = None  # the sentence `pgiam-tui check` prints
    evidence: tuple[str, ...] = ()
    evidence_source: str | None = None  # "aws_log" | "inference"
    candidates: tuple[str, ...] = ()
    connected: bool = False


# A step starting (None) or finished (its view), as the check runs: the modal shows progress with it.
CheckProgressSink = Callable[[str, "CheckStepView | None"], None]


def step_view(s: Any) -> CheckStepView:
    """Adapt one diagnose.CheckStep (duck-typed)."""
    return CheckStepView(
        name=str(getattr(s, "name", "?")),
        status=str(getattr(s, "status", "?")),
        ms=getattr(s, "ms", None),
        detail=str(getattr(s, "detail", "") or ""),
        hint=str(getattr(s, "hint", "") or ""),
    )


def check_view(result: Any) -> CheckView:
    """Adapt diagnose.CheckResult (duck-typed, so the UI does not import the diagnosis at start)."""
    steps = tuple(step_view(s) for s in getattr(result, "steps", ()))
    return CheckView(
        cluster=str(getattr(result, "cluster", "")),
        ok=bool(getattr(result, "ok", False)),
        steps=steps,
        cause=getattr(result, "cause", None),
        fix=getattr(result, "fix", None),
        cause_text=getattr(result, "cause_text", None),
        evidence=tuple(str(e) for e in getattr(result, "evidence", ())),
        evidence_source=getattr(result, "evidence_source", None),
        candidates=tuple(str(c) for c in getattr(result, "candidates", ())),
        connected=bool(getattr(result, "connected", False)),
    )


class SnapshotSource(Protocol):
    """What the console needs from a producer of snapshots."""

    async def start(self, emit: Emit) -> None:
        """Begin producing; `emit` is called on the app's event loop for each snapshot."""

    async def stop(self) -> None:
        """Stop producing and release connections."""

    async def refresh_now(self, name: str | None) -> None:
        """Collect now (one cluster or all)."""

    def set_interval(self, name: str | None, seconds: float) -> None:
        """Change the polling interval (one cluster or all)."""

    def pause(self) -> None:
        """Stop polling until resume()."""

    def resume(self) -> None:
        """Poll again."""

    async def run_check(self, name: str, progress: CheckProgressSink | None = None) -> CheckView:
        """Run the connection check on one cluster (PROGRESS hears of each step as it starts/finishes)."""

    async def backend_action(self, name: str, instance: str, pid: int, action: BackendAction) -> str:
        """Cancel or terminate a backend; returns a one-line outcome."""

    async def terminate_idle_transactions(self, name: str, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
        """Terminate these idle-in-transaction sessions if still idle in the same transaction; a line each."""

    def set_mfa_handler(self, handler: MfaHandler | None) -> None:
        """Where MFA codes are asked (called from a boto3 thread)."""

    @property
    def records_actions(self) -> bool:
        """True when backend_action itself records an 'action' event in later snapshots."""


class MonitorSource:
    """The live source: the Monitor on the app's own event loop (async psycopg; boto3 in threads)."""

    def __init__(
        self,
        config: Config,
        sessions: Any | None = None,
        *,
        cache_dir: Path | None = None,
        monitor_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        # passed on to Monitor (e.g. collect_events=False for a server with no AWS around it)
        self._monitor_options = dict(monitor_options or {})
        self._sessions = sessions
        # None: the AWS CLI's own cache (~/.aws/cli/cache). The demo and tests give their own directory,
        # because cached assumed-role keys from another sandbox (another moto) would be reused there.
        self._cache_dir = cache_dir
        self._monitor: Any = None
        self._mfa_handler: MfaHandler | None = None

    def _mfa_prompt(self, prompt: str) -> str:
        """Called by boto3 (in a worker thread) when an assumed role needs an MFA code."""
        if self._mfa_handler is None:
            raise SourceUnavailable("an MFA code is needed but no prompt is available")
        return self._mfa_handler(prompt)

    @property
    def sessions(self) -> Any:
        """The SessionFactory (created on first use so the MFA prompt is wired in)."""
        if self._sessions is None:
            from pgiam_tui.aws.session import SessionFactory

            self._sessions = SessionFactory(mfa_prompt=self._mfa_prompt, cache_dir=self._cache_dir)
        return self._sessions

    def set_mfa_handler(self, handler: MfaHandler | None) -> None:
        """Install the app's modal prompt."""
        self._mfa_handler = handler

    records_actions = True

    async def start(self, emit: Emit) -> None:
        """Create and start the Monitor; it calls `emit` for every round of every cluster."""
        from pgiam_tui.monitor import Monitor

        self._monitor = Monitor(self.config, self.sessions, emit, **self._monitor_options)
        await self._monitor.start()

    async def stop(self) -> None:
        """Stop the Monitor (closes every connection)."""
        if self._monitor is not None:
            monitor, self._monitor = self._monitor, None
            await monitor.stop()

    async def refresh_now(self, name: str | None) -> None:
        """Ask the Monitor for a round now."""
        if self._monitor is not None:
            await self._monitor.refresh_now(name)

    def set_interval(self, name: str | None, seconds: float) -> None:
        """Change polling intervals (all clusters when `name` is None)."""
        if self._monitor is None:
            return
        names = [c.name for c in self.config.clusters] if name is None else [name]
        for n in names:
            self._monitor.set_interval(n, seconds)

    def pause(self) -> None:
        """Pause polling."""
        if self._monitor is not None:
            self._monitor.pause()

    def resume(self) -> None:
        """Resume polling."""
        if self._monitor is not None:
            self._monitor.resume()

    async def run_check(self, name: str, progress: CheckProgressSink | None = None) -> CheckView:
        """diagnose.run_check for one cluster, each step reported to PROGRESS as it starts and finishes."""
        # Imported by name at call time: the check module is heavy and optional for the console.
        module = importlib.import_module("pgiam_tui.diagnose")
        run_check = getattr(module, "run_check", None)
        if run_check is None:
            raise SourceUnavailable("the connection check is not available in this build")

        def relay(event: Any) -> None:
            if progress is not None:
                step = getattr(event, "step", None)
                progress(str(event.name), step_view(step) if step is not None else None)

        result = await run_check(self.config.cluster(name), self.sessions, progress=relay)
        return check_view(result)

    async def backend_action(self, name: str, instance: str, pid: int, action: BackendAction) -> str:
        """Monitor.signal_backend (which also records the action as an event of that cluster)."""
        if self._monitor is None:
            raise SourceUnavailable("the monitor is not running")
        outcome = await self._monitor.signal_backend(name, instance, pid, terminate=action == "terminate")
        return str(outcome)

    async def terminate_idle_transactions(self, name: str, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
        """Monitor.terminate_idle_transactions (which records each outcome as an event of that cluster)."""
        if self._monitor is None:
            raise SourceUnavailable("the monitor is not running")
        return tuple(str(x) for x in await self._monitor.terminate_idle_transactions(name, sessions))


def action_event(name: str, instance: str, pid: int, action: str, outcome: str, now: Any) -> ConnEvent:
    """A local 'action' event, shown at once while the Monitor's own record is on its way."""
    return ConnEvent(
        time=now,
        kind=EventKind.ACTION,
        pid=pid,
        source="console",
        message=f"{action} backend pid {pid} on {instance}: {outcome}",
        instance=instance,
    )
