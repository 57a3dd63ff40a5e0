"""The one filter language of every pane: `field:value` terms and free words, matched against what is shown.

A pane describes its rows once, as a `FilterLanguage` (its fields and the texts free words search), and
gets parsing, matching and the help line from here. Syntax, the same in every pane:

    word                 each free word must appear somewhere in the row (case-insensitive)
    "two words"          a quoted phrase is one word
    field:value          the row's field matches the value (text fields: contains it)
    field:"a b"          quoted value; `field:a b` also works when `a b` is one of the field's choices
    -word  -field:value  negation: the row must NOT match
    min:10s              at-least fields take a duration (500ms, 10s, 2m, 1.5h) or a number

Values and row texts are compared after the same normalisation (lower case, `_` read as a space,
runs of spaces as one), so `state:idle_tx`, `state:idle tx` and `state:"idle in transaction"` all
name the state shown as `idle tx`. Choice fields (state, kind, outcome...) match a whole name, never
part of one: `state:idle` is plain idle, not idle in transaction.

Nothing here knows Textual: panes, tests and the bench use it directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SPACES = re.compile(r"[\s_]+")


class FilterError(ValueError):
    """A filter that cannot be understood; the message is one line for the user."""


class FieldKind(Enum):
    """How a field's value is compared with a row."""

    TEXT = "text"  # the row's text contains the value
    CHOICE = "choice"  # one of the row's names equals the value
    NUMBER = "number"  # the row's number equals the value
    AT_LEAST = "at_least"  # the row's number (seconds) is at least the value (a duration)


def normalise(text: str) -> str:
    """The form both sides are compared in: lower case, `_` as a space, spaces collapsed."""
    return _SPACES.sub(" ", text.lower()).strip()


def parse_duration(text: str) -> float:
    """'10s', '2m', '500ms', '1.5h', '1d', '30' (seconds) -> seconds."""
    m = _DURATION_RE.match(text.strip().lower())
    if not m:
        raise FilterError(f"bad duration {text!r} (use e.g. 10s, 2m, 500ms)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


@dataclass(frozen=True, slots=True)
class FilterField(Generic[T]):
    """One `name:value` field of a pane's filter.

    `texts` gives what the row shows for the field (TEXT: texts searched; CHOICE: the names the row's
    value goes by, e.g. the shown `idle tx` and PostgreSQL's `idle in transaction`); `number` gives the
    row's number for NUMBER / AT_LEAST fields. `choices` lists the names a CHOICE field knows, so a
    multi-word name can be typed without quotes (`state:idle tx`).
    """

    name: str
    kind: FieldKind
    help: str
    texts: Callable[[T], Iterable[str | None]] | None = None
    number: Callable[[T], float | None] | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    def matcher(self, value: str) -> Callable[[T], bool]:
        """A predicate for `self.name:value` (FilterError when the value cannot be one of this field)."""
        if self.kind in (FieldKind.NUMBER, FieldKind.AT_LEAST):
            get_number = self.number
            if get_number is None:
                raise TypeError(f"field {self.name} needs a number getter")
            if self.kind is FieldKind.AT_LEAST:
                floor = parse_duration(value)
                return lambda item: (get_number(item) or 0.0) >= floor
            try:
                wanted = float(value)
            except ValueError:
                raise FilterError(f"{self.name}: needs a number, not {value!r}") from None
            return lambda item: get_number(item) == wanted
        get_texts = self.texts
        if get_texts is None:
            raise TypeError(f"field {self.name} needs a text getter")
        needle = normalise(value)
        if self.kind is FieldKind.CHOICE:
            return lambda item: any(t is not None and normalise(t) == needle for t in get_texts(item))
        return lambda item: any(t is not None and needle in normalise(t) for t in get_texts(item))


@dataclass(frozen=True, slots=True)
class Term(Generic[T]):
    """One parsed piece of a filter: a field test or a free word, possibly negated."""

    label: str  # as the user would write it, for error messages and tests
    test: Callable[[T], bool]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Filter(Generic[T]):
    """A parsed filter: every term must hold. The empty filter passes everything."""

    text: str = ""
    terms: tuple[Term[T], ...] = ()

    @property
    def active(self) -> bool:
        """True when the filter can hide anything."""
        return bool(self.terms)

    def matches(self, item: T) -> bool:
        """Whether `item` passes every term."""
        return all(term.test(item) != term.negated for term in self.terms)


@dataclass(frozen=True)
class FilterLanguage(Generic[T]):
    """A pane's filter: its fields and the texts that free words are searched in."""

    fields: Sequence[FilterField[T]]
    words: Callable[[T], Iterable[str | None]]
    example: str = ""
    _by_name: dict[str, FilterField[T]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, FilterField[T]] = {}
        for f in self.fields:
            for name in (f.name, *f.aliases):
                by_name[name] = f
        object.__setattr__(self, "_by_name", by_name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fields' names (aliases left out), in the pane's order."""
        return tuple(f.name for f in self.fields)

    def help_line(self) -> str:
        """One line naming the fields, for the filter input and the help screen."""
        return "  ".join(f"{f.name}:{f.help}" for f in self.fields)

    def parse(self, text: str) -> Filter[T]:
        """Parse what the user typed (FilterError, one line, when it is not a valid filter)."""
        tokens = _tokenise(text)
        terms: list[Term[T]] = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            i += 1
            if tok.field is None:
                if tok.value:
                    terms.append(self._word_term(tok.value, tok.negated))
                continue
            spec = self._by_name.get(tok.field.lower())
            if spec is None:
                if tok.quoted_value or not tok.field.replace("-", "").isalpha():
                    # `12:30`, `http://x`: not meant as a field; search for it as a word
                    terms.append(self._word_term(tok.raw, tok.negated))
                    continue
                known = ", ".join(self.field_names)
                raise FilterError(f"unknown filter field {tok.field!r} (known: {known})")
            value = tok.value
            if spec.kind is FieldKind.CHOICE and spec.choices and not tok.quoted_value:
                value, i = _longest_choice(value, tokens, i, spec.choices)
            if not value:
                raise FilterError(f"{spec.name}: needs a value (e.g. {spec.name}:{spec.help})")
            prefix = "-" if tok.negated else ""
            terms.append(Term(f"{prefix}{spec.name}:{value}", spec.matcher(value), tok.negated))
        return Filter(text.strip(), tuple(terms))

    def _word_term(self, word: str, negated: bool) -> Term[T]:
        needle = normalise(word)
        words = self.words

        def test(item: T) -> bool:
            return any(t is not None and needle in normalise(t) for t in words(item))

        return Term(("-" if negated else "") + word, test, negated)


@dataclass(frozen=True, slots=True)
class _Token:
    raw: str
    field: str | None
    value: str
    negated: bool
    quoted_value: bool


def _tokenise(text: str) -> list[_Token]:
    """Split on spaces, keeping quoted stretches together; an unclosed quote runs to the end."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negated = text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        if negated:
            i += 1
        body_start = i
        field_name: str | None = None
        quoted = False
        value_chars: list[str] = []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in "\"'":
                end = text.find(ch, i + 1)
                end = n if end < 0 else end
                value_chars.append(text[i + 1 : end])
                quoted = True
                i = end + 1
                continue
            if ch == ":" and field_name is None and not quoted and i > body_start:
                field_name = "".join(value_chars)
                value_chars = []
                i += 1
                continue
            value_chars.append(ch)
            i += 1
        tokens.append(_Token(text[start:i], field_name, "".join(value_chars), negated, quoted))
    return tokens


def _longest_choice(value: str, tokens: list[_Token], i: int, choices: Sequence[str]) -> tuple[str, int]:
    """`state:idle tx`: take the following bare words while they spell a longer choice name."""
    names = [normalise(c) for c in choices]
    best, best_i = value, i
    joined = normalise(value)
    j = i
    while j < len(tokens):
        nxt = tokens[j]
        if nxt.field is not None or nxt.negated or nxt.quoted_value:
            break
        joined = f"{joined} {normalise(nxt.value)}"
        j += 1
        if not any(name.startswith(joined) for name in names):
            break
        if joined in names:
            best, best_i = joined, j
    return best, best_i
