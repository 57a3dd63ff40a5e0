"""The console's keys, in one table: the bindings, the footer of each pane, the command palette, the help
screen and the README's key table are all made from `KEYS`.

Each key belongs to a scope: `main` keys work anywhere on the main screen; a pane's keys (`activity`,
`clusters`, `events`, `iam`) show in the footer while that pane has focus, and those marked `anywhere`
also work (unshown) from the rest of the main screen; `detail`, `all`, `help` are the keys of those
screens. A key Textual itself provides (tab, ctrl+p) is listed with `bound=False`: documented, not bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding, BindingType

Scope = Literal["main", "clusters", "activity", "events", "iam", "detail", "all", "help", "replay"]
PANE_SCOPES: tuple[Scope, ...] = ("clusters", "activity", "events", "iam")

SCOPE_HEADINGS: dict[Scope, str] = {
    "main": "Everywhere on the main screen",
    "clusters": "Cluster list",
    "activity": "Activity (sessions table; also the all-clusters view)",
    "events": "Events",
    "iam": "IAM",
    "detail": "Session detail",
    "all": "All clusters' sessions",
    "help": "This help",
    "replay": "Replay (pgiam-tui replay FILE)",
}

# the README table's "where" column
SCOPE_WHERE: dict[Scope, str] = {
    "main": "main screen",
    "clusters": "cluster list",
    "activity": "activity",
    "events": "events",
    "iam": "IAM",
    "detail": "session detail",
    "all": "all clusters",
    "help": "help",
    "replay": "replay",
}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One key of the console.

    `keys` are Textual key names, comma-separated; `action` is run on the app unless `local` (then on the
    widget or screen that owns the scope); `label` is the footer's word; `description` the help and README
    text; `title` the command palette's entry (None: not in the palette).
    """

    keys: str
    action: str
    label: str
    description: str
    scope: Scope
    title: str | None = None
    display: str | None = None  # how help and README write the key (default: from `keys`)
    footer: bool = True  # shown in the footer of its scope
    anywhere: bool = False  # a pane key that also works from the rest of the main screen
    priority: bool = False  # handled as the key arrives, before the focused widget sees it
    local: bool = False  # the action belongs to the scope's own widget/screen, not the app
    bound: bool = True  # False: provided by Textual; listed only
    listed: bool = True  # False: a footer reminder of a key listed elsewhere (help and README skip it)

    @property
    def shown_keys(self) -> str:
        """The key(s) as help and README write them."""
        if self.display is not None:
            return self.display
        return " / ".join(_KEY_NAMES.get(k, k) for k in self.keys.split(","))


_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "plus": "+",
    "minus": "-",
    "escape": "Esc",
    "enter": "Enter",
    "ctrl+p": "ctrl+p",
}

# Reminders of two main keys at the head of a pane's footer: a pane's own keys come before the main ones, and
# at 80 columns the main ones (q and ? last among them) would be cut off.
_FOOTER_FIRST = (
    ("question_mark", "help", "Help", "help: every key, the filter language, the colours"),
    ("q", "quit", "Quit", "quit (closes every connection)"),
)

KEYS: tuple[KeySpec, ...] = (
    # main screen
    KeySpec("question_mark", "help", "Help", "help: every key, the filter language, the colours", "main",
            title="Help"),
    KeySpec("ctrl+p", "command_palette", "Palette", "command palette: every action, sort by a column, jump "
            "to a cluster", "main", bound=False, footer=False),
    KeySpec("tab", "focus_next", "Next pane", "next pane (shift+tab: previous)", "main", bound=False,
            footer=False, display="Tab"),
    KeySpec("slash", "filter", "Filter", "filter the focused pane as you type (see Filters)", "main",
            title="Filter", priority=True),
    KeySpec("z", "zoom", "Zoom", "zoom / restore the focused pane (the top bar stays)", "main",
            title="Zoom pane"),
    KeySpec("escape", "unzoom", "Unzoom", "restore the layout after a zoom", "main"),
    KeySpec("a", "all_sessions", "All", "all clusters' sessions in one table", "main",
            title="All clusters' sessions", footer=False),
    KeySpec("c", "check", "Check", "connection check of the selected cluster (steps, cause, fix)", "main",
            title="Connection check"),
    KeySpec("r", "refresh", "Refresh", "collect the selected cluster now", "main", title="Refresh now",
            footer=False),
    KeySpec("p", "pause", "Pause", "pause / resume polling (the top bar says PAUSED)", "main",
            title="Pause / resume"),
    KeySpec("plus", "interval(1)", "+int", "longer refresh interval", "main", title="Slower refresh",
            footer=False),
    KeySpec("minus", "interval(-1)", "-int", "shorter refresh interval", "main", title="Faster refresh",
            footer=False),
    KeySpec("q", "quit", "Quit", "quit (closes every connection)", "main", title="Quit"),
    # cluster list (each pane's footer starts with ? and q, so that an 80-column footer never cuts them)
    *(KeySpec(k, a, label, d, "clusters", listed=False) for k, a, label, d in _FOOTER_FIRST),
    KeySpec("up,down", "cursor", "Move", "switch cluster (headings are skipped)", "clusters", bound=False,
            display="↑ / ↓"),
    KeySpec("apostrophe", "start_jump", "Jump", "jump to a cluster: type the start of its name (or any "
            "part); Enter keeps it, Esc goes back", "clusters", local=True, display="'"),
    KeySpec("a", "all_sessions", "All", "all clusters' sessions in one table", "clusters", listed=False),
    KeySpec("r", "refresh", "Refresh", "collect the selected cluster now", "clusters", listed=False),
    # activity
    *(KeySpec(k, a, label, d, "activity", listed=False) for k, a, label, d in _FOOTER_FIRST),
    KeySpec("enter", "choose", "Detail", "session detail: full query, timings, blocking chain", "activity",
            title="Session detail", local=True),
    KeySpec("s", "sort", "Sort", "sort by the next visible column", "activity", title="Sort: next column",
            anywhere=True),
    KeySpec("S", "reverse_sort", "Reverse", "reverse the sort", "activity", title="Sort: reverse",
            anywhere=True, footer=False),
    KeySpec("i", "hide_idle", "Idle", "hide / show idle sessions", "activity", title="Hide idle sessions",
            anywhere=True),
    KeySpec("g", "background", "Bg", "show / hide background processes (autovacuum, walwriter, …)",
            "activity", title="Background processes", anywhere=True, footer=False),
    KeySpec("b", "tree", "Blocking", "blocking tree (blockers → blocked)", "activity", title="Blocking tree",
            anywhere=True),
    KeySpec("v", "query_display", "Query", "query text: truncated → wrapped in its column → full (as "
            "written, under the row)", "activity", title="Query display: truncated / wrapped / full",
            anywhere=True),
    KeySpec("k", "signal_current('cancel')", "Cancel", "cancel the session's query (allow_actions only; "
            "asks first)", "activity", title="Cancel backend", anywhere=True),
    KeySpec("t", "signal_current('terminate')", "Terminate", "terminate the session (allow_actions only; "
            "asks first)", "activity", title="Terminate backend", anywhere=True),
    KeySpec("X", "terminate_idle_tx", "Idle tx", "terminate the selected cluster's sessions idle in "
            "transaction for more than N: one confirmation lists them, + / - change N (allow_actions only)",
            "activity", title="Terminate idle transactions", anywhere=True, footer=False),
    # session detail
    KeySpec("escape,q", "close", "Back", "back to the main screen", "detail", local=True),
    KeySpec("y", "copy", "Copy query", "copy the full query text (OSC 52)", "detail", local=True),
    KeySpec("k", "signal('cancel')", "Cancel", "cancel the query (asks first)", "detail", local=True),
    KeySpec("t", "signal('terminate')", "Terminate", "terminate the session (asks first)", "detail",
            local=True),
    # all clusters' sessions
    KeySpec("escape,a", "close", "Back", "back to the main screen", "all", local=True),
    # help
    KeySpec("escape,q,question_mark", "close", "Close", "close the help", "help", local=True),
    KeySpec("up,down,pageup,pagedown", "scroll", "Scroll", "scroll", "help", bound=False,
            display="↑ ↓ PgUp PgDn"),
    # replay: time travel on a recording (ReplayApp's own actions)
    KeySpec("right_square_bracket", "step(1)", "Next", "next moment", "replay", display="]"),
    KeySpec("left_square_bracket", "step(-1)", "Prev", "previous moment", "replay", display="["),
    KeySpec("right_curly_bracket", "step(10)", "+10", "10 moments on", "replay", footer=False, display="}"),
    KeySpec("left_curly_bracket", "step(-10)", "-10", "10 moments back", "replay", footer=False, display="{"),
    KeySpec("less_than_sign", "seek_edge(0)", "First", "first moment", "replay", footer=False, display="<"),
    KeySpec("greater_than_sign", "seek_edge(1)", "Last", "last moment", "replay", footer=False, display=">"),
    KeySpec("space", "play", "Play", "play / pause", "replay"),
    KeySpec("1", "play_at(1)", "1x", "play at real speed", "replay", footer=False),
    KeySpec("0", "play_at(10)", "10x", "play at 10x", "replay", footer=False),
    KeySpec("j", "jump", "Jump", "jump to a time (03:12, 03:12:30, +10m, ISO 8601)", "replay"),
)  # fmt: skip


def _binding(spec: KeySpec, *, show: bool) -> Binding:
    action = spec.action if spec.local else f"app.{spec.action}"
    return Binding(spec.keys, action, spec.label, show=show, priority=spec.priority)


def bindings(scope: Scope) -> list[BindingType]:
    """The bindings of one scope's widget or screen (the footer shows those marked `footer`)."""
    return [_binding(s, show=s.footer) for s in KEYS if s.scope == scope and s.bound]


def app_bindings() -> list[BindingType]:
    """The app's own bindings: the main keys, plus the `anywhere` pane keys (unshown)."""
    out: list[BindingType] = [_binding(s, show=s.footer) for s in KEYS if s.scope == "main" and s.bound]
    out += [_binding(s, show=False) for s in KEYS if s.anywhere and s.bound]
    return out


def palette_entries() -> Iterator[tuple[str, str, str]]:
    """(title, help, app action) of every key in the command palette; the help names the key."""
    seen: set[str] = set()
    for spec in KEYS:
        if spec.title is None or spec.title in seen:
            continue
        seen.add(spec.title)
        action = spec.action if not spec.local else _APP_EQUIVALENT.get(spec.action, spec.action)
        yield spec.title, f"{spec.description[:1].upper()}{spec.description[1:]} ({spec.shown_keys})", action


# a local action offered in the palette runs through the app's equivalent
_APP_EQUIVALENT = {"choose": "open_detail"}


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(heading, [(keys, description)]) per scope, in the table's order."""
    sections: dict[Scope, list[tuple[str, str]]] = {}
    for spec in KEYS:
        if spec.listed:
            sections.setdefault(spec.scope, []).append((spec.shown_keys, spec.description))
    return [(SCOPE_HEADINGS[scope], rows) for scope, rows in sections.items()]


def markdown_table() -> str:
    """The README's key table (tests/unit/test_keys.py keeps the README in step with it)."""
    lines = ["| where | key | action |", "|---|---|---|"]
    for spec in KEYS:
        if spec.listed:
            keys, description, where = spec.shown_keys, spec.description, SCOPE_WHERE[spec.scope]
            shown = " / ".join(f"`{k.strip()}`" for k in keys.split(" / "))
            lines.append(f"| {where} | {shown} | {description} |")
    return "\n".join(lines)
