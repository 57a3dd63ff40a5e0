"""The one filter language (ui/filter_language.py) and the panes' use of it: filters match what is shown."""

from __future__ import annotations

import pytest
from pgiam_devtools.sample import T0, sample_snapshots, session

from pgiam_tui.model import Attempt, Outcome
from pgiam_tui.ui.activity_filter import ACTIVITY_FILTER, parse_activity_filter
from pgiam_tui.ui.activity_model import ACTIVITY_COLUMNS, Located, styled_cells
from pgiam_tui.ui.filter_language import FilterError, normalise, parse_duration
from pgiam_tui.ui.widgets.events import EVENT_FILTER, PaneRow, pane_rows, parse_event_filter, row_cells


def sessions() -> list[Located]:
    snap = sample_snapshots()[0]
    rows = [Located(snap.name, r) for r in snap.activity]
    aborted = session("pgdemo-1-writer", 4110, "app", "idle in transaction (aborted)", "SELECT 1/0")
    return [*rows, Located(snap.name, aborted)]


def pids(text: str) -> list[int]:
    flt = parse_activity_filter(text)
    return sorted(loc.row.pid for loc in sessions() if flt.matches(loc))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("2m", 120.0), ("500ms", 0.5), ("1.5h", 5400.0), ("30", 30.0), ("1d", 86400.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "state:idle tx",
        "state:idle_tx",
        'state:"idle in transaction"',
        "state:'idle in transaction'",
        "state:idle in transaction",
        "STATE:Idle_In_Transaction",
    ],
)
def test_every_spelling_of_idle_in_transaction_matches_the_rows_shown_as_idle_tx(text: str) -> None:
    assert pids(text) == [4102]


def test_a_state_is_matched_whole_never_in_part() -> None:
    assert pids("state:idle") == [4106, 5102]  # not the idle-in-transaction sessions
    assert pids("state:idle tx!") == [4110]
    assert pids('state:"idle in transaction (aborted)"') == [4110]
    assert pids("state:act") == []


def test_what_the_state_column_shows_is_a_filter_for_it() -> None:
    """For every session, `state:"<the state cell's text>"` keeps it (the filter reads the screen)."""
    index = [c.key for c in ACTIVITY_COLUMNS].index("state")
    for loc in sessions():
        shown = styled_cells(loc.row, "")[index].plain
        assert loc.row.pid in pids(f'state:"{shown}"'), shown


def test_fields_words_and_negation() -> None:
    assert pids("state:active user:OLTP_RW min:10s") == [4103, 4104]
    assert pids("pg_sleep") == [4105]
    assert pids("db:demo instance:reader state:idle") == [5102]
    assert pids("-state:active -state:idle") == [4102, 4110]
    assert pids("wait:lock") == [4103, 4104]
    assert pids("wait:Lock:tuple") == [4104]
    assert pids("pid:4105") == [4105]
    assert pids('"pgdemo.products set"') == [4102, 4103]  # a quoted phrase is one word
    assert pids("-oltp") == [4106, 4110]
    assert pids("cluster:pgdemo-1 app:lock") == [4102]
    assert pids("12:30") == []  # not a field: searched as a word
    assert not parse_activity_filter("").active
    assert parse_activity_filter("  user:x ").text == "user:x"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("min:abc", "bad duration"),
        ("colour:red", "unknown filter field 'colour'"),
        ("user:", "user: needs a value"),
        ("pid:x", "needs a number"),
    ],
)
def test_filter_errors_are_one_line(bad: str, says: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_activity_filter(bad)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_normalise() -> None:
    assert normalise("  Idle_In   transaction ") == "idle in transaction"


def rows() -> list[PaneRow]:
    bad_token = Attempt(T0, Outcome.FAILED, "u", method="iam", aws_code="InvalidToken",
                        aws_reason="the provided token is malformed or otherwise invalid")  # fmt: skip
    return [*pane_rows(sample_snapshots()[0]), PaneRow(attempt=bad_token)]


def kinds(text: str) -> list[str]:
    flt = parse_event_filter(text)
    return sorted(row_cells(r)[1].plain + (f" {r.value('user')}" if r.value("user") else "") for r in rows()
                  if flt.matches(r))  # fmt: skip


def test_event_kinds_are_matched_by_name_not_by_part() -> None:
    ok = ["console ok pgmonitor", "ok oltp_ro_user", "ok oltp_rw_user"]
    assert kinds("kind:ok") == ok  # not the login AWS refused as InvalidToken ("bad t-ok-en")
    assert kinds("kind:fail") == ["FAILED oltp_rw_user", "FAILED u"]
    assert kinds("kind:iam") == kinds("method:iam") == ["FAILED oltp_rw_user", "FAILED u"]
    assert kinds("kind:InvalidToken") == kinds("aws:invalid") == ["FAILED u"]
    assert kinds("outcome:failed") == kinds('kind:"FAILED"') == ["FAILED oltp_rw_user", "FAILED u"]
    assert kinds("kind:console ok") == ["console ok pgmonitor"]
    assert kinds("user:oltp_ro") == ["ok oltp_ro_user"]
    assert kinds("expired") == ["FAILED oltp_rw_user"]  # AWS's reason is searched
    assert kinds("pam_authenticate") == ["FAILED oltp_rw_user"]  # and the raw lines
    assert kinds("-kind:fail -kind:ok") == []
    with pytest.raises(FilterError):
        parse_event_filter("nope:x")


def test_what_the_outcome_column_shows_is_a_filter_for_it() -> None:
    for row in rows():
        shown = row_cells(row)[1].plain
        assert EVENT_FILTER.parse(f'kind:"{shown}"').matches(row), shown


def test_help_lines_name_every_field() -> None:
    for language in (ACTIVITY_FILTER, EVENT_FILTER):
        line = language.help_line()
        for name in language.field_names:
            assert f"{name}:" in line
