"""textsafe: the one cleaner deciding how untrusted text reaches a terminal, a JSON document or the screen."""

from __future__ import annotations

import json
import logging
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgiam_tui import textsafe
from pgiam_tui.textsafe import Layout

HOSTILE = "a\x1b[2J\x1b]0;title\x07b\x9bc\u202ed\u2066e\u200bf\u2028g\x00h\U000e0001"
_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs"}
LAYOUTS: tuple[Layout, ...] = ("escape", "space", "keep_lines")

# The escape syntax, read back: the inverse of `visible` in the "escape" layout. If this decoder recovers
# every input, no two inputs can render the same (a function with an inverse is injective).
_ESCAPE = re.compile(r"\\(?:(\\)|([tnr])|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))")


def _decode(shown: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "\\"
        if m.group(2):
            return {"t": "\t", "n": "\n", "r": "\r"}[m.group(2)]
        return chr(int(m.group(3) or m.group(4) or m.group(5), 16))

    return _ESCAPE.sub(one, shown)


def _unsafe_chars(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in _UNSAFE]


def test_escapes_csi_osc_c1_bidi_zero_width_separators_and_nul() -> None:
    shown = textsafe.visible(HOSTILE)
    assert shown == ("a\\x1b[2J\\x1b]0;title\\x07b\\x9bc\\u202ed\\u2066e\\u200bf\\u2028g\\x00h\\U000e0001")
    assert _unsafe_chars(shown) == []


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\u061c", "\\u061c"),  # ARABIC LETTER MARK: a bidi control the UI's own cleaner let through
        ("\u00ad", "\\xad"),  # SOFT HYPHEN: invisible
        ("\u180e", "\\u180e"),  # MONGOLIAN VOWEL SEPARATOR
        ("\ufff9", "\\ufff9"),  # interlinear annotation anchor..terminator
        ("\ufffb", "\\ufffb"),
        ("\U000e0000", "\\U000e0000"),  # the tag block, unassigned code points included
        ("\U000e0041", "\\U000e0041"),  # TAG LATIN CAPITAL LETTER A: smuggles invisible ASCII
        ("\U000e007f", "\\U000e007f"),  # CANCEL TAG
        ("\u3164", "\\u3164"),  # HANGUL FILLER: a "letter" that renders as nothing
        ("\x7f", "\\x7f"),  # DEL
        ("\x85", "\\x85"),  # NEL, a C1 control
        ("\u2067", "\\u2067"),  # RIGHT-TO-LEFT ISOLATE
        ("\\", "\\\\"),  # a literal backslash: doubled, so it can never start a fake escape
    ],
)
def test_every_invisible_or_reordering_character_is_escaped(char: str, shown: str) -> None:
    assert textsafe.visible(f"a{char}b") == f"a{shown}b"
    assert textsafe.is_unsafe(char) or char == "\\"


def test_literal_text_cannot_imitate_an_escaped_control() -> None:
    """Issue 10: ESC was shown three ways (␛, \\x1b, \\u001b) and a user could type any of them."""
    real = textsafe.visible("\x1b[2J")
    forged = textsafe.visible("\\x1b[2J")
    assert real == "\\x1b[2J"
    assert forged == "\\\\x1b[2J"
    assert real != forged


def test_layout_of_tab_newline_and_carriage_return() -> None:
    assert textsafe.visible("a\tb\nc\rd") == "a\\tb\\nc\\rd"
    assert textsafe.visible("a\tb\nc\rd", layout="space") == "a b c d"
    # a lone CR could overwrite the start of the line: escaped even when lines are kept
    assert textsafe.visible("a\tb\nc\rd", layout="keep_lines") == "a\tb\nc\\rd"


def test_harmless_text_is_unchanged_and_limit_cuts_with_an_ellipsis() -> None:
    text = "SELECT 'ｄｅｍｏ' AS 日本語,\u3000\xa0x -- ünïcödé 👍🏽 e\u0301"
    assert textsafe.visible(text) == text
    assert textsafe.visible("x" * 100, limit=10) == "x" * 9 + "…"
    assert textsafe.visible("short", limit=10) == "short"


def test_a_cut_never_splits_an_escape() -> None:
    shown = textsafe.visible("ab\x1b\x1b\x1b", limit=7)
    assert shown == "ab\\x1b…"
    assert textsafe.visible("\x1b" * 3, limit=12) == "\\x1b" * 3  # exactly fits: no ellipsis


@given(st.text())
def test_the_escape_layout_is_injective(text: str) -> None:
    """Round trip: the escaped form determines the input, so two different inputs never look the same."""
    assert _decode(textsafe.visible(text)) == text


@given(st.text(), st.text())
def test_two_different_texts_never_render_the_same(a: str, b: str) -> None:
    injective: tuple[Layout, ...] = ("escape", "keep_lines")
    for layout in injective:
        if a != b:
            assert textsafe.visible(a, layout=layout) != textsafe.visible(b, layout=layout)


@given(st.text())
def test_keep_lines_only_keeps_tab_and_newline(text: str) -> None:
    shown = textsafe.visible(text, layout="keep_lines")
    assert _decode(shown.replace("\t", "\\t").replace("\n", "\\n")) == text


@given(st.text())
def test_no_unsafe_character_survives_any_layout(text: str) -> None:
    for layout in LAYOUTS:
        shown = textsafe.visible(text, layout=layout)
        kept = {"\t", "\n"} if layout == "keep_lines" else set()
        assert [ch for ch in shown if textsafe.is_unsafe(ch) and ch not in kept] == []


@given(st.text(), st.integers(min_value=1, max_value=40))
def test_a_limited_result_is_a_prefix_of_the_whole_and_fits(text: str, limit: int) -> None:
    whole = textsafe.visible(text)
    cut = textsafe.visible(text, limit=limit)
    assert len(cut) <= limit
    if cut != whole:
        assert cut.endswith("…") and whole.startswith(cut[:-1])


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda c: st.lists(c) | st.dictionaries(st.text(), c),
)


@given(_JSON)
@pytest.mark.slow
def test_json_output_is_ascii_without_controls_and_reads_back(value: object) -> None:
    text = textsafe.to_json(value, indent=2)
    assert all(0x20 <= ord(ch) < 0x7F or ch == "\n" for ch in text)
    assert json.loads(text) == value


def test_clip_cuts_without_escaping() -> None:
    assert textsafe.clip("a\x1b" * 10, 5) == "a\x1ba\x1b…"
    assert textsafe.clip("short") == "short"


def test_log_lines_on_stderr_are_escaped_too(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("pgiam_tui.test_textsafe")
    handler = textsafe.VisibleStderrHandler()
    logger.addHandler(handler)
    try:
        logger.warning("round of %s failed: %s", "c1", "FATAL: \x1b]0;pwned\x07 role \u202eevil\nnext line")
        logger.info("below WARNING: not shown")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == "round of c1 failed: FATAL: \\x1b]0;pwned\\x07 role \\u202eevil\nnext line\n"


def test_a_warning_with_an_exception_is_one_line_never_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # botocore logs "Refreshing temporary credentials failed ..." with exc_info during a refresh failure
    logger = logging.getLogger("pgiam_tui.test_textsafe.exc")
    handler = textsafe.VisibleStderrHandler()
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("AccessDenied when calling AssumeRole")
        except RuntimeError:
            logger.warning("Refreshing temporary credentials failed", exc_info=True)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert (
        err == "Refreshing temporary credentials failed: RuntimeError: AccessDenied when calling AssumeRole\n"
    )
    assert "Traceback" not in err


def test_the_handler_is_installed_only_where_nobody_configured_logging() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        textsafe.install_log_handler()
        textsafe.install_log_handler()
        assert [type(h) for h in root.handlers] == [textsafe.VisibleStderrHandler]
        mine = logging.NullHandler()
        root.handlers = [mine]
        textsafe.install_log_handler()
        assert root.handlers == [mine]
    finally:
        root.handlers = saved
