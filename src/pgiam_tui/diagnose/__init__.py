"""The connection check: "why can't I connect?" answered step by step.

`run_check(cfg, sessions)` walks config -> credentials -> discovery -> token -> address -> tcp -> tls ->
authentication -> session -> members (every instance the console will watch), timing each step and recording
what it saw. When something fails it names the likely cause (a stable code, see causes.CAUSES), the evidence
and the fix. A refused IAM login is explained from AWS's own iam-db-auth-error log when the cluster exports
it and the profile can read it, otherwise by inference (`CheckResult.evidence_source` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgiam_tui.diagnose.causes import CAUSES, Diagnosis
from pgiam_tui.diagnose.context import CheckContext, Clock, utc_now
from pgiam_tui.diagnose.result import (
    STEP_NAMES,
    CheckResult,
    CheckStep,
    StepBuilder,
    result_to_json,
)
from pgiam_tui.diagnose.steps_aws import step_config, step_credentials, step_discovery, step_token
from pgiam_tui.diagnose.steps_db import step_authentication, step_session
from pgiam_tui.diagnose.steps_members import step_members
from pgiam_tui.diagnose.steps_net import step_address, step_tcp, step_tls
from pgiam_tui.vocabulary import CheckCause

if TYPE_CHECKING:
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.config import ClusterConfig

__all__ = [
    "CAUSES",
    "STEP_NAMES",
    "CheckProgress",
    "CheckResult",
    "CheckStep",
    "ProgressCallback",
    "result_to_json",
    "run_check",
]

log = logging.getLogger(__name__)

Step = Callable[[CheckContext, StepBuilder], Awaitable[bool]]


@dataclass(frozen=True)
class CheckProgress:
    """One step starting (`step` None) or finished (`step` as it stood then; the final result may still
    revise it, e.g. a suspicion that the login then proved harmless)."""

    name: str
    step: CheckStep | None = None


ProgressCallback = Callable[[CheckProgress], None]

_PIPELINE: tuple[tuple[str, Step], ...] = (
    ("config", step_config),
    ("credentials", step_credentials),
    ("discovery", step_discovery),
    ("token", step_token),
    ("address", step_address),
    ("tcp", step_tcp),
    ("tls", step_tls),
    ("authentication", step_authentication),
    ("session", step_session),
    ("members", step_members),
)


async def run_check(
    cfg: ClusterConfig,
    sessions: SessionFactory,
    *,
    clock: Clock | None = None,
    log_wait_s: float = 5.0,
    progress: ProgressCallback | None = None,
) -> CheckResult:
    """Check the connection to CFG's cluster, step by step (boto3 and sockets run in threads).

    `clock` is the local clock (tests pass a skewed one, as a machine with a wrong clock has);
    `log_wait_s` bounds how long a refused login waits for AWS's iam-db-auth-error line to arrive;
    `progress` hears of each step as it starts and as it finishes (called on the running event loop).
    """
    ctx = CheckContext(cfg=cfg, sessions=sessions, clock=clock or utc_now, log_wait_s=log_wait_s)
    builders = {name: StepBuilder(name) for name, _ in _PIPELINE}
    ctx.prefetch = asyncio.ensure_future(asyncio.to_thread(importlib.import_module, "psycopg"))
    stopped_at: str | None = None
    try:
        for name, step in _PIPELINE:
            b = builders[name]
            if stopped_at is not None:
                b.skip(f"not tried: {stopped_at} failed")
                _tell(progress, CheckProgress(name, b.freeze()))
                continue
            _tell(progress, CheckProgress(name))
            started = time.perf_counter()
            try:
                go_on = await step(ctx, b)
            except Exception as exc:
                log.debug("check step %s crashed: %s", name, type(exc).__name__)
                b.fail(
                    f"internal error in this step: {type(exc).__name__}",
                    "please report this",
                    CheckCause.CONNECT_ERROR,
                )
                ctx.decide(Diagnosis(CheckCause.CONNECT_ERROR, f"the {name} step failed unexpectedly"))
                go_on = False
            b.ms = b.own_ms if b.own_ms is not None else (time.perf_counter() - started) * 1000.0
            _tell(progress, CheckProgress(name, b.freeze()))
            if not go_on:
                stopped_at = name
    finally:
        # Background work is always awaited (its threads cannot be cancelled): nothing outlives the check.
        for pending in (ctx.discovery, ctx.prefetch):
            if pending is not None:
                with contextlib.suppress(Exception):
                    await pending
        if ctx.sock is not None:
            ctx.sock.close()
        if ctx.conn is not None:
            await ctx.conn.close()
    return _finish(ctx, builders)


def _tell(progress: ProgressCallback | None, event: CheckProgress) -> None:
    if progress is None:
        return
    try:
        progress(event)
    except Exception:  # a broken listener (a closed pipe, a gone screen) never stops the check
        log.debug("check progress listener failed", exc_info=True)


def _finish(ctx: CheckContext, builders: dict[str, StepBuilder]) -> CheckResult:
    connected = builders["authentication"].status == "ok"
    if connected:
        # The login worked: what earlier steps suspected did not stop it; keep it as a hint only.
        for step_name, suspected in ctx.suspects:
            b = builders[step_name]
            if b.status == "failed":
                b.status = "ok"
                b.hint = f"{suspected.text} ({suspected.fix})" if b.hint is None else b.hint
                b.cause = None
    elif ctx.diagnosis is None and ctx.suspects:
        ctx.decide(ctx.suspects[0][1], "inference")
    diag = ctx.diagnosis
    if diag is not None:
        # The step where the cause shows carries its code (a confirmed suspicion: the step that predicted it).
        for step_name, suspected in ctx.suspects:
            if suspected.code == diag.code and builders[step_name].status == "failed":
                builders[step_name].cause = diag.code
    steps = tuple(builders[name].freeze() for name, _ in _PIPELINE)
    ok = connected and all(s.status != "failed" for s in steps)
    return CheckResult(
        cluster=ctx.cfg.name,
        ok=ok,
        steps=steps,
        cause=diag.code if diag and not ok else None,
        fix=diag.fix if diag and not ok else None,
        evidence_source=ctx.evidence_source if not ok else None,
        cause_text=diag.text if diag and not ok else None,
        evidence=tuple(diag.evidence) if diag and not ok else (),
        candidates=tuple(ctx.candidates) if not ok else (),
        connected=connected,
    )
