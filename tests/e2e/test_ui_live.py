"""The console on the live sandbox (real PostgreSQL behind the TLS front doors, moto, IAM tokens), via Pilot.

The app runs the real Monitor on its own event loop (MonitorSource), exactly as `pgiam-tui` does.
Waits poll the UI until a condition holds (bounded); nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.pilot import lines, wait_for
from pgiam_tui.config import load_config
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.source import MonitorSource
from pgiam_tui.ui.widgets.activity import ActivityTable
from pgiam_tui.ui.widgets.events import EventsTable

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = pytest.mark.timeout(400)
# a query whose text is hostile to a terminal UI: markup, a link, ANSI colours and an OSC title sequence
HOSTILE_SQL = (
    "SELECT pg_sleep(120) /* [bold red]x[/] [link=http://x]y[/link] \x1b[31mred\x1b[0m \x1b]0;pwned\x07 */"
)


def live_app(sandbox: Sandbox, cache_dir: Path) -> PgiamApp:
    config = load_config(sandbox.profiles_toml)
    # own credential cache: ~/.aws/cli/cache may hold assumed-role keys of another sandbox's moto
    return PgiamApp(MonitorSource(config, cache_dir=cache_dir), config.clusters)


def table_rows(table: ActivityTable) -> list[tuple[str, int, str | None, tuple[int, ...]]]:
    out = []
    for key in table.row_keys:
        loc = table.located(key)
        if loc is not None:
            out.append((loc.row.instance, loc.row.pid, loc.row.usename, loc.row.blocked_by))
    return out


async def test_live_activity_events_iam_and_switching(sandbox: Sandbox, tmp_path: Path) -> None:
    app = live_app(sandbox, tmp_path / "aws-cache")
    first = sandbox.clusters[0].name
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.activity.table
        await wait_for(pilot, f"{first} selected", lambda: app.selected == first)
        await wait_for(
            pilot,
            "oltp_rw_user sessions in the activity table",
            lambda: any(user == "oltp_rw_user" for _, _, user, _ in table_rows(table)),
        )

        def blocked_pair() -> bool:
            rows = table_rows(table)
            pids = {(inst, pid) for inst, pid, _, _ in rows}
            return any(blk and (inst, blk[0]) in pids for inst, _, _, blk in rows)

        await wait_for(pilot, "a blocked session and its blocker in the table", blocked_pair)
        # The blocking tree shows blocker -> blocked.
        await pilot.press("b")
        await pilot.pause()
        tree = app.activity.blocking_tree
        assert tree.root.children and tree.root.children[0].children, (
            "blocking tree has no blocker -> blocked"
        )
        await pilot.press("b")

        events = app.query_one(EventsTable)

        def auth_failed_shown() -> bool:
            # one row per login attempt: a refused IAM login reads FAILED
            return any(events.get_row_at(i)[1].plain.strip() == "FAILED" for i in range(events.row_count))

        await wait_for(pilot, "a failed login attempt in the events pane", auth_failed_shown)

        def wildcard_finding() -> bool:
            return "wildcard_grant" in " ".join(lines(app.query_one("#iam-findings")))

        await wait_for(pilot, "the wildcard_grant finding in the IAM pane", wildcard_finding)

        # Switching clusters shows the new cluster's data at once (from the latest snapshot held).
        second = sandbox.clusters[1].name
        await wait_for(pilot, f"a snapshot of {second}", lambda: second in app.latest)
        app.cluster_list.select(second)
        await pilot.pause()
        await pilot.pause()
        assert app.selected == second
        instances = {inst for inst, _, _, _ in table_rows(table)}
        assert instances and all(i.startswith(second) for i in instances), instances

        # c: the connection check of the selected cluster, steps in a modal
        app.cluster_list.focus()
        await pilot.press("c")
        await pilot.pause()
        assert type(app.screen).__name__ == "CheckScreen"

        def check_text() -> str:
            return " ".join(lines(app.screen.query_one("#check-body")))

        # while it runs, the modal's text starts with "… NAME: checking" (each step says what it does)
        await wait_for(pilot, "the check to finish", lambda: not check_text().startswith("…"))
        assert f"✔ {second}: connected" in check_text(), check_text()
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_value == 0


async def test_live_cluster_fails_when_stopped_others_keep_updating(sandbox: Sandbox, tmp_path: Path) -> None:
    app = live_app(sandbox, tmp_path / "aws-cache")
    victim = sandbox.clusters[1].name
    other = sandbox.clusters[0].name
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(
            pilot,
            "both clusters ok",
            lambda: all(n in app.latest and app.latest[n].status == "ok" for n in (victim, other)),
        )
        try:
            sandbox.stop_cluster(victim)
            await wait_for(pilot, f"{victim} failed", lambda: app.latest[victim].status == "error")
            app.cluster_list.select(victim)
            await pilot.pause()
            assert "✖" in " ".join(lines(app.cluster_list))
            banner = " ".join(lines(app.query_one("#activity-error")))
            assert "✖" in banner and "Traceback" not in banner
            # The other cluster keeps producing fresh rounds meanwhile.
            seen = app.latest[other].collected_at
            await wait_for(pilot, f"{other} keeps updating", lambda: app.latest[other].collected_at > seen)
            assert app.latest[other].status == "ok"
        finally:
            sandbox.start_cluster(victim)
        await wait_for(pilot, f"{victim} back", lambda: app.latest[victim].status == "ok", limit_s=120)
        error_box = app.query_one("#activity-error")
        await wait_for(pilot, "the error banner to go (every instance back)", lambda: not error_box.display)
        await pilot.press("q")
    assert app.return_value == 0


async def test_live_cancel_backend_after_confirmation_is_recorded(sandbox: Sandbox, tmp_path: Path) -> None:
    import psycopg

    cluster = sandbox.clusters[0]
    writer = next(i for i in cluster.instances if i.role == "writer")
    # A backend of the monitoring role (unix socket, trust): pgmonitor may cancel its own role's queries.
    sleeper = psycopg.connect(
        host=writer.pg_socket_dir,
        port=writer.pg_port,
        dbname=cluster.database,
        user="pgmonitor",
        application_name="ui-cancel-test",
        autocommit=True,
    )
    outcome: list[str] = []

    def sleep() -> None:
        try:
            sleeper.execute(HOSTILE_SQL)
            outcome.append("finished")
        except psycopg.errors.QueryCanceled:
            outcome.append("canceled")

    pid = sleeper.info.backend_pid
    loop = asyncio.get_running_loop()
    done = loop.run_in_executor(None, sleep)
    app = live_app(sandbox, tmp_path / "aws-cache")
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.activity.table
            await wait_for(
                pilot, "the sleeping session", lambda: any(p == pid for _, p, _, _ in table_rows(table))
            )
            table.focus()
            index = next(
                i for i, k in enumerate(table.row_keys) if (loc := table.located(k)) and loc.row.pid == pid
            )
            table.move_cursor(row=index)
            # the query text from the server is shown literally: markup as text, ESC made visible
            shown = dict(zip(table.widths, table.cells_at(index), strict=True))["query"].plain
            assert "[bold red]x[/]" in shown and "[link=http://x]y[/link]" in shown and "\\x1b[31m" in shown
            assert "\x1b" not in "".join(lines(table))
            await pilot.press("enter")
            await pilot.pause()
            parts = [app.screen.query_one("#detail-session"), app.screen.query_one("#detail-query")]
            body = " ".join(" ".join(" ".join(lines(part)) for part in parts).split())
            expected = "[bold red]x[/] [link=http://x]y[/link] \\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07"
            assert expected in body, body
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("k")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmScreen"
            await pilot.press("y")
            await wait_for(pilot, "the query to be canceled", lambda: bool(outcome))
            assert outcome == ["canceled"]
            events = app.query_one(EventsTable)

            def action_event() -> bool:
                return any(events.get_row_at(i)[1].plain == "ACTION" for i in range(events.row_count))

            await wait_for(pilot, "the action recorded as an event", action_event)
            await pilot.press("q")
    finally:
        if not outcome:
            sleeper.cancel_safe()
        await done
        sleeper.close()
