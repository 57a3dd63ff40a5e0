"""One long-lived monitoring session per instance, with a fresh IAM token on every (re)connect.

AWS throttles new IAM-auth connections, and a token is only checked at login (a session outlives its token),
so we keep one `psycopg.AsyncConnection` per watched instance and only reconnect when it is lost — each time
with a *fresh* token, because the old one may have expired. Reconnects are lazy and paced: the caller's next
`fetch()` tries again once the backoff delay (exponential, with jitter) has passed, so a dead instance costs a
failed attempt now and then, never a busy loop. Every attempt is reported as a client ConnEvent, and `.status`
tells the UI whether the session is connected, reconnecting (attempt n, next try at) or failed (reason).

Nothing here may ever carry the token: psycopg's messages can echo conninfo, so every message is scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, LiteralString

import psycopg
from psycopg import pq

from pgiam_tui.advice import check_advice
from pgiam_tui.db.conninfo import ConnTarget, connect_kwargs, one_line, scrub
from pgiam_tui.db.text import use_tolerant_text
from pgiam_tui.errors import PgiamError
from pgiam_tui.fixquote import shell_word, sql_ident
from pgiam_tui.model import ConnectionStatus, ConnEvent, ConnState, EventKind

TUPLES_OK = pq.ExecStatus.TUPLES_OK
Rows = list[tuple[Any, ...]]
Clock = Callable[[], datetime]
EventSink = Callable[[ConnEvent], None]


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Credential:
    """A password for one login: the IAM token (with its expiry) or a keyring password. Never printed."""

    password: str = field(repr=False)
    expires_at: datetime | None = None


CredentialProvider = Callable[[], Awaitable[Credential]]


class ConnectError(PgiamError):
    """A failed (re)connect or lost session: one token-free line, the failing step and a hint."""

    default_step: ClassVar[str] = "connect"

    def __init__(self, message: str, *, step: str = "connect", hint: str = "", sqlstate: str | None = None):
        super().__init__(message, hint=hint, step=step)
        self.sqlstate = sqlstate


class QueryError(PgiamError):
    """A monitoring query failed while the session itself stayed usable (e.g. statement_timeout)."""

    default_step: ClassVar[str] = "query"

    def __init__(self, message: str, *, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a pipelined round trip (InstanceConnection.fetch_pipelined)."""

    sql: LiteralString | bytes
    params: Sequence[Any] | None = None
    binary: bool = False  # results in binary format (see fetch)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt n (1-based): base * factor**(n-1), capped, times a jitter in [0.5, 1]."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ATTEMPT; the jitter spreads many clients' retries apart."""
        raw = min(self.cap_s, self.base_s * self.factor ** max(0, attempt - 1))
        return raw * (rng or random).uniform(0.5, 1.0)


# libpq reports login failures as text without the SQLSTATE: recognise the server's wording
_LOGIN_SQLSTATES = (
    ("pam authentication failed", "28000"),
    ("password authentication failed", "28P01"),
    ("no pg_hba.conf entry", "28000"),
    ("does not exist", "3D000"),  # 'database "x" does not exist' (role errors say 'role "x" does not exist')
    ("the database system is starting up", "57P03"),
    ("the database system is shutting down", "57P03"),
    ("too many connections", "53300"),
)


def login_sqlstate(message: str) -> str | None:
    """The SQLSTATE a failed login most likely carried, from libpq's message (None when unknown)."""
    low = message.lower()
    if 'role "' in low and "does not exist" in low:
        return "28000"
    for needle, code in _LOGIN_SQLSTATES:
        if needle in low:
            return code
    return None


def _hint_for(sqlstate: str | None, message: str, target: ConnTarget) -> str:
    """A fix hint for a failed login, from the SQLSTATE, libpq's message and how this cluster logs in."""
    low = message.lower()
    cluster = target.cluster
    if sqlstate == "28000" or "pam authentication failed" in low:
        return (
            "the IAM login was refused (token, IAM policy, or IAM auth off on the cluster): "
            f"{check_advice(cluster)} to read AWS's own reason"
        )
    if sqlstate == "28P01" or "password authentication failed" in low:
        if target.auth == "iam":
            return (
                f"{target.user} is not a member of rds_iam, so the server checked the token as a password: "
                f"GRANT rds_iam TO {sql_ident(target.user)};"
            )
        return (
            f"the keyring password was refused: pgiam-tui password set {shell_word(cluster)} "
            "(a member of rds_iam cannot log in with a password at all)"
        )
    if sqlstate == "57P03":
        return "the server is starting or stopping (restart, maintenance, failover): retried with backoff"
    if sqlstate == "53300":
        return "the server has no connection slot left for this user: retried with backoff"
    if sqlstate == "3D000":
        return "the database does not exist: set `database` for this cluster in profiles.toml"
    if "certificate" in low or "ssl" in low:
        return "TLS failed: check sslrootcert (the RDS CA bundle) and that host is the endpoint name"
    if "timeout" in low or "timed out" in low:
        return "no answer in time: check the endpoint, security groups, or the tunnel (hostaddr / local_port)"
    if "refused" in low:
        return "connection refused: is the tunnel (hostaddr / local_port) up and the port right?"
    return f"{check_advice(cluster)} for a step-by-step diagnosis"


async def open_session(kwargs: dict[str, Any]) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """psycopg.AsyncConnection.connect(**KWARGS), closing at once whatever a failed attempt leaves open.

    When libpq's connect_timeout expires (or the attempt is cancelled), psycopg abandons the half-open libpq
    connection in a frame of its connect, which the exception's traceback holds in a reference cycle: its
    socket stayed open until the garbage collector ran, and meanwhile the server (or RDS's proxy) finished
    that login and kept an idle session for it. Clearing those finished frames frees the connection now.
    """
    try:
        return await psycopg.AsyncConnection.connect(**kwargs)
    except BaseException as exc:
        release_abandoned(exc)
        raise


def release_abandoned(exc: BaseException) -> None:
    """Free the libpq connection a failed connect left behind in EXC (and the exceptions it chains)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, psycopg.Error):
            pgconn = current.pgconn  # "connection is bad" keeps the unfinished connection itself
            if pgconn is not None:
                pgconn.finish()
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)  # frames still running are skipped
        pending += [current.__cause__, current.__context__]


class InstanceConnection:
    """The monitoring session to one instance: lazy (re)connect with backoff, read-only queries, status.

    `credentials` is awaited before every connect attempt and must return a fresh Credential (see
    `keyring_password_provider` here, or aws/db_credentials.py for IAM tokens: db/ never imports aws/).
    `on_event` receives a client ConnEvent per attempt.
    Statements are serialised on the one connection (a psycopg connection runs one query at a time).
    """

    def __init__(
        self,
        target: ConnTarget,
        credentials: CredentialProvider,
        *,
        on_event: EventSink | None = None,
        backoff: Backoff | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._rng = rng or random.Random()  # not the global state: apps and tests share it
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock = asyncio.Lock()
        self._failures = 0  # consecutive failed attempts
        self._ever_connected = False
        self._next_try_at: datetime | None = None
        self._status = ConnectionStatus(state="connecting", since=clock())
        self._closed = False
        self.server_version_num: int | None = None
        self.backend_pid: int | None = None
        self.connects = 0  # successful logins so far (each with its own fresh credential)
        self.round_trips = 0  # times a statement (or a pipeline of them) waited on the server

    # -- observable state -------------------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        """The current state (connecting / connected / reconnecting / failed / stopped), never a secret."""
        return self._status

    @property
    def connected(self) -> bool:
        """Whether a session is open right now (as far as we know without a round trip)."""
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    @property
    def server_version(self) -> str | None:
        """The server version as "15.4" (from server_version_num), once connected."""
        num = self.server_version_num
        if num is None:
            return None
        return f"{num // 10000}.{num % 10000}" if num >= 100000 else f"{num // 10000}.{num // 100 % 100}"

    # -- public operations ------------------------------------------------------------------------

    async def fetch(
        self, sql: LiteralString | bytes, params: Sequence[Any] | None = None, *, binary: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run one read-only statement and return its rows; connects or reconnects first when needed.

        `binary` asks for results in binary format (smaller on the wire, cheaper to decode: the activity
        query uses it; every column type it returns has a binary loader).

        Raises ConnectError when no session can be had (now, or still within the backoff delay) and
        QueryError when the statement failed on a healthy session.
        """
        async with self._lock:
            conn = await self._ensure()
            try:
                self.round_trips += 1
                return await self._run(conn, sql, params, binary)
            except psycopg.Error as exc:
                if not self._is_lost(conn):
                    raise QueryError(self._scrubbed(exc), sqlstate=exc.sqlstate) from None
                # the server dropped us (terminated backend, restart, failover): retry once at once with a
                # fresh token — a monitoring query is read-only, so running it again is harmless
                await self._lost(self._scrubbed(exc))
            conn = await self._ensure()
            try:
                self.round_trips += 1
                return await self._run(conn, sql, params, binary)
            except psycopg.Error as exc:
                if self._is_lost(conn):
                    await self._lost(self._scrubbed(exc))
                    raise ConnectError(self._status.reason or "connection lost", step="session") from None
                raise QueryError(self._scrubbed(exc), sqlstate=exc.sqlstate) from None

    async def fetch_pipelined(self, statements: Sequence[Statement]) -> list[Rows | QueryError]:
        """Run STATEMENTS in one network round trip (psycopg's pipeline mode: all sent, then one Sync) and
        return each one's rows, or the QueryError it failed with (statements after a failed one fail too:
        they share the implicit transaction; put the one that matters first).

        Reconnects as fetch() does, and retries once at once when the server dropped the session. Raises
        ConnectError when no session can be had.
        """
        async with self._lock:
            for attempt in (1, 2):
                conn = await self._ensure()
                try:
                    return await self._run_pipelined(conn, statements)
                except psycopg.Error as exc:
                    if not self._is_lost(conn):
                        raise QueryError(self._scrubbed(exc), sqlstate=exc.sqlstate) from None
                    await self._lost(self._scrubbed(exc))
                    if attempt == 2:
                        raise ConnectError(self._status.reason or "connection lost", step="session") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def ready(self) -> None:
        """Make sure a session is open, reconnecting if due; raises ConnectError (respects the backoff)."""
        async with self._lock:
            await self._ensure()

    async def connect(self) -> None:
        """Open the session now if it is not open (ignores the backoff delay); raises ConnectError."""
        async with self._lock:
            if not self.connected:
                await self._attempt()

    def retry_now(self) -> None:
        """Let the next fetch try to connect at once, without waiting out the backoff delay (`r`)."""
        self._next_try_at = None

    async def discard(self, reason: str) -> None:
        """Drop the session (e.g. after a round timed out mid-query); the next fetch reconnects."""
        await self._lost(reason)

    async def close(self) -> None:
        """Close the session for good; status becomes stopped."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        self._status = ConnectionStatus(state="stopped", since=self._clock())

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    async def _run(
        conn: psycopg.AsyncConnection[tuple[Any, ...]],
        sql: LiteralString | bytes,
        params: Sequence[Any] | None,
        binary: bool,
    ) -> list[tuple[Any, ...]]:
        cur = await conn.execute(sql, params, binary=binary)
        # the result status, not cur.description: that would build Column objects on every round
        result = cur.pgresult
        return await cur.fetchall() if result is not None and result.status == TUPLES_OK else []

    async def _run_pipelined(
        self, conn: psycopg.AsyncConnection[tuple[Any, ...]], statements: Sequence[Statement]
    ) -> list[Rows | QueryError]:
        self.round_trips += 1
        cursors = []
        failure: psycopg.Error | None = None
        try:
            # leaving the block sends the one Sync and waits for every result: the one round trip
            async with conn.pipeline():
                for st in statements:
                    cur = conn.cursor(binary=st.binary)
                    await cur.execute(st.sql, st.params)
                    cursors.append(cur)
        except psycopg.Error as exc:
            if self._is_lost(conn):
                raise
            failure = exc  # a statement failed: those before it have their results all the same
        out: list[Rows | QueryError] = []
        for cur in cursors:
            result = cur.pgresult
            if result is not None and result.status == TUPLES_OK:
                out.append(await cur.fetchall())
            elif result is not None and result.status == pq.ExecStatus.COMMAND_OK:
                out.append([])
            else:
                reason = self._scrubbed(failure) if failure is not None else "no result"
                out.append(QueryError(reason, sqlstate=getattr(failure, "sqlstate", None)))
        out += [QueryError("not sent", sqlstate=None)] * (len(statements) - len(cursors))
        return out

    @staticmethod
    def _is_lost(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> bool:
        return conn.closed or conn.broken

    def _scrubbed(self, exc: BaseException) -> str:
        return one_line(scrub(str(exc) or type(exc).__name__))

    async def _ensure(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._closed:
            raise ConnectError("connection closed", step="connect")
        if self._conn is not None and not self._is_lost(self._conn):
            return self._conn
        if self._next_try_at is not None and self._clock() < self._next_try_at:
            st = self._status
            raise ConnectError(
                f"{st.reason or 'not connected'} (next try at {self._next_try_at:%H:%M:%S})",
                step="connect",
                hint=_hint_for(None, st.reason or "", self.target),
            )
        await self._attempt()
        assert self._conn is not None
        return self._conn

    async def _lost(self, reason: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()
        self.backend_pid = None
        # the first reconnect after a loss is immediate; later ones back off
        self._next_try_at = None
        self._status = ConnectionStatus(
            state="reconnecting", attempt=1, reason=reason, since=self._clock(), next_try_at=self._clock()
        )

    async def _attempt(self) -> None:
        """One connect attempt with a fresh credential; on failure schedule the next one and raise."""
        now = self._clock()
        attempt = self._failures + 1
        if self._ever_connected or self._failures:
            self._status = ConnectionStatus(
                state="reconnecting", attempt=attempt, reason=self._status.reason, since=now, next_try_at=now
            )
        else:
            self._status = ConnectionStatus(state="connecting", attempt=attempt, since=now)
        secret: str | None = None
        step = "token" if self.target.auth == "iam" else "password"
        try:
            timeout = self.target.connect_timeout_s + 10.0  # bounds boto3 credential work and DNS too
            async with asyncio.timeout(timeout):
                cred = await self._credentials()
                secret = cred.password
                step = "connect"
                kwargs = await connect_kwargs(self.target, cred.password)
                conn = await open_session(kwargs)
        except Exception as exc:  # every failure becomes a scrubbed, classified ConnectError
            self._fail(exc, step, secret)
            raise self._last_error from None
        use_tolerant_text(conn)  # one undecodable query text must not blank the whole instance
        self._conn = conn
        self._failures = 0
        self._ever_connected = True
        self._next_try_at = None
        self.connects += 1
        self.server_version_num = conn.info.server_version
        self.backend_pid = conn.info.backend_pid
        self._status = ConnectionStatus(
            state="connected", since=self._clock(), token_expires_at=cred.expires_at if self._is_iam else None
        )
        self._emit(
            "client_connect",
            f"connected to {self.target.instance_id} as {self.target.user}"
            + (
                f", token valid until {cred.expires_at:%H:%M:%S} UTC"
                if cred.expires_at and self._is_iam
                else ""
            ),
            pid=conn.info.backend_pid,
            ssl={"enabled": bool(conn.pgconn.ssl_in_use)},
        )

    @property
    def _is_iam(self) -> bool:
        return self.target.auth == "iam"

    def _fail(self, exc: BaseException, step: str, secret: str | None) -> None:
        self._failures += 1
        hint = getattr(exc, "hint", None)
        if isinstance(exc, TimeoutError):
            message = f"no answer within {self.target.connect_timeout_s + 10.0:.0f} s"
        else:
            message = one_line(scrub(str(exc) or type(exc).__name__, secret))
        sqlstate = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        if sqlstate is None and isinstance(exc, psycopg.OperationalError):
            sqlstate = login_sqlstate(message)
        if step == "token":
            step = getattr(exc, "step", None) or "credentials"
        if not isinstance(hint, str) or not hint:
            hint = _hint_for(sqlstate, message, self.target)
        delay = self._backoff.delay(self._failures, self._rng)
        now = self._clock()
        self._next_try_at = now + timedelta(seconds=delay)
        # "reconnecting" while we had a session before and the cause looks transient; "failed" otherwise
        auth_like = sqlstate is not None and (sqlstate.startswith("28") or sqlstate == "3D000")
        state: ConnState = "reconnecting" if self._ever_connected and not auth_like else "failed"
        self._status = ConnectionStatus(
            state=state, attempt=self._failures, next_try_at=self._next_try_at, reason=message, since=now
        )
        self._last_error = ConnectError(message, step=step, hint=hint, sqlstate=sqlstate)
        self._emit("client_failed", message)

    def _emit(
        self, kind: str, message: str, *, pid: int | None = None, ssl: dict[str, Any] | None = None
    ) -> None:
        if self._on_event is None:
            return
        event = ConnEvent(
            time=self._clock(),
            kind=EventKind.CLIENT_CONNECT if kind == "client_connect" else EventKind.CLIENT_FAILED,
            user=self.target.user,
            database=self.target.database,
            host=self.target.endpoint,
            port=self.target.port,
            pid=pid,
            ssl=ssl,
            source="client",
            message=message,
            instance=self.target.instance_id,
        )
        with contextlib.suppress(Exception):  # a broken listener must not break the connection
            self._on_event(event)

    _last_error: ConnectError = ConnectError("not connected")


def keyring_password_provider(cluster: str) -> CredentialProvider:
    """A CredentialProvider reading the cluster's password from the OS keyring (`pgiam-tui password set`)."""

    async def provide() -> Credential:
        from pgiam_tui import secrets

        password = await asyncio.to_thread(secrets.get_password, cluster)
        if not password:
            raise ConnectError(
                f"no password stored for {cluster}",
                step="password",
                hint=f"store it with `pgiam-tui password set {cluster}`",
            )
        return Credential(password)

    return provide
