"""The console app driven by Pilot on deterministic snapshots (StaticSource): behaviour, not pixels."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from pgiam_devtools.sample import (
    HOSTILE_QUERY,
    cluster_configs,
    fixed_now,
    sample_snapshots,
    session,
    with_activity,
)
from pgiam_devtools.static_source import StaticSource
from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

# lines and settle are re-exported: other test modules still take them from here
from helpers.pilot import lines, press, running, sample_app, settle
from helpers.snapshot_variants import with_reconnecting_reader
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.render import SortCell
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.attempt_detail import AttemptDetailScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.modals import CheckScreen, ConfirmScreen, MfaScreen
from pgiam_tui.ui.widgets import filterable
from pgiam_tui.ui.widgets.activity import ActivityTable
from pgiam_tui.ui.widgets.events import EventsTable


def table_pids(table: ActivityTable) -> list[int]:
    return [loc.row.pid for key in table.row_keys if (loc := table.located(key)) is not None]


def ordered_pids(table: ActivityTable) -> list[int]:
    return table_pids(table)  # row_keys are in display order


def index_of_pid(table: ActivityTable, pid: int) -> int:
    return next(i for i, k in enumerate(table.row_keys) if table.located(k).row.pid == pid)  # type: ignore[union-attr]


async def test_main_screen_shows_selected_cluster() -> None:
    app, _ = sample_app()
    async with running(app):
        table = app.activity.table
        assert table.row_count == 9
        # sorted by duration, longest first: the long query, then the lock holder
        assert ordered_pids(table)[:2] == [4105, 4102]
        events = app.query_one(EventsTable)
        assert events.row_count == 4  # three logins and the console's own connection
        assert app.cluster_list.selected == "pgdemo-1"
        text = "\n".join(lines(app.cluster_list))
        assert "pgdemo-1" in text and "11:23" in text and "6/2/9" in text


async def test_hostile_text_is_literal_in_table_and_detail() -> None:
    app, _ = sample_app()
    async with running(app, size=(300, 50)) as pilot:
        table = app.activity.table
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        index = index_of_pid(table, 4107)
        cells = dict(zip(table.widths, table.cells_at(index), strict=True))
        cell = cells["query"]
        assert isinstance(cell, SortCell) and isinstance(cell.__rich__(), Text)
        expected = "SELECT '[bold red]x[/]', '[link=http://x]y[/link]', '\\x1b[31mred\\x1b[0m'"
        assert cell.plain.startswith(expected)
        assert cells["app"].plain == "evil\\x1b[2Japp"  # ESC escaped; the table cuts it to the column
        table.move_cursor(row=index)
        rendered = "\n".join(lines(table))
        assert "[bold red]x[/]" in rendered and "[link=http://x]y[/link]" in rendered
        assert "\x1b" not in rendered
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionDetailScreen)
        parts = [screen.query_one("#detail-session"), screen.query_one("#detail-query")]
        shown = " ".join(" ".join(" ".join(lines(part)) for part in parts).split())
        assert "[bold red]x[/]" in shown and "[link=http://x]y[/link]" in shown
        assert "\\x1b]0;pwned\\x07" in shown and "\x1b" not in shown
        # the very long line is wrapped in full, not cut
        assert shown.count("very long line") == HOSTILE_QUERY.count("very long line")


async def test_update_in_place_keeps_cursor_on_its_row() -> None:
    first = sample_snapshots()
    app, source = sample_app([first])
    async with running(app) as pilot:
        table = app.activity.table
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        table.move_cursor(row=index_of_pid(table, 4101))
        before_rows = table.row_keys
        # next round: 4106 gone, a new session, 4101 ran longer (moves up in the duration sort)
        rows = [r for r in first[0].activity if r.pid != 4106]
        rows = [replace(r, duration_s=250.0) if r.pid == 4101 else r for r in rows]
        rows.append(session("pgdemo-1-writer", 4200, "oltp_rw_user", "active", "INSERT INTO pgdemo.orders"))
        source.push([with_activity(first[0], tuple(rows))])
        await settle(pilot, app, 4)
        assert 4106 not in table_pids(table) and 4200 in table_pids(table)
        # rows that stayed are the same DataTable rows (updated, not re-added)
        kept = [k for k in before_rows if k in table.row_keys]
        assert len(kept) == 8
        # the cursor followed its session to its new place
        assert table.current() is not None and table.current().row.pid == 4101  # type: ignore[union-attr]
        assert ordered_pids(table)[:3] == [4105, 4101, 4102]


@pytest.mark.slow
async def test_filter_sort_hide_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a submitted filter does, not live filtering (test_ui_filter.py): no re-filter while typing, which
    # on a loaded machine could apply a prefix ("bo" of "bogus:1") before the enter (found in shuffled runs)
    monkeypatch.setattr(filterable, "FILTER_DEBOUNCE_S", 3600.0)
    app, _ = sample_app()
    async with running(app, size=(160, 40)) as pilot:
        table = app.activity.table
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        await pilot.press("i")
        assert sorted(table_pids(table)) == [4101, 4102, 4103, 4104, 4105, 4107, 5101]
        await pilot.press("i")
        await pilot.press("slash")
        await pilot.press(*"user:oltp_rw min:10s", "enter")
        await pilot.pause()
        assert sorted(table_pids(table)) == [4102, 4103, 4104]
        assert "filter 'user:oltp_rw min:10s'" in "".join(lines(app.query_one("#activity-title")))
        await pilot.press("slash")
        await pilot.press(*"bogus:1", "enter")
        await pilot.pause()
        assert sorted(table_pids(table)) == [4102, 4103, 4104]  # bad filter: old one kept
        await pilot.press("escape")
        await pilot.press("slash", "ctrl+u", "enter")  # clear
        await pilot.pause()
        assert table.row_count == 9
        # s cycles: duration -> query (the next column); S reverses
        await pilot.press("s")
        assert table.sort_column == "query"
        app.action_sort_by("pid")
        await pilot.pause()
        assert ordered_pids(table) == sorted(ordered_pids(table))
        await pilot.press("S")
        assert ordered_pids(table) == sorted(ordered_pids(table), reverse=True)


@pytest.mark.slow
async def test_switching_clusters_shows_data_at_once_and_errors_explained() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        await pilot.click("#clusters")
        await pilot.press("down")  # pgdemo-1 -> pgdemo-2
        await pilot.pause()
        assert app.selected == "pgdemo-2"
        assert sorted(table_pids(app.activity.table)) == [7001, 7002]
        await pilot.press("down")  # skips the 'staging' heading
        await pilot.pause()
        assert app.selected == "pgdemo-rds"
        banner = " ".join(" ".join(lines(app.query_one("#activity-error"))).split())
        assert "authenticate: PAM authentication failed" in banner
        assert "modify-db-instance --enable-iam-database-authentication" in banner
        await pilot.press("up")
        await pilot.pause()
        assert app.selected == "pgdemo-2"


@pytest.mark.slow
async def test_blocking_tree_and_all_clusters_view() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        await press(pilot, "b")
        tree = app.activity.blocking_tree
        assert app.activity.tree_shown
        root = tree.root.children[0]
        assert str(root.label).startswith("pgdemo-1-writer  4102 oltp_rw_user")
        assert str(root.children[0].label).startswith("4103 ")
        assert str(root.children[0].children[0].label).startswith("4104 ")
        await pilot.press("b")
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AllSessionsScreen)
        table = screen.pane.table
        clusters = {loc.cluster for k in table.row_keys if (loc := table.located(k))}
        assert clusters == {"pgdemo-1", "pgdemo-2"}
        assert table.row_count == 11
        await pilot.press("escape")
        assert not isinstance(app.screen, AllSessionsScreen)


@pytest.mark.slow
async def test_check_modal_shows_steps() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        app.cluster_list.select("pgdemo-rds")
        await pilot.pause()
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CheckScreen)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        body = "\n".join(lines(screen.query_one("#check-body")))
        assert "✖ authenticate" in body and "fix: aws rds modify-db-instance" in body
        assert "cause: IAM database authentication is disabled" in body
        await pilot.press("escape")


@pytest.mark.slow
async def test_cancel_needs_permission_and_confirmation_and_is_recorded() -> None:
    app, source = sample_app()
    async with running(app) as pilot:
        table = app.activity.table
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        table.move_cursor(row=index_of_pid(table, 4102))
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert source.actions == []
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.actions == [("pgdemo-1", "pgdemo-1-writer", 4102, "terminate")]
        events = app.query_one(EventsTable)
        labels = [events.get_row_at(i)[1].plain for i in range(events.row_count)]
        assert "ACTION" in labels
        # pgdemo-2 does not allow actions: no modal, nothing sent
        app.cluster_list.select("pgdemo-2")
        await pilot.pause()
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert len(source.actions) == 1


@pytest.mark.slow
async def test_pause_interval_refresh() -> None:
    snaps = sample_snapshots()
    second = (replace(snaps[0], activity=snaps[0].activity[:2]), *snaps[1:])
    app, source = sample_app([snaps, second])
    async with running(app) as pilot:
        await pilot.press("p")
        assert source.paused and "PAUSED" in "".join(lines(app.query_one("#topbar")))
        await pilot.press("p")
        assert not source.paused
        await pilot.press("plus")
        assert source.intervals[None] == 5.0
        await pilot.press("minus", "minus")
        assert source.intervals[None] == 1.0
        await pilot.press("r")
        await settle(pilot, app, 4)
        assert app.activity.table.row_count == 2


@pytest.mark.slow
async def test_usable_at_80x24_and_zoom() -> None:
    app, _ = sample_app()
    async with running(app, size=(80, 24)) as pilot:
        assert app.has_class("-narrow")
        assert app.activity.table.size.height >= 3
        await pilot.click(ActivityTable, offset=(2, 1))  # a row (the header sorts)
        await pilot.press("z")
        await pilot.pause()
        assert app.zoomed == "activity" and not app.cluster_list.display
        assert app.activity.table.size.height >= 15
        assert "live" in "".join(lines(app.query_one("#topbar")))  # the top bar stays when zoomed
        await pilot.press("z")
        await pilot.pause()
        assert app.zoomed is None and app.cluster_list.display


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
async def test_top_bar_shows_pause_and_heartbeat_in_every_view(size: tuple[int, int]) -> None:
    snaps = sample_snapshots()
    first = replace(snaps[0], round_ms=310.0, collected_at=fixed_now() - timedelta(seconds=4))
    app, _ = sample_app([(first, *snaps[1:])])
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, 3)
        await pilot.press("p")
        await pilot.pause()
        bar = "".join(lines(app.query_one("#topbar")))
        assert "PAUSED" in bar and "pgdemo-1 round 0.3s" in bar and "4.0s ago" in bar
        app.activity.table.focus()
        await pilot.press("z")
        await pilot.pause()
        assert "PAUSED" in "".join(lines(app.query_one("#topbar")))
        await pilot.press("z", "a")
        await pilot.pause()
        assert isinstance(app.screen, AllSessionsScreen)
        bar = "".join(lines(app.screen.query_one("#topbar-all")))
        assert "PAUSED" in bar and "3 clusters" in bar and "slowest round" in bar


async def test_quit_exits_zero() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


@pytest.mark.slow
async def test_events_filter_by_kind_and_user() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        events = app.query_one(EventsTable)
        events.focus()
        await pilot.press("slash")
        await pilot.press(*"kind:failed", "enter")
        await pilot.pause()
        assert [events.get_row_at(i)[1].plain for i in range(events.row_count)] == ["FAILED"]
        # AWS's code and its own reason sit on the failed login itself
        assert events.get_row_at(0)[3].plain == "ExpiredToken"
        assert events.get_row_at(0)[4].plain.startswith("AWS: the provided token has expired")
        # Enter opens the attempt: its raw lines, AWS's line among them
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AttemptDetailScreen)
        body = str(app.screen.query_one("#detail-body", Static).render())
        assert "pam_authenticate failed: Permission denied" in body and "Error Code: ExpiredToken" in body
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("slash", "ctrl+u")
        await pilot.press(*"user:oltp_ro", "enter")
        await pilot.pause()
        assert [events.get_row_at(i)[1].plain for i in range(events.row_count)] == ["ok"]


@pytest.mark.slow
async def test_mfa_code_asked_in_a_modal_from_a_worker_thread() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        loop = asyncio.get_running_loop()
        answer = loop.run_in_executor(
            None, app._ask_mfa, "Enter MFA code for arn:aws:iam::111111111111:mfa/dba: "
        )
        wanted = "Enter MFA code for arn:aws:iam::111111111111:mfa/dba"

        def shown() -> str:
            return " ".join(" ".join(lines(w)) for w in app.screen.query("Static"))

        # the modal is pushed first and laid out a moment later (its text has no size before): wait for both
        for _ in range(200):
            await pilot.pause()
            if isinstance(app.screen, MfaScreen) and wanted in shown():
                break
        assert isinstance(app.screen, MfaScreen)
        assert wanted in shown()
        await pilot.press(*"123456", "enter")
        assert await answer == "123456"


def test_every_key_action_is_in_the_command_palette() -> None:
    app, _ = sample_app()
    titles = {c.title for c in app.get_system_commands(Screen())}
    for wanted in (
        "Help",
        "Filter",
        "Sort: next column",
        "Sort by dur",
        "Pause / resume",
        "Refresh now",
        "Connection check",
        "Faster refresh",
        "Slower refresh",
        "Blocking tree",
        "All clusters' sessions",
        "Cancel backend",
        "Terminate backend",
        "Quit",
    ):
        assert wanted in titles, wanted


async def test_background_processes_hidden_until_asked() -> None:
    snaps = sample_snapshots()
    vacuum = replace(
        session("pgdemo-1-writer", 99, "", "active", "autovacuum: VACUUM pgdemo.orders"),
        usename=None,
        backend_type="autovacuum worker",
    )
    app, _ = sample_app([(with_activity(snaps[0], (*snaps[0].activity, vacuum)), *snaps[1:])])
    async with running(app) as pilot:
        assert 99 not in table_pids(app.activity.table)
        await pilot.press("g")
        assert 99 in table_pids(app.activity.table)


async def test_palette_command_runs_its_action() -> None:
    app, source = sample_app()
    async with running(app):
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        await commands["Sort by pid"].callback()
        assert app.activity.table.sort_column == "pid"
        await commands["Pause / resume"].callback()
        assert source.paused


@pytest.mark.slow
async def test_detail_redraws_the_query_only_when_it_changed() -> None:
    first = sample_snapshots()
    app, source = sample_app([first])
    async with running(app) as pilot:
        table = app.activity.table
        table.focus()
        table.move_cursor(row=index_of_pid(table, 4105))
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SessionDetailScreen)
        updates: list[object] = []
        query = screen.query_one("#detail-query", Static)
        query.update = updates.append  # type: ignore[method-assign,assignment]
        # a round where the query ran longer: the timings change, the query text is not redrawn
        rows = tuple(replace(r, duration_s=400.0) if r.pid == 4105 else r for r in first[0].activity)
        source.push([with_activity(first[0], rows)])
        await settle(pilot, app, 4)
        assert "6m40s" in " ".join(lines(screen.query_one("#detail-session")))
        assert updates == []
        # a new query on that session: redrawn
        rows = tuple(replace(r, query="SELECT 2") if r.pid == 4105 else r for r in first[0].activity)
        source.push([with_activity(first[0], rows)])
        await settle(pilot, app, 5)
        assert len(updates) == 1


@pytest.mark.slow
async def test_detail_copies_full_query_to_clipboard() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        table = app.activity.table
        table.focus()
        table.move_cursor(row=index_of_pid(table, 4107))
        await pilot.press("enter", "y")
        assert app.clipboard == HOSTILE_QUERY  # the original text, not the escaped display


async def test_token_countdown_ticks_with_the_clock() -> None:
    clock = [fixed_now()]
    source = StaticSource([sample_snapshots()])
    app = PgiamApp(source, cluster_configs(), now=lambda: clock[0], tick=False)
    async with running(app) as pilot:
        assert "11:23" in "\n".join(lines(app.cluster_list))
        clock[0] += timedelta(minutes=10)
        app._tick()
        await pilot.pause()
        text = "\n".join(lines(app.cluster_list))
        assert "1:23" in text and "11:23" not in text
        clock[0] += timedelta(minutes=2)
        app._tick()
        await pilot.pause()
        # expired: the session stays up (a token is checked at login only); no stale "exp" forever
        text = "\n".join(lines(app.cluster_list))
        assert "●  —  " in text and "exp" not in text
        # the next connect makes a fresh token: its countdown starts again
        snap = app.latest["pgdemo-1"]
        app.cluster_list.update_cluster(
            "pgdemo-1", replace(snap, token_expires_at=clock[0] + timedelta(minutes=15)), clock[0]
        )
        await pilot.pause()
        assert "●  15:00 " in "\n".join(lines(app.cluster_list))


def test_console_command_bad_config_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pgiam_tui.cli import main

    bad = tmp_path / "profiles.toml"
    bad.write_text("[[clusters]]\nname = \n")
    assert main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "Traceback" not in err[0]
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["--config", str(empty)]) == 2
    assert "no clusters" in capsys.readouterr().err


async def test_member_instance_trouble_is_explained() -> None:
    app, _ = sample_app([with_reconnecting_reader(sample_snapshots())])
    async with running(app):
        banner = " ".join(" ".join(lines(app.query_one("#activity-error"))).split())
        assert "reader pgdemo-1-reader: reconnecting — connection refused (attempt 3)" in banner
        assert "◐" in "\n".join(lines(app.cluster_list))


@pytest.mark.slow
async def test_big_diff_keeps_order_cursor_rendering_and_scroll_range() -> None:
    """A 2,000-row round applied as a diff: what a user sees matches the new sessions.

    ActivityTable draws its own lines (Textual's Line API); this checks the order, the cells, the cursor,
    the rendered lines and the scroll range a user gets.
    """
    from pgiam_devtools.sample import synthetic_snapshot

    from pgiam_tui.config import ClusterConfig
    from pgiam_tui.ui.render import fmt_duration
    from pgiam_tui.ui.widgets.activity import Located

    first = synthetic_snapshot("big", 2000, 0)
    second = synthetic_snapshot("big", 2000, 1, churn=40)
    app = PgiamApp(StaticSource([[]]), [ClusterConfig(name="big")], tick=False)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.activity.table
        table.show([Located("big", r) for r in first.activity], reset=True)
        await pilot.pause()
        # the cursor on a session that survives the round and moves in the duration order
        keep = Located("big", first.activity[1000])
        table.move_cursor(row=table.index_of(keep.key))
        table.show([Located("big", r) for r in second.activity])
        await pilot.pause()

        expected = {
            Located("big", r).key: r for r in second.activity if r.backend_type in (None, "client backend")
        }
        assert table.row_count == len(expected)
        shown = table.row_keys
        assert set(shown) == set(expected)  # churned sessions gone, new ones in
        durations = [expected[k].duration_s or 0.0 for k in shown]
        assert durations == sorted(durations, reverse=True)
        # each row's cells are the new session's values
        for i in (0, 777, len(shown) - 1):
            cells = table.cells_at(i)
            assert isinstance(cells[0], SortCell)
            row = expected[shown[i]]
            labels = [c.plain for c in cells]
            assert str(row.pid) in labels and fmt_duration(row.duration_s) in labels
        cur = table.current()
        assert cur is not None and cur.key == keep.key
        assert table.cursor_row == shown.index(keep.key)
        # the rendered screen: header + rows, the first row drawn is the longest-running session
        assert table.virtual_size.height == len(shown) + 1
        table.move_cursor(row=0)
        await pilot.pause()
        top = lines(table)[1]
        assert str(expected[shown[0]].pid) in top and fmt_duration(expected[shown[0]].duration_s) in top
        # scrolling to the end reaches the last session and no further
        table.focus()
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause()
        drawn = [line for line in lines(table) if line.strip()]
        last = expected[shown[-1]]
        assert str(last.pid) in drawn[-1] or str(last.pid) in drawn[-2]  # a scrollbar may take the last line
        assert table.cursor_row == len(shown) - 1
        # a smaller round: the scroll range shrinks with it
        table.show([Located("big", r) for r in second.activity[:1500]])
        await pilot.pause()
        assert table.row_count == 1500 and table.virtual_size.height == 1501
        assert table.cursor_row == 1499  # still on the last row, within the new range


@pytest.mark.slow
async def test_layout_at_120x40_narrow_cluster_list_and_query_takes_the_rest() -> None:
    app, _ = sample_app()
    async with running(app) as pilot:
        clusters = app.cluster_list
        assert 30 <= clusters.outer_size.width <= 34
        listed = lines(clusters)
        assert any(line.startswith("prod (111111111111)") for line in listed)  # heading not cut at 16
        assert any("pgdemo-1" in line and "●" in line and "6/2/9" in line and "3" in line for line in listed)
        assert clusters.virtual_size.width <= clusters.scrollable_content_region.width  # no sideways scroll
        table = app.activity.table
        header = lines(table)[0]
        # pgdemo-1 has a reader: the instance column is there; the query column ends at the right edge
        for label in ("instance", "pid", "user", "state", "wait", "blk by", "dur", "query"):
            assert label in header, (label, header)
        assert header.index("query") > header.index("dur") > header.index("pid")
        assert table.virtual_size.width == table.scrollable_content_region.width
        query_width = table.widths["query"]
        assert query_width >= 16
        # an RDS cluster (one instance): no instance column, the db column comes back
        app.cluster_list.select("pgdemo-2")
        await pilot.pause()
        header = lines(table)[0]
        assert "instance" not in header and " db " in header and "query" in header
        assert table.virtual_size.width == table.scrollable_content_region.width
    app, _ = sample_app()
    async with running(app, size=(200, 40)) as pilot:
        header = lines(app.activity.table)[0]
        for label in ("instance", "pid", "user", " db ", "app", "state", "wait", "blk by", "dur", "query"):
            assert label in header, (label, header)


async def test_iam_pane_text_keeps_its_spaces() -> None:
    app, _ = sample_app()
    async with running(app, size=(160, 40)):
        title = "".join(lines(app.query_one("#iam-title")))
        assert "IAM auth enabled  resource cluster-" in title
        body = "\n".join(lines(app.query_one("#iam-findings")))
        assert "wildcard_grant (pgmonitor)" in body
