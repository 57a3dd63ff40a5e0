"""`replay`: the console on a recording, driven by Pilot: moments, stepping, playing, jumping, read-only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgiam_devtools.sample import sample_snapshots
from textual.pilot import Pilot
from textual.widget import Widget

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.recording import FORMAT, RecordingHeader, RecordingWriter, read_recording
from pgiam_tui.ui.replay import ReplayApp, ReplaySource, parse_moment

START = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def recorded(tmp_path: Path, rounds: int = 6) -> Path:
    """A real recording file: every sample cluster each 2 s, the first one's session count growing."""
    path = tmp_path / "rec.jsonl.gz"
    header = RecordingHeader(format=FORMAT, version="test", started_at=START)
    with RecordingWriter(path, header) as writer:
        for i in range(rounds):
            for j, snap in enumerate(sample_snapshots()):
                when = START + timedelta(seconds=2 * i, milliseconds=10 * j)
                rows = snap.activity[: i + 1] if j == 0 else snap.activity
                writer.write(dataclasses.replace(snap, collected_at=when, activity=rows))
    return path


def text(widget: Widget) -> str:
    return "\n".join("".join(s.text for s in widget.render_line(y)) for y in range(widget.size.height))


async def settle(pilot: Pilot[int]) -> None:
    for _ in range(5):
        await pilot.pause()


def shown(app: ReplayApp) -> ClusterSnapshot:
    return app.latest[app.replay.names[0]]


def test_each_cluster_shows_its_newest_snapshot_at_the_moment() -> None:
    snaps = [dataclasses.replace(s, collected_at=START + timedelta(seconds=i)) for i, s in
             enumerate(sample_snapshots())]  # fmt: skip
    source = ReplaySource(list(reversed(snaps)))
    at = source.at(START + timedelta(seconds=1, milliseconds=500))
    assert set(at) == {snaps[0].name, snaps[1].name}
    assert source.index_at(START - timedelta(hours=1)) == 0
    assert source.index_at(START + timedelta(hours=1)) == len(snaps) - 1


def test_jump_targets() -> None:
    assert parse_moment("03:12", START) == START.replace(hour=3, minute=12)
    assert parse_moment("+90s", START) == START + timedelta(seconds=90)
    assert parse_moment("2026-12-03T03:05:00+00:00", START) == START + timedelta(minutes=5)
    for bad in ("25:00", "soon", "+tomorrow"):
        try:
            parse_moment(bad, START)
        except ValueError as exc:
            assert bad.strip("+") in str(exc) or "duration" in str(exc)
        else:
            raise AssertionError(bad)


@pytest.mark.slow
async def test_step_play_jump_and_read_only(tmp_path: Path) -> None:
    rec = read_recording(recorded(tmp_path))
    app = ReplayApp(rec, "rec.jsonl.gz")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bar = app.query_one("#timebar")
        assert "REPLAY" in text(bar) and "03:00:00" in text(bar)
        assert len(shown(app).activity) == 1
        await pilot.press("]")
        await settle(pilot)
        assert app.replay.index == 1
        await pilot.press(">")
        await settle(pilot)
        assert len(shown(app).activity) == 6 and "05:00:10" not in text(bar)
        assert f"moment {len(app.replay.times)}/{len(app.replay.times)}" in text(bar)
        await pilot.press("[")
        await settle(pilot)
        assert app.replay.index == len(app.replay.times) - 2
        # the app's clock is the moment shown, not the wall clock
        assert app.now() == app.replay.moment
        # read-only: cancel and terminate are refused before any confirmation
        await pilot.press("k")
        await settle(pilot)
        assert not any(type(s).__name__ == "ConfirmScreen" for s in app.screen_stack)
        # jump to a time
        await pilot.press("j")
        await settle(pilot)
        await pilot.press(*"03:00:04", "enter")
        await settle(pilot)
        assert app.replay.moment <= START + timedelta(seconds=4) < app.replay.moment + timedelta(seconds=2)
        # play at 10x until the end
        await pilot.press("<", "0")
        for _ in range(200):
            await pilot.pause(0.05)
            if not app.playing:
                break
        assert app.replay.index == len(app.replay.times) - 1 and not app.playing
