"""`pgiam-tui [--config FILE] check NAME [--json]`: the connection check, step by step.

Exit codes (DESIGN.md's contract): 0 when it connected, 1 when not (the cause and the fix are printed),
2 usage or config error (unknown cluster name, bad config file). Nothing printed ever contains a token.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pgiam_tui.diagnose import CheckResult

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

    lines = _render_lines(result)
    # Every part is already plain text; this is the last line of defence for the terminal.
    return "\n".join(visible(line, limit=4000) for line in lines)


def _render_lines(result: CheckResult) -> list[str]:
    width = max(len(s.name) for s in result.steps)
    lines = [f"check {result.cluster}"]
    for s in result.steps:
        ms = f"{s.ms:8.1f} ms" if s.status != "skipped" else " " * 11
        lines.append(f"  {_MARK[s.status]:<7} {s.name:<{width}} {ms}  {s.detail}")
        if s.hint:
            lines.append(f"  {'':<7} {'':<{width}} {'':11}  hint: {s.hint}")
    if result.ok:
        lines.append("result: connected")
        return lines
    lines.append("result: " + ("connected, with a problem" if result.connected else "NOT connected"))
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


def run(args: argparse.Namespace) -> int:
    """Run the check of one cluster and print it (text or JSON)."""
    import asyncio

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
    result = asyncio.run(run_check(cfg, SessionFactory(terminal_mfa_prompt)))
    if args.json:
        print(to_json(result_to_json(result), indent=2))
    else:
        print(render_text(result))
    # The contract is "0 when it connected": a login that works but lacks pg_monitor still prints its
    # failed step, cause and fix (and "ok": false in JSON), yet scripts testing reachability get 0.
    return 0 if result.connected else 1
