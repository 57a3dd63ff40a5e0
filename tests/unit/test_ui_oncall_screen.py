"""On-call screen items, on the real app driven by Pilot with canned snapshots (StaticSource): the events
message column at 200 columns, `?` and `q` in every pane's footer at 80x24, and what the screen says before
the first round has ended."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import sample_snapshots

from helpers.pilot import lines, press, running, sample_app, settle
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.events import EventsTable

# with AWS's reason before it (the attempt is the sample's ExpiredToken one) the cell is longer than the 80
# characters the message column used to stop at, and shorter than the room a zoomed 200-column pane has
LONG_MESSAGE = 'FATAL:  PAM authentication failed for user "oltp_rw_user" (end)'


def with_long_message() -> tuple[ClusterSnapshot, ...]:
    snaps = sample_snapshots()
    first = snaps[0]
    attempts = (replace(first.attempts[0], message=LONG_MESSAGE), *first.attempts[1:])
    return (replace(first, attempts=attempts), *snaps[1:])


def screen_text(app: PgiamApp, table: EventsTable) -> str:
    return "\n".join(lines(table))


async def test_events_message_column_shows_at_200_columns_and_takes_the_room_there_is() -> None:
    snaps = with_long_message()
    app, _ = sample_app([snaps])
    async with running(app, size=(200, 50)) as pilot:
        assert app.selected == snaps[0].name
        table = app.query_one(EventsTable)
        shown = screen_text(app, table)
        assert "message" in shown.splitlines()[0]  # the column where AWS's reason is, on screen unzoomed
        assert "AWS: the provided" in shown  # the sample's ExpiredToken attempt, its reason's start
        table.focus()
        await press(pilot, "z")
        assert app.zoomed == "events"
        shown = screen_text(app, table)
        message = next(m for m in shown.splitlines() if "ExpiredToken" in m).split("ExpiredToken", 1)[1]
        assert message.strip().startswith("AWS: the provided") and LONG_MESSAGE in message, message
        assert len(message.strip()) > 80  # not cut at 80


@pytest.mark.slow
async def test_help_and_quit_stay_in_every_panes_footer_at_80x24() -> None:
    app, _ = sample_app([sample_snapshots()])
    async with running(app, size=(80, 24)) as pilot:
        width = app.size.width
        seen: set[str] = set()
        for _ in range(6):  # Tab through every pane (and back to the first)
            focused = type(app.focused).__name__
            seen.add(focused)
            # each key of the footer by the word it shows last ("? Help" -> Help), found by its CSS type
            # (Footer's keys are not a public class); a key cut off shows nothing and is not found
            keys = {
                shown[-1]: key.region
                for key in app.screen.query("Footer FooterKey")
                if (shown := "".join(lines(key)).split())
            }
            palette = keys["palette"]  # the footer is made anew for each focus
            for label in ("Help", "Quit"):
                region = keys.get(label)
                assert region is not None, f"{label} not in the footer of {focused}"
                # wholly on screen and not under the palette hint docked at the right
                assert region.width > 0 and region.right <= min(width, palette.x), (
                    focused,
                    label,
                    region,
                )
            await press(pilot, "tab")
        assert {"ClusterList", "ActivityTable", "EventsTable"} <= seen, seen


async def test_before_the_first_round_the_screen_says_it_is_running() -> None:
    app, source = sample_app([])  # the source emits nothing until pushed
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(20):
            await pilot.pause()
            if app.selected is not None:
                break
        first = sample_snapshots()[0]
        await pilot.pause()
        bar = "".join(lines(app.query_one("#topbar")))
        title = "".join(lines(app.query_one("#activity-title")))
        assert "live" in bar and f"{first.name} first round running…" in bar, bar
        assert "identity (not yet known)" in bar
        assert "first round running…" in title and "0/0 sessions" not in title, title
        source.push([first])
        await settle(pilot, app, 1)
        bar = "".join(lines(app.query_one("#topbar")))
        title = "".join(lines(app.query_one("#activity-title")))
        assert "first round running" not in bar and f"{first.name} · last" in bar, bar
        assert "first round running" not in title and f"/{len(first.activity)} sessions" in title, title
