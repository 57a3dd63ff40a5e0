"""`pgiam-tui [--config F] snapshot [--cluster NAME] [--json]`: one collection round of every cluster.

All clusters are collected concurrently (one Monitor round each). Output: the JSON contract of DESIGN.md, or a
short readable summary. Exit 0 when every cluster answered, 1 otherwise, 2 for usage or config errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pgiam_tui import textsafe
from pgiam_tui.textsafe import to_json


def register(subparsers: Any) -> None:
    """Add the `snapshot` subcommand."""
    p = subparsers.add_parser(
        "snapshot",
        help="collect every pane once and print it (JSON or text)",
        description="One collection round of every configured cluster (activity, events, IAM), then exit. "
        "Exit status: 0 when every cluster answered, 1 otherwise, 2 for config errors.",
    )
    p.add_argument("--cluster", metavar="NAME", action="append", help="only this cluster (repeatable)")
    p.add_argument("--json", action="store_true", help="print the JSON document of the contract")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Collect once and print; returns the exit status."""
    import asyncio

    from pgiam_tui.commands._cliutil import fail
    from pgiam_tui.config import ConfigError, load_config, resolve_config_path
    from pgiam_tui.headless import collect_once, select_clusters
    from pgiam_tui.jsonout import snapshot_to_json

    names = args.cluster or None
    try:
        config = load_config(resolve_config_path(getattr(args, "config", None)))
        select_clusters(config, names)  # an unknown name (listing the known ones), or no clusters at all
    except ConfigError as exc:
        fail(str(exc))
        return 2

    snapshots = asyncio.run(collect_once(config, names))
    if args.json:
        # C1 controls, DEL and all non-ASCII arrive as \u escapes, never raw on a terminal
        print(to_json(snapshot_to_json(snapshots), indent=2))
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(snapshots))
    return 0 if all(s.status == "ok" for s in snapshots) else 1


def _field(text: str | None, limit: int = 80) -> str:
    """One field of the text summary: None as nothing, whitespace folded to spaces (one readable line),
    everything unsafe escaped by the one cleaner, cut to LIMIT characters."""
    if text is None:
        return ""
    return textsafe.visible(text, limit=limit, layout="space")


_RETRY_SUFFIX = re.compile(r" \(next try at \d\d:\d\d:\d\d\)$")


def _one_shot_error(instance: Any) -> str | None:
    """An instance's error for a one-shot command: the reason alone. The console's "attempt 1, next try at
    …" wording belongs to a monitor that keeps trying; `snapshot` tries once and stops."""
    st = getattr(instance, "connection", None)
    if st is not None and st.state != "connected" and st.reason:
        return str(st.reason)
    return instance.error  # type: ignore[no-any-return]


def render_text(snapshots: Sequence[Any]) -> str:
    """A readable summary per cluster: status, instances, sessions, blocked sessions, IAM, findings.

    Every string goes through _field() (textsafe): names come from a hand-edited file, the rest from
    servers and AWS.
    """
    v = _field
    out: list[str] = []
    for s in snapshots:
        head = f"{v(s.name)}: {s.status.upper()}"
        if s.server_version:
            head += f"  PostgreSQL {v(s.server_version)}"
        if s.stale and s.data_age_s is not None:
            head += f"  (stale: data {s.data_age_s:.0f} s old)"
        out.append(head)
        if s.error:
            message = _RETRY_SUFFIX.sub("", s.error.message)
            out.append(f"  error [{v(s.error.step)}]: {v(message, 200)}")
            if s.error.hint:
                out.append(f"  hint: {v(s.error.hint, 200)}")
        for i in s.instances:
            extra = f" - {v(_one_shot_error(i), 120)}" if i.error else ""
            out.append(f"  {i.role:<8} {v(i.id)} {i.status}{extra}")
        clients = [r for r in s.activity if r.backend_type in (None, "client backend")]
        states = Counter(v(r.state, 30) or "-" for r in clients)
        summary = ", ".join(f"{n} {st}" for st, n in states.most_common()) or "none"
        out.append(f"  sessions: {len(clients)} ({summary})")
        for r in s.activity:
            if r.blocked_by:
                blockers = ",".join(str(p) for p in r.blocked_by)
                out.append(
                    f"  blocked: pid {r.pid} {v(r.usename, 30)} on {v(r.instance)} by {blockers}: "
                    f"{v(r.query, 60)}"
                )
        failed = sum(1 for a in s.attempts if a.failed)
        out.append(f"  events: {len(s.events)}, logins: {len(s.attempts)} ({failed} failed logins)")
        out.extend(_iam_lines(s.iam))
        findings = list(s.findings) + (list(s.iam.findings) if s.iam else [])
        for f in findings:
            out.append(f"  {f.severity}: [{v(f.code)}] {v(f.message, 160)}")
    return "\n".join(out) + "\n"


def _iam_lines(iam: Any) -> list[str]:
    """IAM flag and resource id, the IAM users with who may connect as them, and the last hour's counters."""
    if iam is None:
        return []
    from pgiam_tui.aws.metrics import IAM_METRICS  # here: keeps `pgiam-tui --help` free of boto3

    v = _field
    flag = {True: "enabled", False: "DISABLED", None: "unknown"}[iam.iam_auth_enabled]
    lines = [f"  iam auth: {flag}, resource id {v(iam.resource_id or '-')}"]
    for u in iam.users:
        if not u.rds_iam:
            continue
        names = (v(g.principal_arn.rsplit(":", 1)[-1], 60) for g in u.iam_principals)
        principals = ", ".join(names) or "nobody"
        roles = ", ".join(v(m, 30) for m in u.member_of if m != "rds_iam") or "-"
        lines.append(f"  iam user {v(u.name, 40)} (roles: {roles}); may connect: {principals}")
    totals: Counter[str] = Counter()
    for m in iam.metrics:
        totals.update({k: int(n) for k, n in m.totals.items()})
    if totals:
        counts = ", ".join(f"{k.replace('_', ' ')} {totals[k]}" for k in IAM_METRICS.values() if k in totals)
        lines.append(f"  iam auth connections, last hour: {counts}")
    return lines
