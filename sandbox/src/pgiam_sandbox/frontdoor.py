"""The RDS front door: a TLS listener per endpoint that authenticates like RDS, then relays to PostgreSQL.

It speaks the PostgreSQL protocol up to authentication, as RDS does:

- SSLRequest -> 'S' and TLS (certificate from the sandbox's CA); GSSENCRequest -> 'N'; CancelRequest (in the
  clear, or after an SSLRequest as libpq 17 sends it) forwarded to the real server unchanged;
- StartupMessage: for members of `rds_iam` (asked of the real server as superuser at every login, as RDS does:
  a GRANT or REVOKE counts for the very next login) it requests a
  cleartext password, verifies it as an IAM token (token_check), and on success opens a backend session over
  the unix socket (trust) with the client's startup parameters and relays both ways; on failure it answers
  FATAL 28000 `PAM authentication failed for user "X"` — the client never learns why, as on RDS;
- users outside `rds_iam` are relayed transparently to the server's TCP port (scram-sha-256), so a token
  presented as a password fails with 28P01, as on RDS.

Every front door of the process shares one asyncio loop in one daemon thread; start()/stop() are thread-safe
(call them from any thread but that loop's). The switches' `latency_ms` delays every relayed chunk, both ways.
`reset_mid_query` (instance ids) resets a relayed session with a TCP RST when its client sends a query.
What it logs about each connection (RDS lines, diagnostic reasons) is in frontdoor_log.ConnectionLog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pgiam_sandbox import membership, pgwire
from pgiam_sandbox.frontdoor_log import ClientConn, ConnectionLog
from pgiam_sandbox.rds_logs import DiagnosticLog, RdsLogSink, SslInfo
from pgiam_sandbox.token_check import Verdict

__all__ = ["FrontDoor", "LatencySwitch", "Verifier"]

Verifier = Callable[[str, str, "str | None"], Verdict]  # (token, user, SNI host) -> Verdict
STARTUP_TIMEOUT = (
    30.0  # a client that stalls during login is dropped (PostgreSQL: authentication_timeout 60s)
)
MEMBERSHIP_TIMEOUT = 5.0  # a stalled server: refuse with 57P03 after this long
STARTING_UP = "the database system is starting up"  # 57P03, as a server that is not ready yet says
log = logging.getLogger(__name__)
_sni: dict[int, str] = {}  # id(SSLObject) -> SNI host name, filled by the context's sni_callback


class LatencySwitch(Protocol):
    """The switch the relay reads per chunk (pgiam_sandbox.Switches has it)."""

    latency_ms: float


class _LoopThread:
    """One event loop in a daemon thread, shared by every front door; stopped when the last one stops."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _users = 0

    @classmethod
    def acquire(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                cls._thread = threading.Thread(target=run, name="sandbox-frontdoors", daemon=True)
                cls._thread.start()
                ready.wait()
                cls._loop = loop
            cls._users += 1
            return cls._loop

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users > 0 or cls._loop is None:
                return
            loop, thread = cls._loop, cls._thread
            cls._loop = cls._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()


class FrontDoor:
    """One RDS endpoint (cluster, reader or instance endpoint) on 127.0.0.1.

    `name`: the endpoint's DNS name (the first token host it accepts); `names`: every name the listener
    answers for (certificate/SNI names). `instance_id`: the instance it routes to (log stream name and the
    throttling unit). `backend_socket_dir`/`backend_port`: that instance's PostgreSQL (unix socket, trust; TCP
    on `backend_host`:`backend_port` with scram). `verifier`: `(token, user, sni) -> Verdict`, e.g.
    `TokenVerifier().for_target(target)`. `log_sink`, `diagnostics`: where log lines and true reasons go.
    """

    def __init__(
        self,
        name: str,
        names: Sequence[str],
        *,
        instance_id: str,
        backend_socket_dir: str,
        backend_port: int,
        verifier: Verifier,
        ssl_context: ssl.SSLContext | None,
        log_sink: RdsLogSink | None = None,
        switches: LatencySwitch | None = None,
        diagnostics: DiagnosticLog | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        backend_host: str = "127.0.0.1",
        admin_user: str = "sandbox_admin",
        admin_database: str = "postgres",
        force_ssl: bool = False,
    ) -> None:
        self.name = name
        self.names = tuple(dict.fromkeys([name, *names]))
        self.instance_id = instance_id
        self.backend_socket_dir = backend_socket_dir
        self.backend_port = backend_port
        self.backend_host = backend_host
        self.verifier = verifier
        self.ssl_context = ssl_context
        self.log_sink = log_sink
        self.switches = switches
        self.diagnostics = diagnostics
        self._log = ConnectionLog(instance_id, log_sink, diagnostics)
        self.listen_host = listen_host
        self.port = listen_port
        self.admin_user = admin_user
        self.admin_database = admin_database
        self.force_ssl = force_ssl
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # counters for tests and benchmarks: connections, cancels (and how many came over TLS), IAM outcomes
        self.stats: dict[str, int] = dict.fromkeys(
            ("connections", "cancel", "cancel_tls", "iam_ok", "iam_refused", "relayed_password", "reset"),
            0,
        )
        self._lock = threading.Lock()
        if ssl_context is not None and ssl_context.sni_callback is None:
            ssl_context.sni_callback = _remember_sni

    def __repr__(self) -> str:
        return f"FrontDoor({self.name!r} on {self.listen_host}:{self.port} -> {self.instance_id})"

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (port 0 picks a free one; `self.port` then holds it). OSError if the port is busy."""
        with self._lock:
            if self._server is not None:
                return
            loop = _LoopThread.acquire()
            try:
                fut = asyncio.run_coroutine_threadsafe(
                    asyncio.start_server(self._accept, self.listen_host, self.port, reuse_address=True), loop
                )
                server = fut.result(timeout=10)
            except BaseException:
                _LoopThread.release()
                raise
            self._loop, self._server = loop, server
            self.port = int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Close the listener and every session it relays (idempotent, quick)."""
        with self._lock:
            loop, server = self._loop, self._server
            if loop is None or server is None:
                return
            self._loop = self._server = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(server), loop).result(timeout=10)
        _LoopThread.release()

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)

    def __enter__(self) -> FrontDoor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one client ----------------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats["connections"] += 1
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        client = ClientConn(str(peer[0]), int(peer[1]), datetime.now(UTC))
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                params = await self._negotiate(reader, writer, client)
            if params is not None:
                await self._login(reader, writer, client, params)
        except pgwire.ProtocolError as exc:
            with contextlib.suppress(Exception):
                writer.write(pgwire.error_response("FATAL", "08P01", str(exc)))
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            ssl.SSLError,
            TimeoutError,
            asyncio.CancelledError,
        ):
            pass
        except Exception as exc:  # a bug here must cost one connection, never the listener
            log.exception("front door %s: unexpected error", self.name)
            self._log.internal_error(client, exc)
            with contextlib.suppress(Exception):
                writer.write(pgwire.error_response("FATAL", "XX000", "internal error"))
                await writer.drain()
        finally:
            self._tasks.discard(task)
            _close(writer)

    async def _negotiate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: ClientConn
    ) -> dict[str, str] | None:
        """SSL/GSS negotiation and cancel forwarding; the StartupMessage parameters, or None when done."""
        for _ in range(3):  # at most GSSENCRequest, SSLRequest, then the real packet
            packet = await pgwire.read_startup(reader)
            if packet.code == pgwire.SSL_REQUEST:
                if client.tls or self.ssl_context is None:
                    writer.write(b"N")
                    await writer.drain()
                    continue
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.ssl_context)
                client.tls = True
                obj = writer.get_extra_info("ssl_object")
                if obj is not None:
                    client.sni = _sni.pop(id(obj), None)
                    cipher = obj.cipher()
                    client.ssl = SslInfo(str(obj.version()), cipher[0], int(cipher[2])) if cipher else None
            elif packet.code == pgwire.GSSENC_REQUEST:
                writer.write(b"N")
                await writer.drain()
            elif packet.code == pgwire.CANCEL_REQUEST:
                self.stats["cancel"] += 1
                self.stats["cancel_tls"] += int(client.tls)
                await self._forward_cancel(packet.raw)
                return None
            elif packet.code == pgwire.PROTOCOL_V3:
                return packet.params
            else:
                major, minor = packet.code >> 16, packet.code & 0xFFFF
                raise pgwire.ProtocolError(
                    f"unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                )
        raise pgwire.ProtocolError("too many negotiation requests")

    async def _forward_cancel(self, raw: bytes) -> None:
        # The client holds the real backend's pid and key (BackendKeyData is relayed untouched).
        with contextlib.suppress(OSError):
            _, w = await asyncio.open_unix_connection(self._socket_path())
            w.write(raw)
            await w.drain()
            _close(w)

    def _socket_path(self) -> str:
        return f"{self.backend_socket_dir}/.s.PGSQL.{self.backend_port}"

    async def _login(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: ClientConn,
        params: dict[str, str],
    ) -> None:
        user = params["user"]
        database = params.get("database") or user
        if self.force_ssl and not client.tls:
            text = (
                f'no pg_hba.conf entry for host "{client.host}", user "{user}", database "{database}", '
                "no encryption"
            )
            await self._refuse(writer, client, user, database, "28000", text)
            return
        try:
            iam_user = await self._is_rds_iam(user)
        except Exception:
            await self._refuse(writer, client, user, database, "57P03", STARTING_UP)
            return
        if not iam_user:
            self.stats["relayed_password"] += 1
            await self._relay_tcp(reader, writer, client, params)
            return
        writer.write(pgwire.AUTH_CLEARTEXT)
        await writer.drain()
        async with asyncio.timeout(STARTUP_TIMEOUT):  # PostgreSQL's authentication_timeout, in spirit
            kind, body = await pgwire.read_message(reader)
        if kind != b"p":
            raise pgwire.ProtocolError(f"expected password response, got message type {kind!r}")
        token = pgwire.password_from(body)
        verdict = await asyncio.to_thread(self.verifier, token, user, client.sni)
        del token, body  # nothing below needs the token; keep it out of tracebacks and locals
        self._log.iam_result(user, verdict)
        self.stats["iam_ok" if verdict.ok else "iam_refused"] += 1
        if not verdict.ok:
            self._log.iam_refused(client, user, database, verdict)
            writer.write(
                pgwire.error_response("FATAL", "28000", f'PAM authentication failed for user "{user}"')
            )
            await writer.drain()
            return
        try:
            b_reader, b_writer = await asyncio.open_unix_connection(self._socket_path())
        except OSError:
            await self._refuse(writer, client, user, database, "57P03", STARTING_UP)
            return
        await self._session(reader, writer, b_reader, b_writer, client, params)

    async def _relay_tcp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: ClientConn,
        params: dict[str, str],
    ) -> None:
        """Users outside rds_iam: the real server does the (scram) authentication, we only relay."""
        try:
            b_reader, b_writer = await asyncio.open_connection(self.backend_host, self.backend_port)
        except OSError:
            database = params.get("database") or params["user"]
            await self._refuse(writer, client, params["user"], database, "57P03", STARTING_UP)
            return
        await self._session(reader, writer, b_reader, b_writer, client, params)

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        b_reader: asyncio.StreamReader,
        b_writer: asyncio.StreamWriter,
        client: ClientConn,
        params: dict[str, str],
    ) -> None:
        """Open the backend session with the client's parameters; relay, logging what RDS would log."""
        user = params["user"]
        database = params.get("database") or user
        started: float | None = None
        try:
            b_writer.write(pgwire.startup_message(params))
            await b_writer.drain()
            # The login, message by message until ReadyForQuery. When the server asks for authentication
            # (scram for users outside rds_iam) the client answers with exactly one message each time.
            while True:
                kind, body = await pgwire.read_message(b_reader)
                # Log lines are written before the client hears the outcome, as the server does.
                if kind == b"E":
                    self._log.server_refused(client, user, database, pgwire.parse_error(body))
                elif kind == b"Z":
                    started = time.monotonic()
                    self._log.authorized(client, user, database, params.get("application_name"))
                await self._delay()
                writer.write(pgwire.message(kind, body))
                await writer.drain()
                if kind in (b"E", b"Z"):
                    break
                if kind == b"K" and len(body) >= 4:
                    client.pid = struct.unpack("!i", body[:4])[0]
                elif kind == b"R" and pgwire.auth_needs_reply(body):
                    reply = await pgwire.read_message(reader)
                    await self._delay()
                    b_writer.write(pgwire.message(*reply))
                    await b_writer.drain()
            if started is None:
                return
            # From here on, plain byte relay with transport callbacks (no coroutine per chunk: much cheaper).
            await pgwire.relay(reader, writer, b_reader, b_writer, self.switches, self._reset_now)
        finally:
            _close(b_writer)
            if started is not None:
                self._log.disconnection(client, user, database, time.monotonic() - started)

    def _reset_now(self) -> bool:
        """Whether the switches say to reset this instance's sessions mid-query now (counted in stats)."""
        if self.instance_id not in getattr(self.switches, "reset_mid_query", ()):
            return False
        self.stats["reset"] += 1
        return True

    async def _delay(self) -> None:
        latency = float(getattr(self.switches, "latency_ms", 0) or 0)
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)

    async def _refuse(
        self,
        writer: asyncio.StreamWriter,
        client: ClientConn,
        user: str,
        database: str,
        sqlstate: str,
        text: str,
    ) -> None:
        """Refuse the login ourselves: log it like RDS, then send the client FATAL SQLSTATE TEXT."""
        self._log.refused(client, user, database, text)
        writer.write(pgwire.error_response("FATAL", sqlstate, text))
        await writer.drain()

    async def _is_rds_iam(self, user: str) -> bool:
        """Whether `user` is a member (direct or not) of rds_iam, asked of the real server at every login.

        No cache: RDS reads the catalog at each login, so a GRANT or REVOKE counts for the very next one.
        """
        # Its own short session, always closed (psycopg's connect timeout leaked one per stall)
        return await membership.is_member(
            self._socket_path(), self.admin_user, self.admin_database, user, timeout=MEMBERSHIP_TIMEOUT
        )


def _remember_sni(obj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
    if server_name:
        _sni[id(obj)] = server_name
        if len(_sni) > 10_000:  # handshakes that never completed; keep the map bounded
            _sni.clear()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
