"""`python -m pgiam_devtools.screenshots DIR [--sample]`: SVG screenshots of the console for the README.

By default they are taken from the demo: the sandbox with its workload, the console on it (headless, via
Textual's Pilot), as `make screenshots` does. `--sample` uses the deterministic sample data instead (no
sandbox; the same data as the snapshot tests). Files: main.svg, detail.svg, blocking.svg, attempt.svg,
iam.svg, check.svg.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.widgets.activity import ActivityTable
from pgiam_tui.ui.widgets.events import EventsTable

SIZE = (120, 40)
WAIT_S = 120.0


class ScreenshotError(Exception):
    """Screenshots could not be taken (one line for the user)."""


async def _wait(pilot: Pilot[int], what: str, cond: Callable[[], bool], limit_s: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not cond():
        if loop.time() > deadline:
            raise ScreenshotError(f"gave up waiting for {what}")
        await pilot.pause(0.25)


def preserve_spaces(svg: Path) -> None:
    """Mark the SVG's text as whitespace-preserving.

    Textual writes each styled run as its own <text> element, spaces as &#160;. Without
    xml:space="preserve" some renderers (librsvg, used to turn these into PNGs) drop a run's leading
    spaces, so "enabled  resource" showed as "enabledresource" although the terminal had the spaces.
    """
    text = svg.read_text(encoding="utf-8")
    if 'xml:space="preserve"' not in text:
        text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
        svg.write_text(text, encoding="utf-8")


def _blocked_row_index(table: ActivityTable) -> int | None:
    for index, key in enumerate(table.row_keys):
        loc = table.located(key)
        if loc is not None and loc.row.blocked_by:
            return index
    return None


async def take(app: PgiamApp, out: Path, check_cluster: str | None = None) -> list[Path]:
    """Drive `app` headless and save the screenshots (main, detail, blocking, attempt, iam, check)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str) -> None:
        app.save_screenshot(filename=name, path=str(out))
        preserve_spaces(out / name)
        written.append(out / name)

    async with app.run_test(size=SIZE) as pilot:
        table = app.activity.table
        await _wait(pilot, "activity rows", lambda: table.row_count > 0)
        await _wait(pilot, "a blocked session", lambda: _blocked_row_index(table) is not None)
        # The workload fails a login every few seconds and the other clusters' sessions come up over the
        # first rounds: wait for both, so the main screen shows what a DBA would see after a minute.
        await _wait(pilot, "a failed login", lambda: _has_auth_failure(app))
        await _wait(pilot, "every cluster's sessions", lambda: _all_clusters_busy(app))
        await pilot.pause()
        save("main.svg")

        table.focus()
        index = _blocked_row_index(table)
        if index is not None:
            table.move_cursor(row=index)
        await pilot.press("enter")
        await pilot.pause()
        save("detail.svg")
        await pilot.press("escape")
        await pilot.pause()

        # the blocking tree: who holds the lock, who waits behind it
        table.focus()
        await pilot.press("b")
        await pilot.pause()
        save("blocking.svg")
        await pilot.press("b")
        await pilot.pause()

        # an attempt's detail: the newest refused IAM login, with AWS's reason and the raw lines
        events = app.query_one(EventsTable)
        events.focus()
        await _wait(pilot, "a refused login with AWS's reason", lambda: _aws_refusal_row(events) is not None)
        row = _aws_refusal_row(events)
        if row is not None:
            events.move_cursor(row=row)
        await pilot.press("enter")
        await pilot.pause()
        save("attempt.svg")
        await pilot.press("escape")
        await pilot.pause()

        app.query_one("#iam-users").focus()
        await _wait(pilot, "IAM findings", lambda: "Findings (0)" not in _text(app))
        await pilot.press("z")
        await pilot.pause()
        save("iam.svg")
        await pilot.press("z")

        if check_cluster is not None:
            app.cluster_list.select(check_cluster)
            await pilot.pause()
        app.cluster_list.focus()
        await pilot.press("c")
        await pilot.pause()
        await _wait(pilot, "the connection check", lambda: "running…" not in _check_text(app), 180.0)
        await pilot.pause()
        save("check.svg")
        await pilot.press("escape")
        await app.action_quit()
    return written


def _has_auth_failure(app: PgiamApp) -> bool:
    snap = app.latest.get(app.selected) if app.selected else None
    return snap is not None and any(a.failed for a in snap.attempts)


def _aws_refusal_row(events: EventsTable) -> int | None:
    """The index of the first row (newest first) that is a failed login with AWS's reason joined."""
    for index in range(events.row_count):
        events.move_cursor(row=index)
        row = events.row_at_cursor()
        if row is not None and row.attempt is not None and row.attempt.failed and row.attempt.aws_code:
            return index
    return None


def _all_clusters_busy(app: PgiamApp) -> bool:
    snaps = list(app.latest.values())
    return bool(snaps) and all(len(s.activity) >= 1 for s in snaps)


def _text(app: PgiamApp) -> str:
    widget = app.query_one("#iam-findings")
    return "".join("".join(s.text for s in widget.render_line(y)) for y in range(widget.size.height))


def _check_text(app: PgiamApp) -> str:
    try:
        widget = app.screen.query_one("#check-body")
    except Exception:
        return "running…"
    return "".join("".join(s.text for s in widget.render_line(y)) for y in range(widget.size.height))


def from_sample(out: Path) -> list[Path]:
    """Screenshots of the deterministic sample data."""
    from pgiam_devtools.sample import cluster_configs, fixed_now, sample_check, sample_snapshots
    from pgiam_devtools.static_source import StaticSource

    source = StaticSource([sample_snapshots()], {"pgdemo-rds": sample_check()})
    app = PgiamApp(source, cluster_configs(), now=fixed_now, tick=False)
    return asyncio.run(take(app, out, check_cluster="pgdemo-rds"))


def from_demo(out: Path) -> list[Path]:
    """Screenshots of the console watching the sandbox with its workload."""
    from pgiam_sandbox import Sandbox, SandboxError
    from pgiam_sandbox.environment import exported

    from pgiam_tui.config import load_config
    from pgiam_tui.ui.source import MonitorSource

    root = Path(tempfile.mkdtemp(prefix="pgiam-shots-"))
    sandbox = Sandbox(root, workload=True)
    try:
        try:
            sandbox.start()
        except SandboxError as exc:
            raise ScreenshotError(f"sandbox did not start: {exc}") from None
        with exported(sandbox.env):
            config = load_config(sandbox.profiles_toml)
            app = PgiamApp(MonitorSource(config), config.clusters)
            return asyncio.run(take(app, out))
    finally:
        sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m pgiam_devtools.screenshots`."""
    parser = argparse.ArgumentParser(prog="python -m pgiam_devtools.screenshots", description=__doc__)
    parser.add_argument(
        "dir", nargs="?", default="screenshots", help="output directory (default screenshots)"
    )
    parser.add_argument(
        "--sample", action="store_true", help="use the deterministic sample data, not the demo"
    )
    args = parser.parse_args(argv)
    out = Path(args.dir)
    try:
        written = from_sample(out) if args.sample else from_demo(out)
    except ScreenshotError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
