"""A cluster's health at a glance, for the cluster list's second line (no Textual here).

From the snapshot: the longest running query and the oldest open transaction (client sessions), connections
against max_connections, transactions per second (from two consecutive samples of the server's counter) and
replica lag where the server can tell. What the server could not tell is left out, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from pgiam_tui.model import ClusterSnapshot, ServerHealth
from pgiam_tui.ui.activity_model import is_background
from pgiam_tui.ui.render import fmt_duration

LONG_QUERY_S = 60.0  # a query running longer than this is shown in yellow, 10x in red
LONG_XACT_S = 300.0
CONN_WARN = 0.8  # share of max_connections in use shown in yellow, 0.95 in red


@dataclass(frozen=True, slots=True)
class Sample:
    """The transaction counter of one instance at the server's clock."""

    xact_total: int
    at: datetime


class TpsMeter:
    """Transactions per second per cluster, from consecutive ServerHealth samples of each instance."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Sample] = {}
        self._rate: dict[tuple[str, str], float] = {}

    def feed(self, snap: ClusterSnapshot) -> None:
        """Take the snapshot's samples; a rate needs two samples of the same instance, later and not lower
        (a statistics reset or a failover starts again)."""
        for inst in snap.instances:
            h = inst.health
            if h is None or h.xact_total is None or h.sampled_at is None:
                continue
            key = (snap.name, inst.id)
            now = Sample(h.xact_total, h.sampled_at)
            before = self._last.get(key)
            if before is not None and now.at > before.at:
                seconds = (now.at - before.at).total_seconds()
                if now.xact_total >= before.xact_total:
                    self._rate[key] = (now.xact_total - before.xact_total) / seconds
                else:
                    self._rate.pop(key, None)
            if before is None or now.at > before.at:
                self._last[key] = now

    def tps(self, snap: ClusterSnapshot) -> float | None:
        """The cluster's transactions per second (all instances), None until two samples were seen."""
        rates = [self._rate[(snap.name, i.id)] for i in snap.instances if (snap.name, i.id) in self._rate]
        return sum(rates) if rates else None


def _healths(snap: ClusterSnapshot) -> list[ServerHealth]:
    return [i.health for i in snap.instances if i.health is not None]


def _level(value: float, warn: float, alarm: float) -> str:
    if value >= alarm:
        return "bold red"
    if value >= warn:
        return "yellow"
    return ""


def fmt_lag(seconds: float) -> str:
    """Replica lag: milliseconds below a second (Aurora's lag is usually tens of ms), else a duration."""
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    return fmt_duration(seconds)


def health_parts(snap: ClusterSnapshot, tps: float | None) -> list[tuple[str, str, str]]:
    """(label, value, style) of what the server told, most urgent first."""
    parts: list[tuple[str, str, str]] = []
    clients = [r for r in snap.activity if not is_background(r)]
    running = [r.duration_s for r in clients if r.state == "active" and r.duration_s is not None]
    xacts = [r.xact_duration_s for r in clients if r.xact_duration_s is not None]
    healths = _healths(snap)
    if running:
        longest = max(running)
        parts.append(("query", fmt_duration(longest), _level(longest, LONG_QUERY_S, 10 * LONG_QUERY_S)))
    if xacts:
        oldest = max(xacts)
        parts.append(("xact", fmt_duration(oldest), _level(oldest, LONG_XACT_S, 4 * LONG_XACT_S)))
    limits = [(h.connections, h.max_connections) for h in healths]
    if limits and all(c is not None and m for c, m in limits):
        # members of one cluster each have their own limit: the fullest one matters
        used, limit = max(limits, key=lambda cm: (cm[0] or 0) / (cm[1] or 1))
        if used is not None and limit:
            parts.append(("conn", f"{used}/{limit}", _level(used / limit, CONN_WARN, 0.95)))
    if tps is not None:
        parts.append(("tps", f"{tps:.0f}" if tps >= 10 else f"{tps:.1f}", ""))
    lags = [h.replica_lag_s for h in healths if h.replica_lag_s is not None]
    if lags:
        lag = max(lags)
        parts.append(("lag", fmt_lag(lag), _level(lag, 5.0, 60.0)))
    return parts


def health_line(snap: ClusterSnapshot | None, tps: float | None, width: int | None = None) -> Text:
    """E.g. `query 5m12s  xact 12m03s  conn 45/500  tps 120  lag 20ms`: dim labels, alarms coloured.

    Within WIDTH, whole parts only: a part that does not fit is left out, never cut.
    """
    if snap is None:
        return Text(no_wrap=True, end="")
    return parts_line(health_parts(snap, tps), width)


def parts_line(parts: list[tuple[str, str, str]], width: int | None = None) -> Text:
    """The line of `health_parts` (see health_line): the cluster list keeps the parts of each snapshot
    and redraws the line from them, instead of walking every session again each second."""
    line = Text(no_wrap=True, end="")
    for label, value, style in parts:
        gap = "  " if line.plain else ""
        if width is not None and len(line.plain) + len(gap) + len(label) + 1 + len(value) > width:
            continue
        line.append(gap)
        line.append(label + " ", style="dim")
        line.append(value, style=style)
    return line
