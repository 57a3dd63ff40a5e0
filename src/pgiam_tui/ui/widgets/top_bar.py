"""The top bar of every view: live / PAUSED first (never pushed off), then the heartbeat of the data
shown (when its last round ended and how long it took), then the refresh interval and the identity,
which give way at narrow widths. It is one line that repaints without re-laying-out the screen."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.render import fmt_duration, fmt_time, safe_text
from pgiam_tui.ui.widgets.text_line import TextLine


def _round(snap: ClusterSnapshot) -> str:
    return f"{snap.round_ms / 1000:.1f}s" if snap.round_ms is not None else "?"


def heartbeat(snaps: Sequence[ClusterSnapshot], now: datetime) -> Text:
    """One cluster: `name round 0.3s · 10:00:02, 4s ago`; several: the slowest round and the oldest data."""
    text = Text()
    if not snaps:
        return text
    if len(snaps) == 1:
        snap = snaps[0]
        text.append_text(safe_text(snap.name, 40, style="bold"))
        if snap.round_ms is not None:
            text.append(f" round {_round(snap)}")
    else:
        slowest = max(snaps, key=lambda s: s.round_ms or 0.0)
        text.append(f"{len(snaps)} clusters", style="bold")
        text.append(f", slowest round {_round(slowest)} (")
        text.append_text(safe_text(slowest.name, 30))
        text.append(")")
        snap = min(snaps, key=lambda s: s.collected_at)
    age = max(0.0, (now - snap.collected_at).total_seconds())
    text.append(f" · last {fmt_time(snap.collected_at)}, {fmt_duration(age)} ago", style="dim")
    return text


def topbar_text(
    *,
    paused: bool,
    interval_s: float,
    snaps: Sequence[ClusterSnapshot],
    identity: str | None,
    now: datetime,
    waiting_for: str | None = None,
    replay: bool = False,
) -> Text:
    """The bar's text; what matters most comes first, so a narrow terminal cuts only the identity."""
    text = Text()
    text.append(" pgiam-tui ", style="bold reverse")
    text.append(" ")
    if replay:  # a recording: nothing here is live, and pausing polls nothing
        text.append(" RECORDED ", style="bold black on cyan")
    elif paused:
        text.append(" PAUSED ", style="bold black on yellow")
    else:
        text.append("● live", style="green")
    text.append("  ")
    if snaps:
        text.append_text(heartbeat(snaps, now))
    elif waiting_for:
        text.append_text(safe_text(waiting_for, 40, style="bold"))
        text.append(" first round running…", style="dim")
    text.append(f"  every {interval_s:g}s", style="dim")
    versions = {s.server_version for s in snaps if s.server_version}
    if len(versions) == 1:
        text.append("  PostgreSQL ", style="dim")
        text.append_text(safe_text(versions.pop(), 20))
    text.append("  identity ", style="dim")
    text.append_text(safe_text(identity, 120, none="(not yet known)"))
    return text


class TopBar(TextLine):
    """The top bar (see the module's docstring)."""

    DEFAULT_CSS = """
    TopBar {
        height: 1;
        background: $panel;
    }
    """
