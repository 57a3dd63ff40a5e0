"""Activity: the rows of one pg_stat_activity query per instance per round -> immutable SessionRows.

Rows of sessions we may not see (no pg_monitor) come back with `<insufficient privilege>` as query text and
NULLs elsewhere; they are kept (they are real sessions) and reported once as a Finding with the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgiam_tui.fixquote import sql_ident
from pgiam_tui.model import Finding, ServerHealth, SessionRow
from pgiam_tui.vocabulary import FindingCode

INSUFFICIENT_PRIVILEGE = "<insufficient privilege>"

# column order of db/sql/activity_post_*.sql
COLUMNS = (
    "pid",
    "datname",
    "usename",
    "application_name",
    "client_addr",
    "client_hostname",
    "client_port",
    "backend_start",
    "xact_start",
    "query_start",
    "state_change",
    "state",
    "wait_event_type",
    "wait_event",
    "backend_type",
    "query_id",
    "query",
    "blocked_by",
    "query_truncated",
    "duration_s",
    "xact_duration_s",
)


@dataclass(frozen=True, slots=True)
class ActivityResult:
    """The sessions of one instance after one round, with what the round found wrong."""

    instance: str
    rows: tuple[SessionRow, ...]
    findings: tuple[Finding, ...] = ()
    health: ServerHealth | None = None  # read with the rows (collect/instance_round.py)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_dt(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_rows(instance: str, rows: Iterable[Sequence[Any]]) -> tuple[SessionRow, ...]:
    """Rows of the activity query (COLUMNS order) -> SessionRows tagged with INSTANCE.

    Kept free of I/O so it can be benchmarked alone (client CPU per 1,000 sessions).
    """
    out: list[SessionRow] = []
    append = out.append
    for r in rows:
        blocked = r[17]
        append(
            SessionRow(
                instance=instance,
                pid=int(r[0]),
                datname=r[1],
                usename=r[2],
                application_name=r[3],
                client_addr=_opt_str(r[4]),
                client_hostname=r[5],
                client_port=_opt_int(r[6]),
                backend_start=_opt_dt(r[7]),
                xact_start=_opt_dt(r[8]),
                query_start=_opt_dt(r[9]),
                state_change=_opt_dt(r[10]),
                state=r[11],
                wait_event_type=r[12],
                wait_event=r[13],
                backend_type=r[14],
                query_id=_opt_int(r[15]),
                query=r[16],
                blocked_by=tuple(int(p) for p in blocked) if blocked else (),
                query_truncated=bool(r[18]),
                duration_s=_opt_float(r[19]),
                xact_duration_s=_opt_float(r[20]),
            )
        )
    return tuple(out)


def privilege_findings(instance: str, user: str | None, rows: Sequence[SessionRow]) -> tuple[Finding, ...]:
    """An `insufficient_privilege` Finding when some sessions are hidden from the monitoring user."""
    hidden = sum(1 for r in rows if r.query == INSUFFICIENT_PRIVILEGE)
    if not hidden:
        return ()
    who = user or "the monitoring user"
    return (
        Finding(
            severity="warning",
            code=FindingCode.INSUFFICIENT_PRIVILEGE,
            message=f"{instance}: {hidden} of {len(rows)} sessions show <insufficient privilege> to {who}",
            fix=f"GRANT pg_monitor TO {sql_ident(user) if user else '<the monitoring user>'};",
            user=user,
        ),
    )


def activity_result(instance: str, user: str | None, raw: Iterable[Sequence[Any]]) -> ActivityResult:
    """The activity query's rows of INSTANCE, read as USER (the monitoring user) -> its ActivityResult."""
    rows = parse_rows(instance, raw)
    return ActivityResult(instance, rows, privilege_findings(instance, user, rows))
