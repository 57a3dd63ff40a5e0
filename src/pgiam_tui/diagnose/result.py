"""Result types of the connection check and their JSON form.

`CheckStep` and `CheckResult` are the public contract the console's check modal and `check --json` render.
Every string in them is plain text (control characters already made visible) and never contains a token or
a password: the steps only ever describe a token (host, port, region, expiry), never show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pgiam_tui.vocabulary import CheckCause

StepStatus = Literal["ok", "failed", "skipped"]
EvidenceSource = Literal["aws_log", "inference"]

# The steps in the order they run; a check always reports all of them.
STEP_NAMES = (
    "config",
    "credentials",
    "discovery",
    "token",
    "address",
    "tcp",
    "tls",
    "authentication",
    "session",
    "members",
)


@dataclass(frozen=True)
class CheckStep:
    """One step of the check: what was tried, how long it took, what was seen and what to do about it."""

    name: str
    status: StepStatus
    ms: float
    detail: str
    hint: str | None = None
    cause: CheckCause | None = None  # the cause when this step is where the cause shows
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    """The whole check of one cluster: ok means a session was opened and is fit for monitoring."""

    cluster: str
    ok: bool
    steps: tuple[CheckStep, ...]
    cause: CheckCause | None = None  # e.g. CheckCause.IAM_AUTH_DISABLED
    fix: str | None = None
    evidence_source: EvidenceSource | None = None  # how the cause of a refused login was decided
    cause_text: str | None = None  # the cause as a sentence
    evidence: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()  # ranked candidate causes when nothing decided it
    connected: bool = False  # a session was opened (exit code 0 needs ok; see commands/check.py)

    def step(self, name: str) -> CheckStep:
        """The step called NAME (KeyError if there is none)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def failed_step(self) -> CheckStep | None:
        """The first failed step, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)


def result_to_json(result: CheckResult) -> dict[str, Any]:
    """The `check --json` object of DESIGN.md, plus cause, fix and evidence fields."""
    return {
        "cluster": result.cluster,
        "ok": result.ok,
        "connected": result.connected,
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "ms": round(s.ms, 1),
                "detail": s.detail,
                "hint": s.hint,
                "cause": s.cause,
                "evidence": list(s.evidence),
            }
            for s in result.steps
        ],
        "cause": result.cause,
        "cause_text": result.cause_text,
        "fix": result.fix,
        "evidence": list(result.evidence),
        "evidence_source": result.evidence_source,
        "candidates": list(result.candidates),
    }


@dataclass
class StepBuilder:
    """Mutable scratch form of a step while the check runs; frozen into a CheckStep at the end."""

    name: str
    status: StepStatus = "skipped"
    ms: float = 0.0
    detail: str = ""
    hint: str | None = None
    cause: CheckCause | None = None
    evidence: list[str] = field(default_factory=list)
    own_ms: float | None = None  # the step's own duration when it ran concurrently with an earlier one

    def ok(self, detail: str, hint: str | None = None) -> None:
        """Mark the step passed."""
        self.status, self.detail, self.hint = "ok", detail, hint

    def fail(self, detail: str, hint: str | None = None, cause: CheckCause | None = None) -> None:
        """Mark the step failed (optionally naming the cause code seen here)."""
        self.status, self.detail, self.hint = "failed", detail, hint
        if cause is not None:
            self.cause = cause

    def skip(self, detail: str) -> None:
        """Mark the step skipped, saying why."""
        self.status, self.detail = "skipped", detail

    def freeze(self) -> CheckStep:
        """The immutable step."""
        return CheckStep(
            name=self.name,
            status=self.status,
            ms=self.ms,
            detail=self.detail,
            hint=self.hint,
            cause=self.cause,
            evidence=tuple(self.evidence),
        )
