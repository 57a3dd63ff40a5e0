"""Pure parts of the console: safe text, filters, highlighting, blocking trees, formatters."""

from __future__ import annotations

from datetime import timedelta

from pgiam_devtools.sample import HOSTILE_QUERY, T0, sample_snapshots, session
from rich.console import Console
from rich.text import Text

from pgiam_tui.textsafe import visible
from pgiam_tui.ui.activity_model import (
    blockers_of,
    blocking_chain,
    blocking_forest,
    row_class,
)
from pgiam_tui.ui.render import cell, fmt_countdown, fmt_duration, safe_text
from pgiam_tui.ui.widgets.iam import sparkline


def rendered(text: Text, width: int = 400) -> str:
    """What a terminal receives for `text` (ANSI included)."""
    console = Console(width=width, force_terminal=True, color_system="truecolor", record=False)
    with console.capture() as cap:
        console.print(text, soft_wrap=True)
    return cap.get()


def test_markup_is_literal_text() -> None:
    t = safe_text("[bold red]x[/] [link=http://x]y[/link]")
    assert t.plain == "[bold red]x[/] [link=http://x]y[/link]"
    assert t.spans == []
    out = rendered(t)
    assert "[bold red]x[/]" in out and "[link=http://x]y[/link]" in out
    assert "\x1b]8;" not in out  # no hyperlink escape was produced


def test_escape_sequences_made_visible() -> None:
    raw = "a\x1b[31mred\x1b[0m\x1b]0;title\x07\x9b2J\x00\x7f"
    t = safe_text(raw)
    assert "\x1b" not in t.plain and "\x07" not in t.plain and "\x9b" not in t.plain and "\x00" not in t.plain
    assert t.plain == "a\\x1b[31mred\\x1b[0m\\x1b]0;title\\x07\\x9b2J\\x00\\x7f"
    out = rendered(t)
    # the only ESC bytes in the terminal output are the renderer's own SGR codes, never the OSC title
    assert "\x1b]0;" not in out and "\x1b[31mred" not in out


def test_bidi_and_zero_width_visible() -> None:
    assert visible("a\u202eb\u200bc") == "a\\u202eb\\u200bc"


def test_newlines_single_line_vs_multiline() -> None:
    assert safe_text("a\nb\tc").plain == "a\\nb\\tc"
    assert safe_text("a\nb\tc\r", multiline=True).plain == "a\nb\tc\\r"
    assert safe_text("x\x1by", multiline=True).plain == "x\\x1by"


def test_max_len_cuts_with_ellipsis_after_escaping() -> None:
    t = safe_text("\x1b" * 10, max_len=9)
    assert t.plain == "\\x1b\\x1b…"  # cut between escapes, never inside one
    assert len(safe_text("y" * 10_000, max_len=50).plain) == 50
    assert safe_text(None, none="-").plain == "-"


def test_cells_are_safe_and_sortable() -> None:
    c = cell("[b]x\x1b", (1, 5))
    assert c.plain == "[b]x\\x1b" and c.sort_key == (1, 5)
    assert cell(None).sort_key < cell("a").sort_key


def test_hostile_query_cell_literal() -> None:
    c = cell(HOSTILE_QUERY, max_len=200)
    assert c.plain.startswith(
        "SELECT '[bold red]x[/]', '[link=http://x]y[/link]', '\\x1b[31mred\\x1b[0m', '\\x1b]0;pwned\\x07'"
    )
    assert c.plain.endswith("…") and len(c.plain) == 200


def test_row_classes() -> None:
    rows = sample_snapshots()[0].activity
    blockers = blockers_of(rows)
    by_pid = {r.pid: row_class(r, blockers) for r in rows}
    assert by_pid[4102] == "blocker"  # idle in transaction holding the lock
    assert by_pid[4103] == "blocker"  # waits, and blocks 4104: blocking wins
    assert by_pid[4104] == "waiting"
    assert by_pid[4105] == "long"
    assert by_pid[4101] == ""
    idle_tx = session("w", 1, "u", "idle in transaction", "x", duration_s=5)
    assert row_class(idle_tx, set()) == "idle_tx"


def test_blocking_forest_and_chain() -> None:
    rows = sample_snapshots()[0].activity
    forest = blocking_forest(rows)
    assert [n.row.pid for n in forest] == [4102]
    assert [c.row.pid for c in forest[0].children] == [4103]
    assert [c.row.pid for c in forest[0].children[0].children] == [4104]
    by_pid = {r.pid: r for r in rows}
    assert [r.pid for r in blocking_chain(by_pid[4104], rows)] == [4103, 4102]


def test_blocking_cycle_is_shown_once_not_forever() -> None:
    a = session("w", 1, "u", "active", "x", blocked_by=(2,))
    b = session("w", 2, "u", "active", "y", blocked_by=(1,))
    forest = blocking_forest([a, b])
    assert len(forest) == 1 and forest[0].children[0].children == ()
    assert [r.pid for r in blocking_chain(a, [a, b])] == [2]


def test_formatters() -> None:
    assert fmt_duration(None) == ""
    assert fmt_duration(0.4) == "0.4s"
    assert fmt_duration(42) == "42s"
    assert fmt_duration(185) == "3m05s"
    assert fmt_duration(7300) == "2h01m"
    assert fmt_countdown(T0 + timedelta(minutes=11, seconds=23), T0) == "11:23"
    assert fmt_countdown(T0 - timedelta(seconds=1), T0) == "expired"
    assert fmt_countdown(None, T0) == ""
    assert sparkline([0, 5, 10]) == "▁▄█"
    assert sparkline([]) == ""


def test_iam_counters_read_the_collectors_snake_case_keys_and_cloudwatch_names() -> None:
    from pgiam_tui.model import IamMetrics
    from pgiam_tui.ui.widgets.iam import metrics_text

    # aws/metrics.py's keys (snake case) and CloudWatch's own names add up under one label
    text = metrics_text(
        [
            IamMetrics("i-1", {"requests": 5.0, "failure_invalid_token": 2.0}, {"requests": (1.0, 4.0)}),
            IamMetrics("i-2", {"IamDbAuthConnectionRequests": 3.0}, {}),
        ]
    ).plain
    lines = text.splitlines()
    assert any(line.split() == ["requests", "8", "▂█"] for line in lines), lines
    assert any(line.split()[:3] == ["invalid", "token", "2"] for line in lines), lines
    assert "no datapoints" not in text
    empty = metrics_text([IamMetrics("i-1", {}, {})]).plain
    assert "no datapoints" in empty
    assert "no CloudWatch data" in metrics_text([]).plain


def test_iam_last_use_is_unknown_not_never_without_access_advisor_data() -> None:
    from pgiam_tui.model import DbUser, Grant
    from pgiam_tui.ui.widgets.iam import user_cells

    arn = "arn:aws:iam::111111111111:role/pg-monitor-role"
    unknown = user_cells(
        DbUser("pgmonitor", True, ("rds_iam",), True, iam_principals=(Grant(arn, "p", "*"),)), T0
    )
    assert unknown[-1].plain == "unknown"
    used = Grant(arn, "p", "*", last_used=T0 - timedelta(minutes=5))
    assert (
        user_cells(DbUser("pgmonitor", True, (), True, iam_principals=(used,)), T0)[-1].plain == "5m00s ago"
    )
    assert user_cells(DbUser("nobody", False, (), True), T0)[-1].plain == ""
