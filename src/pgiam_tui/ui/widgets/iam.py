"""The IAM pane: the cluster's IAM flag and resource id, database users vs principals, findings, counters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from pgiam_tui.model import ClusterSnapshot, DbUser, Finding, IamMetrics, IamSnapshot
from pgiam_tui.ui.render import SortCell, cell, fmt_ago, safe_text
from pgiam_tui.ui.widgets.cached_table import CachedCellTable
from pgiam_tui.ui.widgets.text_line import update_static

SEVERITY_STYLES = {"critical": "bold white on red", "warning": "bold yellow", "info": "cyan"}
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_BARS = "▁▂▃▄▅▆▇█"
METRIC_PREFIX = "IamDbAuthConnection"
# Counters in the order a DBA reads them; names are the CloudWatch metric names minus the prefix.
METRIC_ORDER = (
    "Requests",
    "Success",
    "Failure",
    "FailureInvalidToken",
    "FailureInsufficientPermissions",
    "FailureThrottling",
    "FailureServerError",
)


def sparkline(values: Sequence[float]) -> str:
    """Block-character sparkline (empty when no data)."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1)))] for v in values)


_METRIC_LABELS = {
    "Requests": "requests",
    "Success": "successes",
    "Failure": "failures",
    "FailureInvalidToken": "  invalid token",
    "FailureInsufficientPermissions": "  not authorized",
    "FailureThrottling": "  throttled",
    "FailureServerError": "  server error",
}


def _metric_name(key: str) -> str:
    """A counter's name in METRIC_ORDER's form, whichever form the collector used.

    aws/metrics.py keys counters in snake case ("failure_invalid_token"); CloudWatch names them
    "IamDbAuthConnectionFailureInvalidToken". Both (and the bare "FailureInvalidToken") map to one name.
    """
    if key.startswith(METRIC_PREFIX):
        return key[len(METRIC_PREFIX) :]
    if "_" in key or key.islower():
        return "".join(part.capitalize() for part in key.split("_"))
    return key


def metrics_text(metrics: Sequence[IamMetrics]) -> Text:
    """Last hour's IamDbAuthConnection* counters: totals summed over instances, sparkline per counter."""
    text = Text()
    text.append("IAM auth connections, last hour", style="bold")
    if not metrics:
        text.append(": no CloudWatch data", style="dim")
        return text
    totals: dict[str, float] = {}
    series: dict[str, list[float]] = {}
    for m in metrics:
        for k, v in m.totals.items():
            name = _metric_name(k)
            totals[name] = totals.get(name, 0.0) + v
        for k, vals in m.series.items():
            name = _metric_name(k)
            acc = series.setdefault(name, [0.0] * len(vals))
            if len(acc) < len(vals):
                acc.extend([0.0] * (len(vals) - len(acc)))
            for i, v in enumerate(vals):
                acc[i] += v
    names = [n for n in METRIC_ORDER if n in totals or n in series]
    names += sorted(n for n in set(totals) | set(series) if n not in METRIC_ORDER)
    if not names:
        # CloudWatch answered, with no datapoints: RDS publishes none while nobody logs in with IAM.
        text.append(": no datapoints (no IAM logins this hour)", style="dim")
    for name in names:
        total = totals.get(name, sum(series.get(name, [])))
        style = "red" if name.startswith("Failure") and total > 0 else ""
        text.append(f"\n  {_METRIC_LABELS.get(name, name):<18}", style="dim")
        text.append(f"{total:>7.0f} ", style=style or "bold")
        text.append(sparkline(series.get(name, [])), style=style or "green")
    return text


def finding_text(f: Finding, *, with_fix: bool = True) -> Text:
    """'[WARN] code message' with the fix on the next line."""
    text = Text()
    text.append(f" {f.severity.upper():<8}", style=SEVERITY_STYLES.get(f.severity, ""))
    text.append(" ")
    text.append(f.code, style="bold")
    if f.user:
        text.append(" (")
        text.append_text(safe_text(f.user, 32))
        text.append(")")
    text.append(" ")
    text.append_text(safe_text(f.message, multiline=True))
    if with_fix and f.fix:
        text.append("\n          fix: ", style="yellow")
        text.append_text(safe_text(f.fix, multiline=True))
    return text


def all_findings(iam: IamSnapshot | None, snap: ClusterSnapshot) -> list[Finding]:
    """Cluster findings, IAM findings and per-user findings, by severity then code."""
    found: list[Finding] = list(snap.findings)
    if iam is not None:
        found += list(iam.findings)
        for u in iam.users:
            found += [f for f in u.findings if f not in found]
    unique: list[Finding] = []
    for f in found:
        if f not in unique:
            unique.append(f)
    return sorted(unique, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.code, f.user or ""))


def header_text(snap: ClusterSnapshot, iam: IamSnapshot | None) -> Text:
    """IAM flag and resource id."""
    text = Text()
    text.append("IAM auth ", style="bold")
    if iam is None or iam.iam_auth_enabled is None:
        text.append("unknown", style="dim")
    elif iam.iam_auth_enabled:
        text.append("enabled", style="bold green")
    else:
        text.append("DISABLED", style="bold white on red")
    text.append("  resource ", style="dim")
    text.append_text(safe_text(iam.resource_id if iam else None, 40, none="?"))
    if iam is not None and not iam.iam_readable:
        text.append("  (IAM not readable: principals unknown)", style="yellow")
    return text


USER_COLUMNS = (
    ("user", 14),
    ("iam", 3),
    ("login", 5),
    ("member of", 18),
    ("principals", 30),
    ("last use", 10),
)
WIDENING = ("member of", "principals")
MAX_CELL = 120  # beyond this a cell is cut (the detail, Enter, has everything)


def user_cells(u: DbUser, now: datetime) -> tuple[SortCell, ...]:
    """One database user row."""
    principals = ", ".join(
        g.principal_arn.rsplit("/", 1)[-1] + ("*" if g.conditional else "") for g in u.iam_principals
    )
    last = max((g.last_used for g in u.iam_principals if g.last_used), default=None)
    worst = min((SEVERITY_ORDER.get(f.severity, 9) for f in u.findings), default=9)
    style = {0: "red", 1: "yellow"}.get(worst, "")
    return (
        cell(u.name, style=style, max_len=14),
        cell("yes" if u.rds_iam else "no", style="green" if u.rds_iam else "dim"),
        cell("yes" if u.can_login else "no"),
        cell(", ".join(u.member_of), max_len=MAX_CELL),
        cell(principals or ("—" if u.rds_iam else ""), max_len=MAX_CELL),
        # Grant.last_used is None both when Access Advisor found no use and when it could not be asked
        # (moto lacks it; accounts may deny it): the snapshot cannot tell these apart, so no "never".
        cell(
            (fmt_ago(last, now) if last else "unknown") if u.iam_principals else "",
            (last.timestamp() if last else 0.0,),
            style="" if last else "dim",
        ),
    )


class IamPane(Vertical):
    """Header, users table, findings and counters (the last two in one scrolling text)."""

    ALLOW_MAXIMIZE = True
    can_focus = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.cluster_name: str | None = None
        self._shown_users: dict[str, tuple[SortCell, ...]] = {}
        self._snap: ClusterSnapshot | None = None
        self._now = datetime.now(UTC)

    def compose(self) -> ComposeResult:
        """Title, users, findings + metrics."""
        yield Static("IAM", classes="pane-title", id="iam-title")
        yield CachedCellTable[SortCell](id="iam-users", cursor_type="row")
        with VerticalScroll(id="iam-scroll"):
            yield Static("", id="iam-findings")

    def on_mount(self) -> None:
        """Columns at their least widths; `member of` and `principals` widen to what they hold."""
        table = self.query_one("#iam-users", DataTable)
        for name, width in USER_COLUMNS:
            table.add_column(name, width=width, key=name)

    def _fit_columns(self, table: DataTable[SortCell], rows: Iterable[tuple[SortCell, ...]]) -> None:
        """Widen `member of` and `principals` to their longest cell (never cut mid-word beside blank
        columns); past the pane's width the table scrolls sideways instead."""
        rows = list(rows)
        changed = False
        for index, (name, least) in enumerate(USER_COLUMNS):
            if name not in WIDENING:
                continue
            wanted = max([least, *(len(r[index].plain) for r in rows)])
            column = table.columns[ColumnKey(name)]
            if column.width != wanted:
                column.width = wanted
                changed = True
        if changed:
            table.refresh(layout=True)
            table._require_update_dimensions = True  # Textual re-measures columns on the next render

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a user: its detail (principals, the policy granting each, findings, last use)."""
        event.stop()
        snap = self._snap
        iam = snap.iam if snap is not None else None
        if snap is None or iam is None:
            return
        user = next((u for u in iam.users if u.name == event.row_key.value), None)
        if user is not None:
            from pgiam_tui.ui.screens.iam_detail import IamUserScreen

            self.app.push_screen(IamUserScreen(snap.name, user, self._now, iam_readable=iam.iam_readable))

    def show_snapshot(self, snap: ClusterSnapshot | None, now: datetime, *, name: str | None = None) -> None:
        """Render one cluster's IAM mapping (users diffed by name)."""
        table: DataTable[SortCell] = self.query_one("#iam-users", DataTable)
        if name != self.cluster_name:
            table.clear()
            self._shown_users.clear()
            self.cluster_name = name
        title = self.query_one("#iam-title", Static)
        body = self.query_one("#iam-findings", Static)
        iam = snap.iam if snap is not None else None
        if snap is None:
            update_static(title, Text("IAM", style="bold"))
            update_static(body, Text(""))
            return
        update_static(title, header_text(snap, iam))  # starts with "IAM auth": no separate "IAM" word
        users = {u.name: user_cells(u, now) for u in (iam.users if iam else ())}
        with self.app.batch_update():
            for key in [k for k in self._shown_users if k not in users]:
                table.remove_row(key)
                del self._shown_users[key]
            for key, cells in users.items():
                old = self._shown_users.get(key)
                if old is None:
                    table.add_row(*cells, key=key)
                else:
                    for (col, _), before, after in zip(USER_COLUMNS, old, cells, strict=True):
                        if before.plain != after.plain or before.style != after.style:
                            table.update_cell(key, col, after)
                self._shown_users[key] = cells
        self._snap = snap
        self._now = now
        self._fit_columns(table, users.values())
        text = Text()
        findings = all_findings(iam, snap)
        if iam is None and not findings:
            # nothing was read (credentials or discovery failed): zero findings would be a false all-clear
            text.append("Findings: not read", style="bold yellow")
            if snap.error is not None:
                text.append(f" ({snap.error.step} failed)", style="dim")
        else:
            text.append(f"Findings ({len(findings)})", style="bold")
        if not findings and iam is not None:
            text.append(": none", style="dim")
        for f in findings:
            text.append("\n")
            text.append_text(finding_text(f))
        text.append("\n")
        text.append_text(metrics_text(iam.metrics if iam else ()))
        update_static(body, text)
