"""Stale rows do not look live (issue 12): the rows of an instance whose connection is down are drawn dimmed,
without their live colours, while the rows of the instances that answer keep theirs. Pilot, canned data."""

from __future__ import annotations

import pytest
from pgiam_devtools.sample import sample_snapshots
from rich.style import Style

from helpers.pilot import running, sample_app
from helpers.snapshot_variants import with_reconnecting_reader
from pgiam_tui.ui.app import PgiamApp


def _row_styles(app: PgiamApp, pid: int) -> list[Style]:
    table = app.activity.table
    index = next(i for i, k in enumerate(table.row_keys) if (loc := table.located(k)) and loc.row.pid == pid)
    y = index - int(table.scroll_offset.y) + 1
    return [seg.style for seg in table.render_line(y) if seg.text.strip() and seg.style is not None]


@pytest.mark.slow
async def test_rows_of_a_reconnecting_reader_are_dimmed_the_writers_are_not() -> None:
    app, _ = sample_app([with_reconnecting_reader(sample_snapshots())])
    async with running(app):
        reader_row = _row_styles(app, 5101)  # active, on the reader: green state when live
        assert reader_row and all(s.dim for s in reader_row), reader_row
        writer_row = _row_styles(app, 4104)  # waiting on a lock, on the writer: its live colour
        assert writer_row and not any(s.dim for s in writer_row)
        assert any(s.color is not None for s in writer_row)

    live, _ = sample_app()  # the same reader connected: its row is not dimmed
    async with running(live):
        assert not any(s.dim for s in _row_styles(live, 5101))
