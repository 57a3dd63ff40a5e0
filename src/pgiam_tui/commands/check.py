"""`pgiam-tui [--config FILE] check NAME [--json]`: the connection check, step by step.

Exit codes (DESIGN.md's contract): 0 when it connected, 1 when not (the cause and the fix are printed),
2 usage or config error (unknown cluster name, bad config file). Nothing printed ever contains a token.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pgiam_tui.diagnose import CheckProgress, CheckResult, CheckStep

_MARK = {"ok": "ok", "failed": "FAILED", "skipped": "skipped"}


def register(subparsers: Any) -> None:
    """Add the `check` command."""
    parser = subparsers.add_parser(
        "check",
        help="check the connection to a cluster, step by step",
        description="Walk config, credentials, discovery, token, address, TCP, TLS, authentication and "
        "session for cluster NAME; when a step fails, name the likely cause, its evidence and the fix. "
        "Exit 0 when connected, 1 when not, 2 on usage/config errors.",
    )
    parser.add_argument("name", metavar="NAME", help="cluster name from the config")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def render_text(result: CheckResult) -> str:
    """The human form: one line per step, then cause, evidence and fix when something failed."""
    from pgiam_tui.textsafe import visible

    lines = [f"check {result.cluster}"]
    for step in result.steps:
        lines.extend(_step_lines(step, _width()))
    lines.extend(_summary(result))
    # Every part is already plain text; this is the last line of defence for the terminal.
    return "\n".join(visible(line, limit=4000) for line in lines)


def _width() -> int:
    from pgiam_tui.diagnose import STEP_NAMES

    return max(len(n) for n in STEP_NAMES)


def _step_lines(s: CheckStep, width: int) -> list[str]:
    ms = f"{s.ms:8.1f} ms" if s.status != "skipped" else " " * 11
    lines = [f"  {_MARK[s.status]:<7} {s.name:<{width}} {ms}  {s.detail}"]
    if s.hint:
        lines.append(f"  {'':<7} {'':<{width}} {'':11}  hint: {s.hint}")
    return lines


def _summary(result: CheckResult) -> list[str]:
    if result.ok:
        return ["result: connected"]
    lines = ["result: " + ("connected, with a problem" if result.connected else "NOT connected")]
    if result.cause:
        lines.append(f"cause: {result.cause_text or result.cause} [{result.cause}]")
    if result.evidence:
        source = {"aws_log": "AWS's iam-db-auth-error log", "inference": "inference"}.get(
            result.evidence_source or "", "the steps above"
        )
        lines.append(f"evidence (from {source}):")
        lines.extend(f"  - {e}" for e in result.evidence)
    if result.candidates:
        lines.append("candidate causes, most likely first:")
        lines.extend(f"  {i}. {c}" for i, c in enumerate(result.candidates, 1))
    if result.fix:
        lines.append(f"fix: {result.fix}")
    return lines


class StreamPrinter:
    """Prints each step the moment it finishes (on a terminal, the running step shows as "…" first),
    in colour on a terminal unless NO_COLOR is set; then the summary."""

    def __init__(self, out: TextIO, *, colour: bool, live: bool) -> None:
        self.out = out
        self.colour = colour
        self.live = live  # a terminal: the running step is shown and then overwritten
        self.width = _width()
        self.shown: dict[str, CheckStep] = {}

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _safe(self, text: str) -> str:
        from pgiam_tui.textsafe import visible

        return visible(text, limit=4000)

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def header(self, cluster: str) -> None:
        """The first line."""
        self._write(self._paint(self._safe(f"check {cluster}"), "1") + "\n")

    def __call__(self, event: CheckProgress) -> None:
        """A step started or finished."""
        if event.step is None:
            if self.live:
                running = f"  {'…':<7} {event.name:<{self.width}} {'':11}  running…"
                self._write(self._paint(self._safe(running), "2"))
            return
        self.shown[event.name] = event.step
        prefix = "\r\x1b[2K" if self.live else ""
        self._write(prefix + self._step(event.step) + "\n")

    def _step(self, step: CheckStep, note: str = "") -> str:
        first, *rest = (self._safe(line) for line in _step_lines(step, self.width))
        mark = f"  {_MARK[step.status]:<7}"
        colour = {"ok": "32", "failed": "1;31", "skipped": "2"}[step.status]
        first = "  " + self._paint(mark[2:], colour) + first[len(mark) :] + self._safe(note)
        return "\n".join([first, *(self._paint(line, "2") for line in rest)])

    def finish(self, result: CheckResult) -> None:
        """Steps the end of the check revised, then result, cause, evidence and fix."""
        for step in result.steps:
            before = self.shown.get(step.name)
            if before is not None and before.status != step.status:
                self._write(self._step(step, "  (revised: the login showed this did not stop it)") + "\n")
        for line in _summary(result):
            safe = self._safe(line)
            if line.startswith("result: connected") and not line.endswith("problem"):
                safe = self._paint(safe, "1;32")
            elif line.startswith(("result:", "cause:")):
                safe = self._paint(safe, "1;31")
            elif line.startswith("fix:"):
                safe = self._paint(safe, "1;33")
            self._write(safe + "\n")


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM=dumb."""
    import os

    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run(args: argparse.Namespace) -> int:
    """Run the check of one cluster and print it (text or JSON)."""
    import asyncio
    import sys

    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.commands._cliutil import fail, load_cli_config, terminal_mfa_prompt
    from pgiam_tui.config import ConfigError
    from pgiam_tui.diagnose import result_to_json, run_check
    from pgiam_tui.textsafe import to_json

    try:
        cfg = load_cli_config(args.config).cluster(args.name)
    except ConfigError as exc:
        fail(str(exc))
        return 2
    if args.json:
        result = asyncio.run(run_check(cfg, SessionFactory(terminal_mfa_prompt)))
        print(to_json(result_to_json(result), indent=2))
    else:
        tty = use_colour(sys.stdout)
        printer = StreamPrinter(sys.stdout, colour=tty, live=bool(sys.stdout.isatty()))
        printer.header(cfg.name)
        result = asyncio.run(run_check(cfg, SessionFactory(terminal_mfa_prompt), progress=printer))
        printer.finish(result)
    # The contract is "0 when it connected": a login that works but lacks pg_monitor still prints its
    # failed step, cause and fix (and "ok": false in JSON), yet scripts testing reachability get 0.
    return 0 if result.connected else 1
