"""Is a role a member of rds_iam? Asked of the real server over its unix socket (trust), by the front door.

A tiny protocol client instead of psycopg on purpose: its socket is closed in a ``finally`` whatever happens.
psycopg's ``connect_timeout`` abandons the half-open libpq connection inside an exception/traceback cycle, so
when the server was stalled (SIGSTOP) the socket lived on until the garbage collector ran, and once the
server resumed, each one became an idle superuser session holding one of its ``max_connections`` slots.

Reference: PostgreSQL docs, "Frontend/Backend Protocol", "Message Formats" (StartupMessage, Parse, Bind,
Execute, Sync, DataRow, ReadyForQuery, Terminate).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from pgiam_sandbox import pgwire

__all__ = ["MEMBERSHIP_SQL", "MembershipError", "is_member"]

MEMBERSHIP_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_roles r, pg_roles i WHERE r.rolname = $1"
    " AND i.rolname = 'rds_iam' AND pg_has_role(r.oid, i.oid, 'MEMBER'))"
)


class MembershipError(Exception):
    """The server refused or answered something unexpected (str() is safe to log)."""


def _cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def _query_messages(user: str) -> bytes:
    value = user.encode()
    parse = pgwire.message(b"P", _cstr("") + _cstr(MEMBERSHIP_SQL) + struct.pack("!h", 0))
    bind = pgwire.message(
        b"B",
        _cstr("")
        + _cstr("")
        + struct.pack("!hh", 0, 1)
        + struct.pack("!i", len(value))
        + value
        # no result format codes: text
        + struct.pack("!h", 0),
    )
    execute = pgwire.message(b"E", _cstr("") + struct.pack("!i", 0))
    return parse + bind + execute + pgwire.message(b"S", b"")


async def _until_ready(reader: asyncio.StreamReader) -> list[bytes]:
    """Read to ReadyForQuery; the DataRow bodies seen on the way. MembershipError on ErrorResponse."""
    rows: list[bytes] = []
    error: dict[str, str] | None = None
    while True:
        kind, body = await pgwire.read_message(reader)
        if kind == b"E":
            error = pgwire.parse_error(body)
        elif kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
            raise MembershipError("the server asked the front door's admin user for a password")
        elif kind == b"D":
            rows.append(body)
        elif kind == b"Z":
            if error is not None:
                raise MembershipError(f"{error.get('C', '?')}: {error.get('M', '')}")
            return rows
        if error is not None and kind == b"E" and error.get("S") in ("FATAL", "PANIC"):
            raise MembershipError(f"{error.get('C', '?')}: {error.get('M', '')}")


def _boolean(row: bytes) -> bool:
    (columns,) = struct.unpack("!h", row[:2])
    (length,) = struct.unpack("!i", row[2:6])
    if columns != 1 or length < 0:
        raise MembershipError("unexpected answer to the rds_iam membership query")
    return row[6 : 6 + length] == b"t"


async def is_member(
    socket_path: str, admin_user: str, database: str, user: str, *, timeout: float = 5.0
) -> bool:
    """Whether ``user`` is a member (direct or not) of rds_iam; TimeoutError, OSError or MembershipError else.

    One short session as ``admin_user`` (application_name ``rds-frontdoor``) that is always closed on return,
    on error and on timeout alike.
    """
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            params = {"user": admin_user, "database": database, "application_name": "rds-frontdoor"}
            writer.write(pgwire.startup_message(params))
            await _until_ready(reader)
            writer.write(_query_messages(user))
            rows = await _until_ready(reader)
            writer.write(pgwire.message(b"X", b""))  # Terminate: the server logs a clean disconnection
            with contextlib.suppress(ConnectionError):
                await writer.drain()
    finally:
        if writer is not None:
            writer.close()
    if len(rows) != 1:
        raise MembershipError("unexpected answer to the rds_iam membership query")
    return _boolean(rows[0])
