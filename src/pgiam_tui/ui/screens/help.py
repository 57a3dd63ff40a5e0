"""The help screen, made from the key table (ui/keys.py) and the panes' filter languages: it cannot drift
from the keys that are actually bound. It scrolls, so nothing is out of reach at 80x24."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pgiam_tui.ui.activity_filter import ACTIVITY_FILTER
from pgiam_tui.ui.activity_model import ROW_STYLES
from pgiam_tui.ui.keys import bindings, help_sections
from pgiam_tui.ui.widgets.events import EVENT_FILTER

ROW_MEANINGS = {
    "blocker": "blocks other sessions",
    "waiting": "waits on a lock",
    "idle_tx": "idle in transaction",
    "long": "active for more than a minute",
}

FILTER_SYNTAX = (
    ("word", 'each word must appear in the row; "a phrase" is one word'),
    ("field:value", "the field contains the value (state, kind: equals one of its names)"),
    ("-word -field:v", "the row must NOT match"),
    ("min:10s", "at least that long (500ms, 10s, 2m, 1.5h)"),
    ("state:idle tx", '= state:idle_tx = state:"idle in transaction"; state:idle is plain idle'),
)


def _grid(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True, min_width=12)
    grid.add_column(ratio=1)
    for keys, description in rows:
        grid.add_row(keys, description)
    return grid


def help_renderable() -> RenderableType:
    """Keys per scope, the filter language, the colour legend."""
    parts: list[RenderableType] = []
    for heading, rows in help_sections():
        parts += [Text(heading, style="bold underline"), _grid(rows), Text("")]
    parts += [Text("Filters (/), the same in every pane", style="bold underline"), _grid(list(FILTER_SYNTAX))]
    parts += [
        _grid(
            [
                ("activity", " ".join(f"{n}:" for n in ACTIVITY_FILTER.field_names)),
                ("events", " ".join(f"{n}:" for n in EVENT_FILTER.field_names)),
            ]
        ),
        Text(""),
        Text("Colours of activity rows", style="bold underline"),
    ]
    legend = Table.grid(padding=(0, 2))
    legend.add_column(no_wrap=True, min_width=12)
    legend.add_column(ratio=1)
    for name, meaning in ROW_MEANINGS.items():
        legend.add_row(Text(name.replace("_", " "), style=ROW_STYLES[name]), meaning)
    parts.append(legend)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Key reference, scrollable; Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("help")

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        """Title with the way out, the scrolling body, the scroll hint."""
        with Vertical(classes="dialog wide", id="help-dialog"):
            yield Static(Text.assemble(("Keys", "bold"), ("   Esc closes", "dim")), id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_renderable(), id="help-body")
            yield Static(Text("↑ ↓ PgUp PgDn scroll · Esc, q or ? closes", style="dim"), id="help-hint")

    def on_mount(self) -> None:
        """Focus the body so the arrow keys scroll it."""
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        """Close."""
        self.dismiss(None)
