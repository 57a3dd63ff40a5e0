"""The one duration parser behind every option that takes a duration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgiam_tui.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45), ("1.5h", 5400),
     ("500ms", 0.5), (" 2H ", 7200), ("1w", 604800)],
)  # fmt: skip
def test_durations_as_users_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "-5m", "0s", "m", "1h 30m", "nan", "inf", "10m5"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_formatted_durations_read_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
