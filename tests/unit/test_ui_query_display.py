"""The activity table's query display (`v`, as pg_activity's): truncated, wrapped in the column, full under
the row.

Driven by Pilot on canned snapshots; the lines checked are the ones the terminal gets (render_line).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import cluster_configs, fixed_now, sample_snapshots, session
from pgiam_devtools.static_source import StaticSource
from rich.cells import cell_len

from helpers.pilot import lines, running, settle
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.query_display import (
    FULL_INDENT,
    RowLines,
    full_query,
    next_display,
    wrap_cells,
    wrapped_query,
)

# A query as an ORM or a DBA formats it: several lines, indentation, a tab (pg_activity's test data has the
# same shape: tests/data/local-processes-input.txt). Its words are all different, so each can be looked for.
FORMATTED = (
    "SELECT o.id,\n"
    "       o.qty,\n"
    "\tp.price\n"
    "FROM pgdemo.orders o\n"
    "JOIN pgdemo.products p ON p.id = o.product_id\n"
    "WHERE o.created_at > now() - interval '1 day' AND o.status IN ('open', 'paid', 'shipped', 'returned')\n"
    "ORDER BY o.created_at DESC LIMIT 100"
)
PID = 4190


def _app() -> PgiamApp:
    snaps = sample_snapshots()
    w = "pgdemo-1-writer"
    long_one = session(w, PID, "oltp_ro_user", "active", FORMATTED, duration_s=900.0)  # sorts first
    first = replace(snaps[0], activity=(*snaps[0].activity, long_one))
    return PgiamApp(StaticSource([(first, *snaps[1:])]), cluster_configs(), now=fixed_now, tick=False)


def _body(app: PgiamApp) -> list[str]:
    return lines(app.activity.table)[1:]  # below the header


def _display(app: PgiamApp) -> str:
    return app.activity.table.query_display


def _query_x(app: PgiamApp) -> int:
    table = app.activity.table
    return sum(w for k, w in table.widths.items() if k != "query")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
@pytest.mark.slow
async def test_v_cycles_truncated_wrapped_full(size: tuple[int, int]) -> None:
    app = _app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, 3)
        table = app.activity.table
        assert table.located(table.row_keys[0]).row.pid == PID  # type: ignore[union-attr]
        truncated = _body(app)
        assert str(PID) in truncated[0] and "ORDER BY" not in "".join(truncated)
        assert str(table.located(table.row_keys[1]).row.pid) in truncated[1]  # type: ignore[union-attr]

        await pilot.press("v")  # from the cluster list: an `anywhere` key
        await pilot.pause()
        assert _display(app) == "wrapped"
        assert "query wrapped" in str(app.query_one("#activity-title").render())
        body = _body(app)
        x = _query_x(app)
        width = table.widths["query"]
        # the row takes as many lines as its folded query needs in the column; the next row follows it
        expected = wrapped_query(FORMATTED, width - 1)
        assert len(expected) > 1
        for n, piece in enumerate(expected[: len(body)]):  # at 80x24 the row may fill the pane
            line = body[n]
            assert line[x : x + width].rstrip() == piece
            if n:
                assert line[:x].strip() == ""  # the other columns stay empty under the row
        next_pid = str(table.located(table.row_keys[1]).row.pid)  # type: ignore[union-attr]
        if len(expected) < len(body):
            assert next_pid in body[len(expected)][:x]
        # down moves a session, not a line
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        assert table.cursor_row == 1

        await pilot.press("v")
        await pilot.pause()
        assert _display(app) == "full"
        body = _body(app)
        total = sum(table.widths.values())
        full = full_query(FORMATTED, total - 1)
        table.move_cursor(row=0)  # scrolls the long row into view
        await pilot.pause()
        body = _body(app)
        assert str(PID) in body[0][:x]
        shown = [line.rstrip() for line in body[1 : 1 + len(full)]]
        assert shown == [piece.rstrip() for piece in full][: len(shown)]
        assert len(shown) == min(len(full), len(body) - 1)
        # as written: its own line breaks and indentation (the tab as spaces)
        assert FULL_INDENT + "FROM pgdemo.orders o" in full
        assert FULL_INDENT + "       o.qty," in shown
        assert FULL_INDENT + "    p.price" in shown
        assert any("ORDER BY o.created_at DESC LIMIT 100" in line for line in full)

        await pilot.press("v")
        await pilot.pause()
        assert _display(app) == "truncated"
        assert _body(app) == truncated


async def test_hostile_query_stays_plain_text_in_every_display() -> None:
    app = _app()
    async with running(app) as pilot:
        table = app.activity.table
        pids = [loc.row.pid for k in table.row_keys if (loc := table.located(k)) is not None]
        hostile = pids.index(4107)
        for mode in ("wrapped", "full"):
            await pilot.press("v")
            await pilot.pause()
            assert _display(app) == mode
            table.move_cursor(row=hostile)
            await pilot.pause()
            for y in range(table.size.height):
                for seg in table.render_line(y):
                    assert "\x1b" not in seg.text and "\x07" not in seg.text
            drawn = "".join(_body(app))
            # shown as typed, never obeyed (wrapping may put a line break after "[bold")
            assert "SELECT '[bold" in drawn and "red]x[/]'" in drawn and "\\x1b]0;pwned" in drawn


def test_wrap_cells_breaks_at_spaces_and_counts_wide_characters() -> None:
    assert wrap_cells("SELECT a FROM b WHERE c", 10) == ["SELECT a", "FROM b", "WHERE c"]
    assert wrap_cells("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    wide = wrap_cells("注文 テーブル から 選択", 8)  # Japanese: two cells a character
    assert (
        all(cell_len(line) <= 8 for line in wide) and "".join(wide).replace(" ", "") == "注文テーブルから選択"
    )


def test_full_query_keeps_lines_and_shows_controls() -> None:
    lines_ = full_query("SELECT 1\n  FROM t\x1b[2J", 40)
    assert lines_ == (FULL_INDENT + "SELECT 1", FULL_INDENT + "  FROM t\\x1b[2J")
    assert full_query(None, 40) == () and wrapped_query(None, 10) == ("",)


def test_row_lines_maps_lines_to_rows() -> None:
    heights = [1, 3, 2]
    tops = RowLines().tops(3, heights.__getitem__)
    assert tops == [0, 1, 4, 6]
    assert [RowLines.row_at(tops, n) for n in range(7)] == [
        (0, 0),
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (3, 0),
    ]


def test_next_display_cycles() -> None:
    assert next_display("truncated") == "wrapped"
    assert next_display("wrapped") == "full"
    assert next_display("full") == "truncated"
