"""InstanceConnection on real servers.

Part 1 (LocalPostgres, password credentials over TCP/scram): session settings, reconnect after
pg_terminate_backend and after a restart with a fresh credential each time, backoff pacing, failure statuses,
client events, secrets scrubbed. Part 2 (the sandbox's front door, IAM tokens): see test_connection_iam_*.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pgiam_sandbox.postgres import LocalPostgres

from helpers.check_support import RefusedPort
from helpers.local_pg import running_postgres
from pgiam_tui.db.connection import (
    Backoff,
    ConnectError,
    Credential,
    InstanceConnection,
    QueryError,
    open_session,
    utcnow,
)
from pgiam_tui.db.conninfo import ConnTarget, connect_kwargs, scrub, session_options
from pgiam_tui.model import ConnEvent

APP_USER = "app_password_user"
APP_PASSWORD = "app-password"
FAST = Backoff(base_s=0.05, factor=2.0, cap_s=0.2)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One seeded PostgreSQL (system binaries) for this module."""
    with running_postgres(tmp_path_factory.mktemp("conn")) as server:
        yield server


class CountingPassword:
    """A credential provider handing out a (fixed) password and counting how often it was asked."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.calls = 0

    async def __call__(self) -> Credential:
        self.calls += 1
        return Credential(self.password)


def _target(port: int, **over: Any) -> ConnTarget:
    base: dict[str, Any] = {
        "cluster": "local",
        "instance_id": "local-1",
        "role": "writer",
        "endpoint": "localhost",  # the "endpoint name"; TCP goes to hostaddr (like a tunnel)
        "port": 5432,
        "connect_host": "127.0.0.1",
        "connect_port": port,
        "region": None,
        "database": "demo",
        "user": APP_USER,
        "auth": "password",
        "sslmode": "disable",
        "statement_timeout_ms": 3000,
    }
    base.update(over)
    return ConnTarget(**base)


async def _admin(pg: LocalPostgres) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(pg.admin_dsn, autocommit=True)


async def _wait_past(when: datetime | None) -> None:
    """Sleep until the backoff deadline has passed (waiting, not asserting on time)."""
    if when is not None:
        delay = (when - utcnow()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay + 0.01)


async def test_session_settings_and_events(pg: LocalPostgres) -> None:
    assert pg.port is not None
    events: list[ConnEvent] = []
    creds = CountingPassword(APP_PASSWORD)
    conn = InstanceConnection(_target(pg.port, statement_timeout_ms=300), creds, on_event=events.append)
    try:
        rows = await conn.fetch(
            "SELECT current_setting('application_name'), current_setting('default_transaction_read_only'),"
            " current_setting('statement_timeout'), current_user"
        )
        assert rows == [("pgiam-tui", "on", "300ms", APP_USER)]
        assert conn.status.state == "connected" and conn.connected
        assert conn.server_version is not None and conn.server_version.startswith("15.")
        assert [e.kind for e in events] == ["client_connect"]
        assert (
            events[0].source == "client"
            and events[0].instance == "local-1"
            and events[0].pid == conn.backend_pid
        )
        # read-only: a write fails as a query error, the session stays (no reconnect)
        with pytest.raises(QueryError, match="read-only"):
            await conn.fetch("CREATE TABLE pgdemo.should_not_exist (x int)")
        # statement_timeout bounds a slow query; the session stays usable
        with pytest.raises(QueryError) as info:
            await conn.fetch("SELECT pg_sleep(5)")
        assert info.value.sqlstate == "57014"
        assert await conn.fetch("SELECT 1") == [(1,)]
        assert creds.calls == 1 and conn.connects == 1
    finally:
        await conn.close()
    final: Any = conn.status.state  # mypy narrowed it to "connected" above
    assert final == "stopped"


async def test_reconnects_after_terminate_with_fresh_credential(pg: LocalPostgres) -> None:
    assert pg.port is not None
    events: list[ConnEvent] = []
    creds = CountingPassword(APP_PASSWORD)
    conn = InstanceConnection(_target(pg.port), creds, on_event=events.append, backoff=FAST)
    admin = await _admin(pg)
    try:
        await conn.fetch("SELECT 1")
        first_pid = conn.backend_pid
        await admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        # the loss is noticed by the next statement, which reconnects once at once and runs again
        assert await conn.fetch("SELECT pg_backend_pid()") == [(conn.backend_pid,)]
        assert conn.backend_pid != first_pid
        assert creds.calls == 2 and conn.connects == 2
        assert [e.kind for e in events] == ["client_connect", "client_connect"]
        assert conn.status.state == "connected"
    finally:
        await conn.close()
        await admin.close()


async def test_comes_back_after_restart_with_backoff(pg: LocalPostgres) -> None:
    assert pg.port is not None
    events: list[ConnEvent] = []
    creds = CountingPassword(APP_PASSWORD)
    conn = InstanceConnection(
        _target(pg.port), creds, on_event=events.append, backoff=FAST, rng=random.Random(1)
    )
    try:
        await conn.fetch("SELECT 1")
        await asyncio.to_thread(pg.stop)
        with pytest.raises(ConnectError):
            await conn.fetch("SELECT 1")
        st = conn.status
        assert st.state == "reconnecting" and st.attempt == 1 and st.next_try_at is not None
        assert st.reason and "password" not in st.reason.lower()
        calls = creds.calls
        # within the backoff delay no new attempt is made (no credential asked, no event)
        if utcnow() < st.next_try_at:
            with pytest.raises(ConnectError, match="next try"):
                await conn.fetch("SELECT 1")
            assert creds.calls == calls
        await _wait_past(st.next_try_at)
        with pytest.raises(ConnectError):
            await conn.fetch("SELECT 1")
        assert conn.status.attempt == 2 and creds.calls == calls + 1
        await asyncio.to_thread(pg.start)
        for _ in range(50):  # each try waits for its backoff deadline first
            await _wait_past(conn.status.next_try_at)
            try:
                assert await conn.fetch("SELECT 1") == [(1,)]
                break
            except ConnectError:
                continue
        assert conn.status.state == "connected" and conn.status.attempt == 0
        assert sum(e.kind == "client_failed" for e in events) >= 2
        assert events[-1].kind == "client_connect"
        assert creds.calls == conn.connects + sum(e.kind == "client_failed" for e in events)
    finally:
        if not pg.is_running:
            await asyncio.to_thread(pg.start)
        await conn.close()


async def test_wrong_password_is_failed_with_hint_and_no_secret(pg: LocalPostgres) -> None:
    assert pg.port is not None
    secret = "X-Amz-Signature=deadbeef-not-the-password-s3cr3t"
    events: list[ConnEvent] = []
    conn = InstanceConnection(
        _target(pg.port), CountingPassword(secret), on_event=events.append, backoff=FAST
    )
    with pytest.raises(ConnectError) as info:
        await conn.fetch("SELECT 1")
    err = info.value
    assert err.sqlstate == "28P01" and err.step == "connect"
    assert "rds_iam" in err.hint
    st = conn.status
    assert st.state == "failed" and st.next_try_at is not None
    for text in (str(err), repr(err), st.reason or "", repr(st), *(e.message for e in events), repr(events)):
        assert "s3cr3t" not in text and "deadbeef" not in text
    assert [e.kind for e in events] == ["client_failed"]
    await conn.close()


async def test_refused_port_is_failed() -> None:
    with RefusedPort() as port:
        conn = InstanceConnection(_target(port), CountingPassword("x"), backoff=FAST)
        with pytest.raises(ConnectError) as info:
            await conn.fetch("SELECT 1")
    assert conn.status.state == "failed"
    assert "refused" in str(info.value).lower() or "refused" in info.value.hint
    await conn.close()


async def test_connect_kwargs_keep_endpoint_as_host() -> None:
    endpoint = "db.example.rds.amazonaws.com"
    target = _target(
        6543, endpoint=endpoint, connect_host="localhost", sslmode="verify-full", sslrootcert="/ca.pem"
    )
    kwargs = await connect_kwargs(target, "tok")
    assert kwargs["host"] == "db.example.rds.amazonaws.com"  # TLS name and the host the token is signed for
    assert kwargs["hostaddr"] == "127.0.0.1" and kwargs["port"] == 6543  # the tunnel
    assert kwargs["sslmode"] == "verify-full" and kwargs["sslrootcert"] == "/ca.pem"
    assert kwargs["application_name"] == "pgiam-tui" and kwargs["autocommit"] is True
    assert session_options(target) == "-c default_transaction_read_only=on -c statement_timeout=3000"
    rw = _target(1, read_only=False)
    assert "read_only" not in session_options(rw)


def test_scrub_removes_tokens_and_passwords() -> None:
    token = (
        "db.example.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=pgmonitor&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=ASIAXXXX%2F20261128%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20261128T120000Z"
        "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjE&X-Amz-Signature=abc123"
    )
    msg = f'connection failed: password={token} host=x FATAL: PAM authentication failed for user "pgmonitor"'
    out = scrub(msg, token)
    assert token not in out and "abc123" not in out and "IQoJb3JpZ2luX2VjE" not in out
    assert 'PAM authentication failed for user "pgmonitor"' in out
    # without knowing the secret, the token-shaped parts still go
    partial = scrub(token)
    assert "abc123" not in partial and "IQoJb3JpZ2luX2VjE" not in partial and "ASIAXXXX" not in partial
    assert scrub("password='it\\'s secret' user=x") == "password=<redacted> user=x"  # libpq quoting


def test_backoff_grows_with_jitter_and_cap() -> None:
    b = Backoff(base_s=1.0, factor=2.0, cap_s=10.0)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)):
        d = b.delay(attempt, rng)
        assert ceiling * 0.5 <= d <= ceiling
    # jitter: the same attempt does not always give the same delay
    assert len({round(b.delay(3, rng), 6) for _ in range(10)}) > 1


def test_credential_repr_hides_password() -> None:
    assert "hunter2" not in repr(Credential("hunter2"))


# ------------------------------------------------------------------------------ IAM through the sandbox


class RecordingTokens:
    """Wraps the product's IAM token provider and keeps every token it made (to tell fresh from reused)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.made: list[Credential] = []

    async def __call__(self) -> Credential:
        cred: Credential = await self.inner()
        self.made.append(cred)
        return cred


def _amz_date(token: str) -> datetime:
    from urllib.parse import parse_qs, urlsplit

    stamp = parse_qs(urlsplit("https://" + token).query)["X-Amz-Date"][0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@contextlib.contextmanager
def _signing_clock(offset_s: float) -> Iterator[None]:
    """Sign AWS requests as if the clock read OFFSET_S later: botocore takes SigV4's time from
    `botocore.auth.get_current_datetime`, so this is the clock injected into signing (no real waiting)."""
    import botocore.auth
    from botocore.compat import get_current_datetime

    def shifted(remove_tzinfo: bool = True) -> datetime:
        return get_current_datetime(remove_tzinfo) + timedelta(seconds=offset_s)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", shifted)
        yield


def _iam_target(sb: Any, cluster: str, role: str = "writer") -> ConnTarget:
    c = sb.cluster(cluster)
    inst = next(i for i in c.instances if i.role == role)
    return ConnTarget(
        cluster=cluster,
        instance_id=inst.id,
        role=inst.role,
        endpoint=inst.endpoint,
        port=inst.port,
        region=c.region,
        database=c.database,
        user="pgmonitor",
        auth="iam",
        connect_host=inst.listen_host,
        connect_port=inst.listen_port,
        sslmode="verify-full",
        sslrootcert=str(sb.ca_path),
    )


async def _login_with(target: ConnTarget, token: str) -> str | None:
    """Try a fresh login with TOKEN; None when it worked, else the (scrubbed) error."""
    try:
        conn = await psycopg.AsyncConnection.connect(**await connect_kwargs(target, token))
    except psycopg.OperationalError as exc:
        return scrub(str(exc), token)
    await conn.close()
    return None


async def test_iam_session_survives_token_expiry_and_reconnects_with_fresh_token(
    sandbox: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, psycopg's included: none may show a token
    from pgiam_tui.aws.db_credentials import iam_token_provider
    from pgiam_tui.aws.session import SessionFactory

    name = sandbox.clusters[0].name
    target = _iam_target(sandbox, name)
    session = SessionFactory(cache_dir=tmp_path / "cli-cache").session("instancecrossaccount")
    tokens = RecordingTokens(iam_token_provider(session, target))
    events: list[ConnEvent] = []
    conn = InstanceConnection(target, tokens, on_event=events.append, backoff=FAST)
    admin = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(name), autocommit=True)
    try:
        with _signing_clock(-60):  # the first token was signed a minute ago
            assert await conn.fetch("SELECT current_user") == [("pgmonitor",)]
        first = tokens.made[0]
        assert conn.status.token_expires_at == first.expires_at
        # the front door's clock jumps 1000 s ahead: the token is long expired, the session stays up
        sandbox.switches.clock_skew_seconds = 1000
        assert await conn.fetch("SELECT 1") == [(1,)]
        assert len(tokens.made) == 1
        assert "PAM authentication failed" in (await _login_with(target, first.password) or "")

        # skew 890 s: a token signed more than 10 s ago (the first, a minute ago) is expired, a fresh one good
        assert (utcnow() - _amz_date(first.password)).total_seconds() >= 59
        sandbox.switches.clock_skew_seconds = 890
        assert "PAM authentication failed" in (await _login_with(target, first.password) or "")  # reuse fails

        (pid,) = (await conn.fetch("SELECT pg_backend_pid()"))[0]
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert await conn.fetch("SELECT current_user") == [("pgmonitor",)]  # came back by itself
        assert len(tokens.made) == 2
        fresh = tokens.made[1]
        assert fresh.password != first.password and _amz_date(fresh.password) > _amz_date(first.password)
        assert conn.status.state == "connected" and conn.status.token_expires_at == fresh.expires_at
        assert [e.kind for e in events] == ["client_connect", "client_connect"]
        for text in [repr(conn.status), *(repr(e) for e in events), caplog.text, repr(conn.target)]:
            assert first.password not in text and fresh.password not in text
            assert "X-Amz-Signature" not in text
    finally:
        sandbox.switches.clock_skew_seconds = 0
        await conn.close()
        await admin.close()


async def test_iam_connections_come_back_after_restart(sandbox: Any, tmp_path: Any) -> None:
    from pgiam_tui.aws.db_credentials import iam_token_provider
    from pgiam_tui.aws.session import SessionFactory

    name = next(c.name for c in sandbox.clusters if c.kind == "aurora")
    session = SessionFactory(cache_dir=tmp_path / "cli-cache").session("instancecrossaccount")
    conns: list[tuple[InstanceConnection, RecordingTokens]] = []
    for role in ("writer", "reader"):
        target = _iam_target(sandbox, name, role)
        tokens = RecordingTokens(iam_token_provider(session, target))
        conns.append((InstanceConnection(target, tokens, backoff=FAST), tokens))
    try:
        before = []
        for conn, _ in conns:
            (row,) = await conn.fetch("SELECT pg_backend_pid(), current_setting('transaction_read_only')")
            assert row[1] == "on"  # read-only session on writer and reader alike
            before.append(row[0])
        await asyncio.to_thread(sandbox.restart_cluster, name)
        for (conn, tokens), old_pid in zip(conns, before, strict=True):
            for _ in range(100):
                await _wait_past(conn.status.next_try_at)
                try:
                    (row,) = await conn.fetch("SELECT pg_backend_pid()")
                    break
                except ConnectError:
                    continue
            else:
                raise AssertionError(f"{conn.target.instance_id} never came back: {conn.status}")
            assert row[0] != old_pid and conn.status.state == "connected"
            assert len(tokens.made) >= 2  # every reconnect asked for a new token
    finally:
        for conn, _ in conns:
            await conn.close()


@pytest.mark.parametrize(
    ("message", "sqlstate", "hint_part"),
    [
        ('FATAL:  PAM authentication failed for user "pgmonitor"', "28000", "pgiam-tui check c1"),
        ('FATAL:  password authentication failed for user "x"', "28P01", "rds_iam"),
        ('FATAL:  database "nope" does not exist', "3D000", "database"),
        ('FATAL:  role "ghost" does not exist', "28000", "pgiam-tui check c1"),
        ("FATAL:  the database system is starting up", "57P03", "retried"),
        ('FATAL:  too many connections for role "pgmonitor"', "53300", "retried"),
        ("could not connect: Connection refused", None, "refused"),
    ],
)
def test_login_failures_are_classified(message: str, sqlstate: str | None, hint_part: str) -> None:
    from pgiam_tui.db.connection import _hint_for, login_sqlstate
    from pgiam_tui.db.conninfo import ConnTarget

    target = ConnTarget("c1", "i-1", "writer", "e.example", 5432, "us-east-1", "demo", "pgmonitor")
    assert login_sqlstate(message) == sqlstate
    assert hint_part in _hint_for(sqlstate, message, target)


@pytest.mark.parametrize("how", ["connect_timeout", "cancelled"])
async def test_a_failed_connect_closes_its_socket_without_the_garbage_collector(how: str) -> None:
    """A server that accepts and never answers (a stopped PostgreSQL, a stalled proxy): psycopg's connect
    timeout, or a cancelled attempt, used to leave the libpq socket open in a reference cycle until the
    garbage collector ran (and the server, once awake, kept a session for it). open_session closes it."""
    closed: list[bool] = []
    eof = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # take the SSLRequest/StartupMessage, answer nothing
            pass
        closed.append(True)
        eof.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kwargs: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "user": "nobody",
        "dbname": "nothing",
        "sslmode": "disable",
        "connect_timeout": 2,
    }
    gc.collect()
    gc.disable()  # what only the collector would free stays: the test sees whether it was closed
    try:
        if how == "connect_timeout":
            with pytest.raises(psycopg.OperationalError, match="timeout"):
                await open_session(kwargs)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await open_session(kwargs)
        async with asyncio.timeout(30):  # a liveness guard, not a timing: the socket is closed at once
            await eof.wait()
    finally:
        gc.enable()
        server.close()
    assert closed == [True]
