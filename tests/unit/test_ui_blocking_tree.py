"""The blocking tree on canned snapshots: where each tree is, what each node waits on, acting from the tree,
and lock holders / waiters in different colours under every built-in Textual theme."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgiam_devtools.sample import cluster_configs, fixed_now, sample_snapshots, session
from pgiam_devtools.static_source import StaticSource
from rich.color import Color
from rich.style import Style
from textual.widgets.tree import TreeNode

from helpers.pilot import press, running
from pgiam_tui.ui.app import PgiamApp
from pgiam_tui.ui.screens.all_sessions import AllSessionsScreen
from pgiam_tui.ui.screens.detail import SessionDetailScreen
from pgiam_tui.ui.screens.modals import ConfirmScreen
from pgiam_tui.ui.widgets.blocking_tree import BlockingTree


def _both_clusters_blocked() -> tuple[PgiamApp, StaticSource]:
    snaps = sample_snapshots()
    w = "pgdemo-2-writer"
    blocked = (
        session(w, 7101, "oltp_rw_user", "idle in transaction", "UPDATE t", duration_s=90, xact_s=95),
        session(w, 7102, "oltp_rw_user", "active", "UPDATE t SET x = 2", duration_s=60, blocked_by=(7101,),
                wait=("Lock", "transactionid")),
    )  # fmt: skip
    second = replace(snaps[1], activity=snaps[1].activity + blocked)
    source = StaticSource([(snaps[0], second, snaps[2])])
    return PgiamApp(source, cluster_configs(), now=fixed_now, tick=False), source


def _labels(tree: BlockingTree) -> list[str]:
    out: list[str] = []

    def walk(node: TreeNode[str]) -> None:
        for child in node.children:
            out.append(str(child.label))
            walk(child)

    walk(tree.root)
    return out


async def test_per_cluster_tree_shows_instance_and_wait_events() -> None:
    app, _ = _both_clusters_blocked()
    async with running(app) as pilot:
        await press(pilot, "b")
        root = app.activity.blocking_tree.root.children[0]
        assert str(root.label).startswith("pgdemo-1-writer  4102 oltp_rw_user")
        waiter = str(root.children[0].label)
        assert waiter.startswith("4103 ") and "waits Lock:transactionid" in waiter
        assert "waits Lock:tuple" in str(root.children[0].children[0].label)


@pytest.mark.slow
async def test_all_clusters_tree_says_which_cluster_and_instance() -> None:
    app, _ = _both_clusters_blocked()
    async with running(app) as pilot:
        await press(pilot, "a")
        assert isinstance(app.screen, AllSessionsScreen)
        await press(pilot, "b")
        tree = app.screen.pane.blocking_tree
        roots = [str(n.label) for n in tree.root.children]
        assert roots[0].startswith("pgdemo-1 / pgdemo-1-writer  4102")
        assert roots[1].startswith("pgdemo-2 / pgdemo-2-writer  7101")
        assert len(roots) == 2


@pytest.mark.slow
async def test_enter_opens_the_session_and_the_root_blocker_can_be_terminated() -> None:
    app, source = _both_clusters_blocked()
    async with running(app) as pilot:
        await press(pilot, "b")
        tree = app.activity.blocking_tree
        assert app.focused is tree
        tree.move_cursor(tree.root.children[0])
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SessionDetailScreen) and app.screen.row.pid == 4102
        await pilot.press("escape")
        await pilot.pause()
        assert app.activity.tree_shown and str(tree.root.children[0].label).startswith("pgdemo-1-writer")
        tree.focus()
        tree.move_cursor(tree.root.children[0])
        await press(pilot, "t")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "y")
        await app.workers.wait_for_complete()
        assert source.actions == [("pgdemo-1", "pgdemo-1-writer", 4102, "terminate")]


def _luminance(c: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in c)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.slow
async def test_holders_and_waiters_differ_in_every_builtin_theme() -> None:
    app, _ = _both_clusters_blocked()
    async with running(app) as pilot:
        await press(pilot, "b")
        tree = app.activity.blocking_tree
        themes = sorted(app.available_themes)
        assert len(themes) >= 10  # Textual's built-in themes, all of them
        for name in themes:
            app.theme = name
            await pilot.pause()
            # the colours of the pids as rendered (holder 4102 on the root line, waiter 4103 below it)
            found: dict[str, Style] = {}
            for y in range(3):
                for seg in tree.render_line(y):
                    if seg.text.strip() in ("4102", "4103") and seg.style is not None:
                        found[seg.text.strip()] = seg.style
            assert set(found) == {"4102", "4103"}, name
            ansi = app.ansi_theme
            holder = (found["4102"].color or Color.default()).get_truecolor(ansi)
            waiter = (found["4103"].color or Color.default()).get_truecolor(ansi)
            # not merely different numbers: far apart (red against purple)
            distance = sum((a - b) ** 2 for a, b in zip(holder, waiter, strict=True)) ** 0.5
            assert distance > 80, (name, holder, waiter)
            # readable on the background the line is drawn on, dark and light themes alike (one pair of
            # true colours for all: 2.2 is the best worst case over the built-in themes, bold text)
            for pid, colour in (("4102", holder), ("4103", waiter)):
                behind = found[pid].bgcolor or Color.default()
                bg = behind.get_truecolor(ansi, foreground=False)
                rgb = (colour.red, colour.green, colour.blue)
                assert _contrast(rgb, (bg.red, bg.green, bg.blue)) >= 2.2, (name, pid, rgb, bg)


@pytest.mark.parametrize("size", [(80, 24), pytest.param((200, 50), marks=pytest.mark.slow)])
@pytest.mark.slow
async def test_tree_fits_small_and_large_screens(size: tuple[int, int]) -> None:
    app, _ = _both_clusters_blocked()
    async with running(app, size) as pilot:
        await press(pilot, "b")
        labels = _labels(app.activity.blocking_tree)
        assert len(labels) == 3 and labels[0].startswith("pgdemo-1-writer")
