"""textsafe.visible: the one function deciding which characters of untrusted text reach a terminal."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from pgiam_tui import textsafe
from pgiam_tui.collect.logparse import parse_line
from pgiam_tui.collect.logparse import visible as log_visible
from pgiam_tui.commands._cliutil import visible as cli_visible
from pgiam_tui.commands.snapshot import visible as snapshot_visible
from pgiam_tui.diagnose.text import visible as check_visible

HOSTILE = "a\x1b[2J\x1b]0;title\x07b\x9bc\u202ed\u2066e\u200bf\u2028g\x00h\U000e0001"
_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _unsafe_chars(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in _UNSAFE]


def test_escapes_csi_osc_c1_bidi_zero_width_separators_and_nul() -> None:
    shown = textsafe.visible(HOSTILE)
    assert shown == ("a\\x1b[2J\\x1b]0;title\\x07b\\x9bc\\u202ed\\u2066e\\u200bf\\u2028g\\x00h\\U000e0001")
    assert _unsafe_chars(shown) == []


def test_layout_of_tab_newline_and_carriage_return() -> None:
    assert textsafe.visible("a\tb\nc\rd") == "a\\tb\\nc\\rd"
    assert textsafe.visible("a\tb\nc\rd", layout="space") == "a b c d"
    # a lone CR could overwrite the start of the line: escaped even when lines are kept
    assert textsafe.visible("a\tb\nc\rd", layout="keep_lines") == "a\tb\nc\\rd"


def test_harmless_text_is_unchanged_and_limit_cuts_with_an_ellipsis() -> None:
    text = "SELECT 'ｄｅｍｏ' AS 日本語,\u3000\xa0x -- ünïcödé"
    assert textsafe.visible(text) == text
    assert textsafe.visible("x" * 100, limit=10) == "x" * 9 + "…"
    assert textsafe.visible("short", limit=10) == "short"


@given(st.text())
def test_no_unsafe_character_survives_any_layout(text: str) -> None:
    for layout in ("escape", "space", "keep_lines"):
        shown = textsafe.visible(text, layout=layout)  # type: ignore[arg-type]
        kept = {"\t", "\n"} if layout == "keep_lines" else set()
        assert [ch for ch in _unsafe_chars(shown) if ch not in kept] == []


def test_every_cli_and_collector_policy_uses_the_shared_core() -> None:
    # The bidi override was let through by the log parser's own helper before it used textsafe.
    for shown in (
        log_visible(HOSTILE),
        cli_visible(HOSTILE),
        snapshot_visible(HOSTILE, 500),
        check_visible(HOSTILE),
    ):
        assert _unsafe_chars(shown) == [], shown
        assert "\\u202e" in shown and "\\x9b" in shown
    prefix = "2024-01-01 00:00:00 UTC:10.0.0.1(1):u@d:[1]:"
    ev = parse_line(prefix + 'FATAL:  PAM authentication failed for user "\u202eevil"')
    assert "\u202e" not in ev.message and "\\u202e" in ev.message
