"""What a PostgreSQL log message says about a login: its kind and the names, addresses and method in it.

The wording is PostgreSQL's own (12 to 18; src/backend/utils/init/postinit.c, libpq/auth.c,
libpq/hba.c, tcop/backend_startup.c, storage/lmgr/proc.c) plus RDS's `pam_authenticate failed`. Values are
written unquoted in `key=value` messages and inside double quotes in FATALs, never escaped: a name may hold
spaces, `=` or quotes. So the fields are read by position (the words PostgreSQL puts between them), never
by splitting on spaces, and a field a client chooses (`application_name`, written last) cannot stand in
for the user or database written before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pgiam_tui.model import EventKind

__all__ = ["MessageFacts", "classify", "session_seconds"]


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What one message says (None: it does not say)."""

    kind: EventKind
    user: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    ssl: dict[str, Any] | None = None
    method: str | None = None
    session_time: str | None = None


_OTHER = MessageFacts(EventKind.OTHER)

_RECEIVED_RE = re.compile(r"connection received: host=(?P<host>\S*)(?: port=(?P<port>\d{1,10}))?")
# user=… database=… application_name=… SSL enabled (…) GSS (…): each optional part after the user
_AUTHORIZED_RE = re.compile(
    r"(?:replication )?connection authorized: user=(?P<user>.*?)"
    r"(?: database=(?P<db>.*?))?(?: application_name=(?P<app>.*?))?"
    r"(?P<tls> SSL enabled \((?P<ssl>[^()]*)\))?(?: GSS \([^()]*\))?$",
    re.DOTALL,
)
_AUTHENTICATED_RE = re.compile(
    r'connection authenticated: (?:identity|user)="(?P<identity>.*)" method=(?P<method>\S+)', re.DOTALL
)
_DISCONNECTION_RE = re.compile(
    r"disconnection: session time: (?P<st>\d+:\d\d:\d\d(?:\.\d+)?) user=(?P<user>.*?) "
    r"database=(?P<db>.*?) host=(?P<host>\S*?)(?: port=(?P<port>\d{1,10}))?$",
    re.DOTALL,
)
# "<Method> authentication failed for user "<name>"" (libpq/auth.c auth_failed())
_AUTH_FAILED_RE = re.compile(r'(?P<method>[\w-]+) authentication failed for user "(?P<user>.*)"$', re.DOTALL)
_METHODS = {"gssapi": "gss", "certificate": "cert"}  # the rest: the word itself, lower case

# Login-refusing FATALs other than a refused credential: (message start, where the names are)
_HBA_RE = re.compile(
    r"(?:no pg_hba\.conf entry|pg_hba\.conf rejects (?:replication )?connection) for (?:replication )?"
    r'(?:connection from )?host "(?P<host>[^"]*)", user "(?P<user>.*?)"(?:, database "(?P<db>.*?)")?, ',
    re.DOTALL,
)
_ROLE_RE = re.compile(r'role "(?P<user>.*)" (?:is not permitted to log in|does not exist)$', re.DOTALL)
_ROLE_LIMIT_RE = re.compile(r'too many connections for role "(?P<user>.*)"$', re.DOTALL)
_DB_RE = re.compile(
    r'(?:database "(?P<db>.*)" (?:does not exist|is not currently accepting connections)'
    r'|too many connections for database "(?P<db2>.*)"'
    r'|permission denied for database "(?P<db3>.*)")$',
    re.DOTALL,
)
_REFUSAL_STARTS = (
    "remaining connection slots are reserved",
    "sorry, too many clients already",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "no PostgreSQL user name specified in startup packet",
    "unsupported frontend protocol",
    "canceling authentication due to timeout",
    "connection requires a valid client certificate",
)
_SSL_KEYS = ("protocol", "cipher", "compression")


def classify(level: str, msg: str) -> MessageFacts:
    """The facts of MSG (the text after `LEVEL:  ` and the SQLSTATE, continuation tabs removed)."""
    if level == "LOG":
        return _log(msg)
    if level == "FATAL":
        return _fatal(msg)
    return _OTHER


def _log(msg: str) -> MessageFacts:
    head = msg[:12]
    if head.startswith("connection r"):
        if msg.startswith("connection received: "):
            m = _RECEIVED_RE.match(msg)
            if m is not None:
                return MessageFacts(EventKind.RECEIVED, host=m.group("host"), port=_int(m.group("port")))
        elif msg.startswith("connection ready: "):
            return MessageFacts(EventKind.READY)
    elif head.startswith(("connection a", "replication ")):
        m = _AUTHORIZED_RE.match(msg)
        if m is not None:
            ssl = _ssl(m.group("ssl")) if m.group("tls") else {"enabled": False}
            return MessageFacts(EventKind.AUTHORIZED, user=m.group("user"), database=m.group("db"), ssl=ssl)
        a = _AUTHENTICATED_RE.match(msg)
        if a is not None:
            return MessageFacts(EventKind.AUTHENTICATED, method=a.group("method"))
    elif head.startswith("disconnectio"):
        d = _DISCONNECTION_RE.match(msg)
        if d is not None:
            return MessageFacts(
                EventKind.DISCONNECTED,
                user=d.group("user"),
                database=d.group("db"),
                host=d.group("host") or None,
                port=_int(d.group("port")),
                session_time=d.group("st"),
            )
    elif head.startswith("pam_authenti") and msg.startswith("pam_authenticate failed"):
        return MessageFacts(EventKind.AUTH_FAILED, method="pam")
    return _OTHER


def _fatal(msg: str) -> MessageFacts:
    m = _AUTH_FAILED_RE.search(msg)
    if m is not None and m.start() == 0:
        method = _METHODS.get(m.group("method").lower(), m.group("method").lower())
        return MessageFacts(EventKind.AUTH_FAILED, user=m.group("user"), method=method)
    h = _HBA_RE.match(msg)
    if h is not None:
        return MessageFacts(EventKind.REFUSED, user=h.group("user"), database=h.group("db"))
    for regex in (_ROLE_RE, _ROLE_LIMIT_RE):
        r = regex.match(msg)
        if r is not None:
            return MessageFacts(EventKind.REFUSED, user=r.group("user"))
    d = _DB_RE.match(msg)
    if d is not None:
        return MessageFacts(EventKind.REFUSED, database=d.group("db") or d.group("db2") or d.group("db3"))
    if msg.startswith(_REFUSAL_STARTS):
        return MessageFacts(EventKind.REFUSED)
    return _OTHER


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _ssl(body: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in body.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "bits":
            out[key] = int(value) if value.isdigit() and len(value) < 6 else value
        elif key in _SSL_KEYS:
            out[key] = value
    return out


def session_seconds(text: str | None) -> float | None:
    """`H:MM:SS.mmm` (a disconnection's session time) -> seconds."""
    if not text:
        return None
    h, _, rest = text.partition(":")
    m, _, s = rest.partition(":")
    try:
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None
