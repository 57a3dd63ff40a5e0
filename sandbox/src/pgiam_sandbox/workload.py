"""Background sessions that make the sandbox worth watching.

Per Aurora cluster, over IAM tokens through the front doors (as an application on EC2 would connect):

- ``oltp-app`` on the writer as ``oltp_rw_user``: a small read/write transaction every couple of seconds;
- ``oltp-app`` on the reader as ``oltp_ro_user``: a couple of reads every couple of seconds;
- ``lock-holder`` on the writer: ``UPDATE pgdemo.products ... WHERE product_no = 1`` then idle in transaction,
  with two ``oltp-app`` sessions blocked behind it on the same row; re-established when killed;
- ``report-job`` on the reader (writer if none): a long query (``pg_sleep``), restarted when it ends;
- ``batch-job``: a failed IAM login every few seconds (a token of the wrong role, a garbled token, and once
  one is older than 15 minutes, a stale token), so auth-failure events and iam-db-auth-error lines appear.

The RDS for PostgreSQL instance gets only the OLTP writer session. The writes are net-zero (an inserted order
is deleted in the same transaction, updates keep values), so the seeded rows stay as seed.sql made them;
note that product 1 is row-locked by the lock holder for as long as the workload runs.

Threads only, a few statements per second in total (2 cores). ``stop()`` returns within ~2 s: the lock
holder rolls back (which releases the blocked sessions) and queries still running are cancelled; a session
caught in the middle of logging in (a connect cannot be interrupted) ends when that login completes or fails.

Use from the sandbox: ``Workload.from_sandbox(sandbox)`` (or ``Workload(sandbox)``); without front doors,
tests pass explicit ``WorkloadTarget``s and a ``connect`` override (e.g. straight to a LocalPostgres socket).
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pgiam_sandbox.workload_targets import (
    RO_PROFILE,
    RW_PROFILE,
    TOKEN_LIFETIME,
    ConnectFn,
    SandboxLike,
    SessionFor,
    TokenMaker,
    WorkloadTarget,
    garble_token,
    targets_from_sandbox,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
# Our own generator: the workload's threads run beside tests and apps in the same process, and drawing from
# the global `random` state there disturbs them (hypothesis, for one, flags it).
_rng = random.Random()


def _cancel_quietly(conn: psycopg.Connection[Any], timeout: float) -> None:
    with contextlib.suppress(Exception):
        conn.cancel_safe(timeout=timeout)


class _Lost(Exception):
    """The server ended a session we were holding idle (pg_terminate_backend, restart)."""


class Workload:
    """Background sessions against the sandbox's clusters; ``start()`` / ``stop()``, threads joined on stop.

    ``Workload(targets, session_for, connect=None, failed_logins=True, oltp_interval=2.0,
    failed_login_interval=5.0, long_query_seconds=600)``; ``targets`` may also be a Sandbox (then
    ``session_for`` defaults to ``sandbox.boto_session``). ``session_for(profile)`` must give boto3 sessions
    for the profiles "pgdemo-oltp-rw" and "pgdemo-oltp-ro". ``connect`` replaces the IAM connection path
    (tests without front doors); failed logins always use IAM tokens and are off when ``failed_logins``
    is False. ``stats()`` counts what happened (never tokens); ``recent_errors()`` keeps the last messages.
    """

    def __init__(
        self,
        targets: Sequence[WorkloadTarget] | SandboxLike,
        session_for: SessionFor | None = None,
        *,
        connect: ConnectFn | None = None,
        failed_logins: bool = True,
        oltp_interval: float = 2.0,
        failed_login_interval: float = 5.0,
        long_query_seconds: float = 600.0,
        stop_timeout: float = 1.8,
    ) -> None:
        if not isinstance(targets, Sequence):
            sandbox = targets
            targets = targets_from_sandbox(sandbox)
            if session_for is None:
                session_for = sandbox.boto_session
        if session_for is None and (connect is None or failed_logins):
            raise ValueError(
                "Workload needs session_for (boto3 sessions) unless connect is given and failed_logins is off"
            )
        self.targets: tuple[WorkloadTarget, ...] = tuple(targets)
        self._tokens = TokenMaker(session_for) if session_for is not None else None
        self._connect_override = connect
        self._failed_logins = failed_logins
        self.oltp_interval = oltp_interval
        self.failed_login_interval = failed_login_interval
        self.long_query_seconds = long_query_seconds
        self.stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy: dict[int, psycopg.Connection[Any]] = {}  # thread id -> connection inside a query
        self._lock = threading.Lock()
        self._stats: Counter[str] = Counter()
        self._errors: deque[str] = deque(maxlen=50)
        self._stale_tokens: dict[str, tuple[float, str]] = {}  # cluster -> (made at, token) for ExpiredToken

    @classmethod
    def from_sandbox(cls, sandbox: SandboxLike, **options: Any) -> Workload:
        """The workload for every cluster of a started Sandbox (tokens from its AWS profiles)."""
        return cls(targets_from_sandbox(sandbox), sandbox.boto_session, **options)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the session threads (returns at once; sessions connect in the background)."""
        if self._threads:
            return
        self._stop.clear()
        by_cluster: dict[str, list[WorkloadTarget]] = {}
        for t in self.targets:
            by_cluster.setdefault(t.cluster, []).append(t)
        for name, group in by_cluster.items():
            writer = next((t for t in group if t.role in ("writer", "instance")), None)
            reader = next((t for t in group if t.role == "reader"), None)
            if writer is None:
                continue
            self._spawn(f"{name}/oltp-rw", self._oltp_writer, writer)
            if writer.kind != "aurora":
                continue  # the RDS for PostgreSQL instance: light OLTP only
            if reader is not None:
                self._spawn(f"{name}/oltp-ro", self._oltp_reader, reader)
            holding = threading.Event()
            self._spawn(f"{name}/lock-holder", self._lock_holder, writer, holding)
            self._spawn(f"{name}/blocked-1", self._blocked, writer, holding)
            self._spawn(f"{name}/blocked-2", self._blocked, writer, holding)
            self._spawn(f"{name}/report-job", self._long_query, reader or writer)
            if self._failed_logins:
                self._spawn(f"{name}/failed-logins", self._bad_logins, writer)

    def stop(self) -> None:
        """End every session and join the threads (within ``stop_timeout``); idempotent."""
        self._stop.set()
        deadline = time.monotonic() + self.stop_timeout
        # Sessions that notice the stop event end by themselves (the lock holder rolls back, which lets
        # the blocked updates through); give them a moment, then cancel whatever is still inside a query.
        grace = min(deadline, time.monotonic() + 0.3)
        for thread in self._threads:
            thread.join(max(0.0, grace - time.monotonic()))
        with self._lock:
            busy = list(self._busy.values())
        # In parallel: a front door that does not answer must not delay the other cancels.
        timeout = max(0.2, deadline - time.monotonic())
        for conn in busy:
            threading.Thread(
                target=_cancel_quietly, args=(conn, timeout), name="workload:cancel", daemon=True
            ).start()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            # Typically sessions still logging in (a connect cannot be interrupted): they are daemon threads
            # and end as soon as the login completes or fails (front doors closed).
            log.info("workload: %d session thread(s) still connecting after stop: %s", len(alive), alive[:3])
        self._threads = [t for t in self._threads if t.is_alive()]

    def alive_threads(self) -> list[str]:
        """Names of session threads still running (empty after a clean stop)."""
        return [t.name for t in self._threads if t.is_alive()]

    def stats(self) -> dict[str, int]:
        """Counters: oltp_commits, reads, lock_acquired, blocked_waits, long_queries, failed_logins, ..."""
        with self._lock:
            return dict(self._stats)

    def recent_errors(self) -> list[str]:
        """The last unexpected error messages (connection problems etc.; tokens never appear)."""
        with self._lock:
            return list(self._errors)

    def __enter__(self) -> Workload:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ plumbing

    def _spawn(self, name: str, body: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(
            target=self._loop, args=(name, body, *args), name=f"workload:{name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    def _note_error(self, name: str, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        with self._lock:
            self._stats["errors"] += 1
            self._errors.append(f"{name}: {type(exc).__name__}: {first[:300]}")
        log.debug("workload %s: %s: %s", name, type(exc).__name__, first)

    def _loop(self, name: str, body: Callable[..., None], *args: Any) -> None:
        """Run one session life after another until stopped; back off on errors (a stopped cluster, ...)."""
        backoff = 1.0
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                body(*args)
                backoff = 1.0
            except Exception as exc:
                if self._stop.is_set():
                    break
                if time.monotonic() - began > 10.0:
                    backoff = 1.0  # a session that lived a while and was then killed: come back quickly
                if not isinstance(exc, _Lost):
                    self._note_error(name, exc)
                self._stop.wait(backoff * _rng.uniform(0.8, 1.2))
                backoff = min(backoff * 2, 10.0)

    def _pause(self, seconds: float) -> bool:
        """Sleep about ``seconds`` (jittered); True when the workload is stopping."""
        return self._stop.wait(seconds * _rng.uniform(0.7, 1.3))

    def _connect(self, target: WorkloadTarget, user: str, application_name: str) -> psycopg.Connection[Any]:
        if self._connect_override is not None:
            return self._connect_override(target, user, application_name)
        assert self._tokens is not None
        profile = RO_PROFILE if user == "oltp_ro_user" else RW_PROFILE
        return self._iam_connect(target, user, self._tokens.make(profile, target, user), application_name)

    @staticmethod
    def _iam_connect(
        target: WorkloadTarget, user: str, token: str, application_name: str
    ) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(
            host=target.endpoint,  # TLS name and what the token is signed for
            hostaddr=target.listen_host,  # TCP goes to the front door
            port=target.listen_port,
            dbname=target.database,
            user=user,
            password=token,
            sslmode="verify-full",
            sslrootcert=target.ca_path,
            application_name=application_name,
            connect_timeout=5,
        )

    @contextlib.contextmanager
    def _session(self, target: WorkloadTarget, user: str, app: str) -> Iterator[psycopg.Connection[Any]]:
        conn = self._connect(target, user, app)
        self._count("connections")
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def _in_query(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """Mark ``conn`` as inside a (possibly long) query so stop() can cancel it."""
        ident = threading.get_ident()
        with self._lock:
            self._busy[ident] = conn
        try:
            yield
        finally:
            with self._lock:
                self._busy.pop(ident, None)

    # ------------------------------------------------------------------ sessions

    def _oltp_writer(self, target: WorkloadTarget) -> None:
        with self._session(target, "oltp_rw_user", "oltp-app") as conn:
            while not self._pause(self.oltp_interval):
                product = _rng.randint(2, 5)  # never product 1: the lock holder keeps it
                with self._in_query(conn), conn.transaction():
                    conn.execute(
                        "SELECT product_no, name, price FROM pgdemo.products WHERE product_no = %s",
                        (product,),
                    ).fetchall()
                    row = conn.execute(
                        "INSERT INTO pgdemo.orders (product_no, quantity, order_date)"
                        " VALUES (%s, %s, now()) RETURNING order_id",
                        (product, _rng.randint(1, 10)),
                    ).fetchone()
                    conn.execute(
                        "UPDATE pgdemo.orders SET quantity = quantity WHERE order_id = %s",
                        (_rng.randint(1, 20),),
                    )
                    # Net-zero: the seeded data stays what tests expect.
                    conn.execute("DELETE FROM pgdemo.orders WHERE order_id = %s", (row[0] if row else -1,))
                self._count("oltp_commits")

    def _oltp_reader(self, target: WorkloadTarget) -> None:
        with self._session(target, "oltp_ro_user", "oltp-app") as conn:
            conn.autocommit = True
            while not self._pause(self.oltp_interval):
                with self._in_query(conn):
                    conn.execute(
                        "SELECT p.name, sum(o.quantity) FROM pgdemo.orders o"
                        " JOIN pgdemo.products p USING (product_no) GROUP BY p.name ORDER BY 2 DESC"
                    ).fetchall()
                    conn.execute(
                        "SELECT order_id, product_no, quantity, order_date FROM pgdemo.orders"
                        " WHERE order_id = %s",
                        (_rng.randint(1, 20),),
                    ).fetchall()
                self._count("reads")

    def _lock_holder(self, target: WorkloadTarget, holding: threading.Event) -> None:
        with self._session(target, "oltp_rw_user", "lock-holder") as conn:
            try:
                with self._in_query(conn):
                    # Opens a transaction (autocommit is off) and keeps the row lock until rollback.
                    conn.execute("UPDATE pgdemo.products SET price = price WHERE product_no = 1")
                holding.set()
                self._count("lock_acquired")
                fileno = conn.fileno()
                while not self._stop.is_set():
                    # Idle in transaction: anything arriving on the socket means the server ended us.
                    readable, _, _ = select.select([fileno], [], [], 0.25)
                    if readable:
                        raise _Lost()
            finally:
                holding.clear()
                with contextlib.suppress(Exception):
                    conn.rollback()
        self._pause(1.0)

    def _blocked(self, target: WorkloadTarget, holding: threading.Event) -> None:
        with self._session(target, "oltp_rw_user", "oltp-app") as conn:
            conn.autocommit = True
            while not self._stop.is_set():
                if not holding.wait(0.25):
                    continue
                with self._in_query(conn):
                    # Waits on the lock holder's row lock; returns when it is gone (killed or stopped).
                    conn.execute("UPDATE pgdemo.products SET price = price WHERE product_no = 1")
                self._count("blocked_waits")
                self._pause(0.5)

    def _long_query(self, target: WorkloadTarget) -> None:
        from psycopg import sql

        user = "oltp_ro_user" if target.role == "reader" else "oltp_rw_user"
        query = sql.SQL("SELECT count(*) FROM pgdemo.orders, pg_sleep({}) AS report_delay").format(
            sql.Literal(float(self.long_query_seconds))
        )
        with self._session(target, user, "report-job") as conn:
            conn.autocommit = True
            while not self._stop.is_set():
                self._count("long_queries")
                with self._in_query(conn):
                    conn.execute(query).fetchall()
                self._pause(0.5)

    def _bad_logins(self, target: WorkloadTarget) -> None:
        """One failed IAM login per round, rotating through realistic mistakes."""
        import psycopg

        assert self._tokens is not None
        kinds = ["wrong-role", "garbled", "stale"]
        turn = 0
        while not self._pause(self.failed_login_interval):
            kind = kinds[turn % len(kinds)]
            turn += 1
            user = "oltp_rw_user"
            if kind == "wrong-role":
                # A reporting host with the read-only role tries the read-write user: NotAuthorized.
                token = self._tokens.make(RO_PROFILE, target, user)
            elif kind == "garbled":
                token = garble_token(self._tokens.make(RW_PROFILE, target, user))
            else:
                stale = self._stale_token(target, user)
                if stale is None:
                    continue  # no token old enough yet
                token = stale
            try:
                conn = self._iam_connect(target, user, token, "batch-job")
            except psycopg.OperationalError as exc:
                if "authentication failed" in str(exc):
                    self._count("failed_logins")
                    self._count(f"failed_logins_{kind}")
                else:
                    self._note_error("failed-login", exc)
            else:
                conn.close()
                self._count("failed_login_unexpected_success")

    def _stale_token(self, target: WorkloadTarget, user: str) -> str | None:
        """A token kept from earlier and reused after 15 minutes, like a tool that never refreshes it."""
        assert self._tokens is not None
        made = self._stale_tokens.get(target.cluster)
        now = time.time()
        if made is None:
            self._stale_tokens[target.cluster] = (now, self._tokens.make(RW_PROFILE, target, user))
            return None
        made_at, token = made
        if now - made_at <= TOKEN_LIFETIME + 60:
            return None
        return token


__all__ = ["RO_PROFILE", "RW_PROFILE", "ConnectFn", "Workload", "WorkloadTarget", "targets_from_sandbox"]
