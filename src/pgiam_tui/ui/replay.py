"""`pgiam-tui replay FILE`: the console on a recording, with time travel.

ReplaySource plays a recording's snapshots through the same SnapshotSource protocol as the live Monitor, so
the panes, keys and rendering are the console's own. The moment shown is a time T on the recording's
timeline; each cluster shows its newest snapshot taken at or before T, and the app's clock is T (ages and
countdowns read as they did then). Read-only: cancel, terminate and the connection check are refused.

Keys (besides the console's): `]` / `[` next / previous moment, `}` / `{` ten moments, `<` / `>` first /
last, `space` play / pause, `1` play at 1x, `0` play at 10x, `j` jump to a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from pgiam_tui.model import ClusterSnapshot, SessionRow
from pgiam_tui.recording import Recording
from pgiam_tui.textsafe import visible
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.keys import bindings
from pgiam_tui.ui.source import (
    BackendAction,
    CheckProgressSink,
    CheckView,
    Emit,
    MfaHandler,
    SourceUnavailable,
)

__all__ = ["ReplayApp", "ReplaySource", "parse_moment"]

READ_ONLY = "replay is read-only: a recording cannot cancel, terminate or check"
PLAY_TICK_S = 0.2


class ReplaySource:
    """A recording as a SnapshotSource: `seek(i)` shows moment i (every cluster as it was then)."""

    def __init__(self, snapshots: Sequence[ClusterSnapshot]) -> None:
        ordered = sorted(snapshots, key=lambda s: s.collected_at)
        self.times: list[datetime] = sorted({s.collected_at for s in ordered})
        self._per_cluster: dict[str, tuple[list[datetime], list[ClusterSnapshot]]] = {}
        for snap in ordered:
            times, snaps = self._per_cluster.setdefault(snap.name, ([], []))
            times.append(snap.collected_at)
            snaps.append(snap)
        self.index = 0
        self._shown: dict[str, ClusterSnapshot] = {}
        self._emit: Emit | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Clusters in the recording, in order of first appearance."""
        return tuple(self._per_cluster)

    @property
    def moment(self) -> datetime:
        """The time shown."""
        return self.times[self.index] if self.times else datetime.now(UTC)

    def at(self, when: datetime) -> dict[str, ClusterSnapshot]:
        """Each cluster's newest snapshot taken at or before WHEN."""
        shown = {}
        for name, (times, snaps) in self._per_cluster.items():
            i = bisect.bisect_right(times, when) - 1
            if i >= 0:
                shown[name] = snaps[i]
        return shown

    def index_at(self, when: datetime) -> int:
        """The last moment at or before WHEN (the first one when WHEN is earlier)."""
        return max(0, bisect.bisect_right(self.times, when) - 1)

    def seek(self, index: int) -> None:
        """Show moment INDEX (clamped); emits only the clusters whose snapshot changed."""
        if not self.times:
            return
        self.index = max(0, min(len(self.times) - 1, index))
        for name, snap in self.at(self.moment).items():
            if self._shown.get(name) is not snap:
                self._shown[name] = snap
                if self._emit is not None:
                    self._emit(snap)

    # -- SnapshotSource ------------------------------------------------------------------------------

    async def start(self, emit: Emit) -> None:
        """Show the first moment."""
        self._emit = emit
        self.seek(self.index)

    async def stop(self) -> None:
        """Nothing to release."""
        self._emit = None

    async def refresh_now(self, name: str | None) -> None:
        """A recording has nothing newer to collect."""

    def set_interval(self, name: str | None, seconds: float) -> None:
        """The recorded interval is what it was."""

    def pause(self) -> None:
        """Nothing polls."""

    def resume(self) -> None:
        """Nothing polls."""

    async def run_check(self, name: str, progress: CheckProgressSink | None = None) -> CheckView:
        """Refused: a recording cannot connect."""
        raise SourceUnavailable(READ_ONLY)

    async def backend_action(self, name: str, instance: str, pid: int, action: BackendAction) -> str:
        """Refused: read-only."""
        raise SourceUnavailable(READ_ONLY)

    async def terminate_idle_transactions(self, name: str, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
        """Refused: read-only."""
        raise SourceUnavailable(READ_ONLY)

    def set_mfa_handler(self, handler: MfaHandler | None) -> None:
        """No AWS calls, no MFA."""

    @property
    def records_actions(self) -> bool:
        """No actions are ever taken."""
        return False


def parse_moment(text: str, day: datetime) -> datetime:
    """A time to jump to: ISO 8601 (`2026-12-03T03:12:00+00:00`), `HH:MM[:SS]` on DAY's date in DAY's zone,
    or an offset from the recording's start (`+90s`, `+10m`). ValueError with one line otherwise."""
    from pgiam_tui.durations import DurationError, parse_duration

    raw = text.strip()
    if raw.startswith("+"):
        try:
            return day + timedelta(seconds=parse_duration(raw[1:]))
        except DurationError as exc:
            raise ValueError(str(exc)) from None
    try:
        value = datetime.fromisoformat(raw)
        return value if value.tzinfo else value.replace(tzinfo=day.tzinfo)
    except ValueError:
        pass
    parts = raw.split(":")
    if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        h, m, s = (int(p) for p in (*parts, "0")[:3])
        if h < 24 and m < 60 and s < 60:
            return day.replace(hour=h, minute=m, second=s, microsecond=0)
    raise ValueError(f"not a time: {raw!r} (try 03:12, 03:12:30, +10m or an ISO 8601 time)")


class JumpScreen(ModalScreen[str | None]):
    """Asks for the time to jump to."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        """A label and an input."""
        with Vertical(id="jump"):
            yield Label("Jump to (03:12, 03:12:30, +10m, ISO 8601); Esc cancels")
            yield Input(id="jump-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Return the text typed."""
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without jumping."""
        self.dismiss(None)


class ReplayApp(PgiamApp):
    """The console on a ReplaySource, with a time bar and time-travel keys."""

    BINDINGS: ClassVar[list[BindingType]] = [*PgiamApp.BINDINGS, *bindings("replay")]  # ui/keys.py
    REPLAY: ClassVar[bool] = True

    def __init__(self, recording: Recording, path: str) -> None:
        self.replay = ReplaySource(recording.snapshots)
        self.recording = recording
        self.path = path
        self.speed = 1.0
        self.playing = False
        self._play_timer: Timer | None = None
        self._play_clock: datetime | None = None
        super().__init__(self.replay, (), now=lambda: self.replay.moment, tick=False)
        self.selected = self.replay.names[0] if self.replay.names else None

    DEFAULT_CSS = """
    #timebar { dock: top; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def compose(self) -> ComposeResult:
        """The console's own layout, and the time bar docked on top (the footer owns the bottom edge)."""
        yield from super().compose()
        yield Static("", id="timebar")

    def on_mount(self) -> None:
        """The console's mount, then the time bar."""
        super().on_mount()
        self._update_timebar()

    # -- time travel ---------------------------------------------------------------------------------

    def _seek(self, index: int) -> None:
        self.replay.seek(index)
        self._update_timebar()

    def action_step(self, count: int) -> None:
        """Move COUNT moments (negative: back); stops playing."""
        self._stop_playing()
        self._seek(self.replay.index + count)

    def action_seek_edge(self, last: int) -> None:
        """First (0) or last (1) moment."""
        self._stop_playing()
        self._seek(len(self.replay.times) - 1 if last else 0)

    def action_play(self) -> None:
        """Play / pause at the current speed."""
        if self.playing:
            self._stop_playing()
        else:
            self._start_playing()
        self._update_timebar()

    def action_play_at(self, speed: int) -> None:
        """Play at SPEED x real time."""
        self.speed = float(speed)
        self._start_playing()
        self._update_timebar()

    def action_pause(self) -> None:
        """`p` plays / pauses (as it pauses polling in the live console)."""
        self.action_play()

    def action_jump(self) -> None:
        """Ask for a time and show the moment at or before it."""

        def answered(text: str | None) -> None:
            if not text:
                return
            try:
                when = parse_moment(text, self.replay.times[0] if self.replay.times else self.now())
            except ValueError as exc:
                self.notify(visible(str(exc)), severity="warning", markup=False)
                return
            self._stop_playing()
            self._seek(self.replay.index_at(when))

        self.push_screen(JumpScreen(), answered)

    def _start_playing(self) -> None:
        if self.replay.index >= len(self.replay.times) - 1:
            self.replay.index = 0
        self.playing = True
        self._play_clock = self.replay.moment
        if self._play_timer is None:
            self._play_timer = self.set_interval(PLAY_TICK_S, self._advance)

    def _stop_playing(self) -> None:
        self.playing = False
        if self._play_timer is not None:
            self._play_timer.stop()
            self._play_timer = None

    def _advance(self) -> None:
        if not self.playing or self._play_clock is None:
            return
        self._play_clock += timedelta(seconds=PLAY_TICK_S * self.speed)
        target = self.replay.index_at(self._play_clock)
        if target != self.replay.index:
            self._seek(target)
        if self.replay.index >= len(self.replay.times) - 1:
            self._stop_playing()
            self._update_timebar()

    def _update_timebar(self) -> None:
        self.query_one("#timebar", Static).update(timebar_text(self))

    # -- read-only -------------------------------------------------------------------------------------

    def _actions_allowed(self, name: str) -> bool:
        return False

    def action_signal_backend(self, cluster: str, instance: str, pid: int, action: str) -> None:
        """Refused in a replay."""
        self.notify(READ_ONLY, severity="warning", markup=False)

    def action_check(self) -> None:
        """Refused in a replay."""
        self.notify(READ_ONLY, severity="warning", markup=False)


def timebar_text(app: ReplayApp) -> Text:
    """` REPLAY  PLAYING 10x  2026-12-03 03:12:04 UTC  moment 15/240  [████░░░░]  03:00:00 → 04:00:00`.

    One line, never wrapped: what matters most comes first, so a narrow terminal cuts only the key hints.
    """
    src = app.replay
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" REPLAY ", style="bold reverse")
    text.append(f" {'PLAYING' if app.playing else 'PAUSED'} {app.speed:g}x  ")
    if not src.times:
        text.append("empty recording", style="dim")
        return text
    text.append(src.moment.strftime("%Y-%m-%d %H:%M:%S %Z"), style="bold")
    text.append(f"  moment {src.index + 1}/{len(src.times)}", style="dim")
    if app.recording.skipped or app.recording.torn_tail:
        text.append(f"  skipped {app.recording.skipped} torn line(s)", style="yellow")
    width = 20
    filled = round(width * src.index / max(1, len(src.times) - 1))
    text.append("  [" + "█" * filled + "░" * (width - filled) + "]")
    text.append(f"  {src.times[0]:%H:%M:%S} → {src.times[-1]:%H:%M:%S}", style="dim")
    text.append("   [ ] step  < > ends  space play  1 0 speed  j jump", style="dim")
    return text
