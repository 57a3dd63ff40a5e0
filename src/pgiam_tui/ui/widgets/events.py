"""The events pane: connection-log events newest first, the failures summary and AssumeRole sources."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Input, Static

from pgiam_tui.model import ClusterSnapshot, ConnEvent
from pgiam_tui.ui.filter_language import FieldKind, Filter, FilterField, FilterLanguage
from pgiam_tui.ui.render import SortCell, cell, fmt_time, safe_text
from pgiam_tui.ui.widgets.filterable import FilterablePane

# Label and colour per kind: a failure must be told from a login at a glance.
KIND_LABELS: dict[str, tuple[str, str]] = {
    "received": ("received", "dim"),
    "authorized": ("AUTH OK", "green"),
    "auth_failed": ("AUTH FAIL", "bold white on red"),
    "disconnected": ("disconn", "dim"),
    "iam_invalid_token": ("IAM bad token", "bold red"),
    "iam_expired_token": ("IAM expired", "bold red"),
    "iam_not_authorized": ("IAM denied", "bold red"),
    "iam_throttled": ("IAM throttled", "bold yellow"),
    "iam_internal_error": ("IAM error", "bold red"),
    "client_connect": ("console ok", "cyan"),
    "client_failed": ("console FAIL", "bold red"),
    "action": ("ACTION", "bold magenta"),
    "other": ("other", ""),
}
_FAILED_KINDS = frozenset(
    {
        "auth_failed",
        "client_failed",
        "iam_invalid_token",
        "iam_expired_token",
        "iam_not_authorized",
        "iam_throttled",
        "iam_internal_error",
    }
)


def kind_names(kind: str) -> tuple[str, ...]:
    """Every name an event kind goes by in a filter: the label shown, the kind, and its family."""
    names = [KIND_LABELS.get(kind, (kind, ""))[0], kind]
    if kind in _FAILED_KINDS:
        names += ["fail", "failed"]
    if kind in ("authorized", "client_connect"):
        names.append("ok")
    if kind.startswith("iam_"):
        names.append("iam")
    if kind.startswith("client_"):
        names.append("console")
    return tuple(names)


_KIND_CHOICES = tuple(dict.fromkeys(name for kind in KIND_LABELS for name in kind_names(kind)))

EVENT_FILTER: FilterLanguage[ConnEvent] = FilterLanguage(
    fields=(
        FilterField(
            "kind", FieldKind.CHOICE, "fail", texts=lambda ev: kind_names(ev.kind), choices=_KIND_CHOICES
        ),
        FilterField("user", FieldKind.TEXT, "name", texts=lambda ev: (ev.user,)),
        FilterField("db", FieldKind.TEXT, "name", texts=lambda ev: (ev.database,), aliases=("database",)),
        FilterField("host", FieldKind.TEXT, "ip", texts=lambda ev: (ev.host,)),
        FilterField("source", FieldKind.TEXT, "cloudwatch", texts=lambda ev: (ev.source,)),
        FilterField("instance", FieldKind.TEXT, "reader", texts=lambda ev: (ev.instance,)),
        FilterField("pid", FieldKind.NUMBER, "123", number=lambda ev: ev.pid),
    ),
    words=lambda ev: (
        ev.message,
        ev.user,
        ev.database,
        ev.host,
        ev.iam_reason,
        *kind_names(ev.kind),
        ev.caller_arn,
        ev.source,
    ),
    example="kind:fail user:oltp -host:10.0.1.23 words",
)


def parse_event_filter(text: str) -> Filter[ConnEvent]:
    """Parse `/` input of the events pane (FilterError, a ValueError, when it is not valid)."""
    return EVENT_FILTER.parse(text)


def event_key(ev: ConnEvent) -> str:
    """A stable key for an event across rounds (events have no id of their own)."""
    raw = "\x1f".join(
        str(x)
        for x in (
            ev.time.isoformat() if ev.time else "",
            ev.kind,
            ev.user,
            ev.pid,
            ev.source,
            ev.instance,
            ev.message,
        )
    )
    return hashlib.blake2b(raw.encode("utf-8", "replace"), digest_size=10).hexdigest()


def ssl_label(ssl: dict[str, object] | None) -> str:
    """'TLSv1.3 AES256…' / 'no SSL' / ''."""
    if not ssl:
        return ""
    if ssl.get("enabled") is False:
        return "no SSL"
    parts = [str(ssl[k]) for k in ("protocol", "cipher", "bits") if ssl.get(k) is not None]
    return " ".join(parts) or "SSL"


def event_cells(ev: ConnEvent) -> tuple[SortCell, ...]:
    """Cells: time, kind, user, db, host, ssl, message (with AWS's reason beside IAM failures)."""
    label, style = KIND_LABELS.get(ev.kind, (ev.kind, ""))
    ts = ev.time.timestamp() if ev.time else 0.0
    host = ev.host if ev.port is None else f"{ev.host}({ev.port})"
    message = ev.message
    if ev.iam_reason:
        message = f"AWS: {ev.iam_reason} — {message}"
    return (
        cell(fmt_time(ev.time), (ts,)),
        cell(label, style=style),
        cell(ev.user, max_len=16),
        cell(ev.database, max_len=10),
        cell(host, max_len=24),
        cell(ssl_label(ev.ssl), max_len=28),
        cell(message, max_len=300, style="red" if ev.iam_reason else ""),
    )


EVENT_COLUMNS = (
    ("time", 8),
    ("kind", 13),
    ("user", 12),
    ("db", 8),
    ("host", 18),
    ("ssl", 16),
    ("message", 80),
)


class EventsTable(DataTable[SortCell]):
    """Events of the selected cluster, newest first, diff-updated by event key."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._shown: set[str] = set()
        self.event_filter: Filter[ConnEvent] = Filter()
        self._sources: list[ConnEvent] = []

    def on_mount(self) -> None:
        """Fixed-width columns."""
        for name, width in EVENT_COLUMNS:
            self.add_column(name, width=width, key=name)

    def show(self, evs: Sequence[ConnEvent], *, reset: bool = False) -> None:
        """Add new events, drop those gone from the snapshot's window, keep newest first."""
        self._sources = list(evs)
        if reset:
            self.clear()
            self._shown.clear()
        wanted: dict[str, ConnEvent] = {}
        seen: dict[str, int] = {}
        for ev in evs:
            if self.event_filter.active and not self.event_filter.matches(ev):
                continue
            key = event_key(ev)
            n = seen.get(key, 0)
            seen[key] = n + 1
            wanted[f"{key}.{n}" if n else key] = ev
        added = False
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                self._shown.discard(key)
            for key, ev in wanted.items():
                if key not in self._shown:
                    self.add_row(*event_cells(ev), key=key)
                    self._shown.add(key)
                    added = True
            if added:
                self.sort("time", key=lambda c: c.sort_key, reverse=True)

    def reapply(self) -> None:
        """Re-filter the last events."""
        self.show(self._sources)


def failures_text(snap: ClusterSnapshot) -> Text:
    """Failures per user/host, then AssumeRole sources."""
    text = Text()
    text.append("Auth failures (user @ host): ", style="bold")
    if not snap.failures:
        text.append("none", style="dim")
    for i, f in enumerate(sorted(snap.failures, key=lambda x: -x.count)[:6]):
        if i:
            text.append("  ")
        text.append(f"{f.count}× ", style="bold red")
        text.append_text(safe_text(f.user, 16, none="?"))
        text.append(" @ ", style="dim")
        text.append_text(safe_text(f.host, 28, none="?"))
    iam = snap.iam
    if iam is not None and iam.assume_role_events:
        text.append("\nAssumeRole: ", style="bold")
        for i, a in enumerate(iam.assume_role_events[:4]):
            if i:
                text.append("  ")
            text.append(fmt_time(a.time) + " ", style="dim")
            text.append_text(safe_text(a.source_account, 14, none="?"))
            text.append(" from ", style="dim")
            text.append_text(safe_text(a.source_ip, 40, none="?"))
    return text


class EventsPane(FilterablePane):
    """Title, events table, failures summary and filter input."""

    ALLOW_MAXIMIZE = True
    can_focus = False
    FILTER_INPUT_ID = "events-filter"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.cluster_name: str | None = None

    def compose(self) -> ComposeResult:
        """Title, table, summary, filter."""
        yield Static("Events", classes="pane-title", id="events-title")
        yield EventsTable(id="events-table")
        yield Static("", id="events-summary")
        yield Input(placeholder=f"filter: {EVENT_FILTER.example}   (Esc closes)", id="events-filter")

    @property
    def table(self) -> EventsTable:
        """The events table."""
        return self.query_one(EventsTable)

    def show_snapshot(self, snap: ClusterSnapshot | None, *, name: str | None = None) -> None:
        """Render one cluster's events (switching cluster resets the table)."""
        reset = name != self.cluster_name
        self.cluster_name = name
        evs = snap.events if snap is not None else ()
        self.table.show(evs, reset=reset)
        summary = self.query_one("#events-summary", Static)
        summary.update(failures_text(snap) if snap is not None else Text(""))
        self._update_title()

    def _update_title(self) -> None:
        table = self.table
        title = Text()
        title.append("Events", style="bold")
        title.append(f"  {table.row_count} shown", style="dim")
        if table.event_filter.active:
            title.append(f" · filter '{table.event_filter.text}'", style="dim")
        self.query_one("#events-title", Static).update(title)

    def current_filter_text(self) -> str:
        """The text of the event filter in force."""
        return self.table.event_filter.text

    def set_filter(self, text: str) -> None:
        """Parse and apply an event filter (FilterError, a ValueError, when it is not valid)."""
        self.table.event_filter = parse_event_filter(text)
