"""AWS's reasons on refused logins, live: the console's Monitor for 10 minutes on the sandbox, every round's
attempts checked against the stand-in's record of each refusal's true reason (`frontdoor-diagnostics.log`).

The sandbox runs with its workload (a refused IAM login every 5 s per cluster: a token of the wrong role,
NotAuthorized, or a garbled one, InvalidToken). The Monitor runs its rounds as the console does; after each
round every refused attempt it shows is compared with the record. An attempt counts as wrong if any round
showed it with a reason other than its true one (a reason not yet arrived is "pending", not wrong).
`--seconds N` shortens the run (default 600).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox_process import sandbox_up


def truth(path: Path) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    """(instance, client host:port) -> [(time, AWS code)] of every refusal the stand-in recorded with a code
    (a list: the OS reuses client ports, so one address can be refused more than once in a long run)."""
    out: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        stamp, _, rest = line.partition(" ")
        fields = dict(w.split("=", 1) for w in rest.split(" ")[:4] if "=" in w)
        if fields.get("code", "-") != "-":
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            out.setdefault((fields["instance"], fields["client"]), []).append((when, fields["code"]))
    return out


def true_code(record: dict[tuple[str, str], list[tuple[datetime, str]]], where: tuple[str, str],
              when: datetime | None) -> str | None:  # fmt: skip
    """The recorded code of the refusal at WHERE closest to WHEN (within a minute)."""
    best: tuple[float, str] | None = None
    for at, code in record.get(where, ()):
        gap = abs((at - when).total_seconds()) if when is not None else 0.0
        if gap <= 60 and (best is None or gap < best[0]):
            best = (gap, code)
    return best[1] if best else None


async def watch(profiles: Path, diagnostics: Path, seconds: float) -> dict[str, int]:
    """Run the Monitor for SECONDS; count refused logins shown, wrong reasons, and reasons still missing."""
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.config import load_config
    from pgiam_tui.model import ClusterSnapshot
    from pgiam_tui.monitor import Monitor

    latest: dict[str, ClusterSnapshot] = {}
    shown: dict[str, set[str | None]] = {}  # attempt key -> every AWS code a round showed for it
    where: dict[str, tuple[str, str]] = {}
    times: dict[str, datetime | None] = {}

    def on_snapshot(snap: ClusterSnapshot) -> None:
        latest[snap.name] = snap
        for a in snap.attempts:
            if a.failed and a.method == "iam":
                shown.setdefault(a.key, set()).add(a.aws_code)
                where[a.key] = (a.instance or "", f"{a.host}:{a.port}")
                times[a.key] = a.time

    monitor = Monitor(load_config(profiles), SessionFactory(), on_snapshot)
    await monitor.start()
    try:
        await asyncio.sleep(seconds)
        await asyncio.sleep(20)  # the last refusals' lines reach CloudWatch and one more round reads them
    finally:
        await monitor.stop()
    record = truth(diagnostics)
    refused = wrong = missing = 0
    final = {a.key: a.aws_code for s in latest.values() for a in s.attempts}
    for key, codes in shown.items():
        code = true_code(record, where[key], times[key])
        if code is None:
            continue
        refused += 1
        if any(c is not None and c != code for c in codes):
            wrong += 1
            print(f"wrong: {where[key]} at {times[key]}: shown {sorted(map(str, codes))}, true {code}",
                  file=sys.stderr)  # fmt: skip
        missing += final.get(key) is None
    recorded = sum(len(v) for v in record.values())
    return {"refused": refused, "wrong": wrong, "missing": missing, "recorded": recorded}


def main() -> None:
    """Start `pgiam-tui sandbox up` (workload on), watch, stop it by its pid, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=600.0)
    seconds = ap.parse_args().seconds
    started = time.monotonic()
    with sandbox_up("bench-attempts-") as box:
        info: dict[str, Any] = json.loads((box / "sandbox.json").read_text())
        figures = asyncio.run(watch(box / "profiles.toml", box / "frontdoor-diagnostics.log", seconds))
    minutes = (time.monotonic() - started) / 60
    print("## Connection attempts: AWS's reasons, live (bench/bench_attempts.py)\n")
    print(
        f"The console's Monitor on the sandbox ({len(info['clusters'])} clusters, workload on) for "
        f"{seconds / 60:.0f} minutes ({minutes:.0f} with start and stop); each round's refused IAM logins "
        "compared with the stand-in's record of their true reasons.\n"
    )
    print("| measure | value | aim |")
    print("|---|---|---|")
    enough = round(200 * seconds / 600)  # the aim of the 10-minute run, scaled to this one
    print(f"| refused IAM logins shown (with a recorded reason) | {figures['refused']} | >= {enough} |")
    print(f"| wrong AWS reasons shown (any round) | {figures['wrong']} | 0 |")
    print(f"| reasons still missing at the end | {figures['missing']} | 0 |")
    print(f"| refusals the stand-in recorded with an AWS code | {figures['recorded']} | |")
    print()


if __name__ == "__main__":
    main()
