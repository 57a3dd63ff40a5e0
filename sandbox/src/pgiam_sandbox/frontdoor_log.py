"""What the RDS front door writes about one client connection: RDS-format log lines and the true reasons.

RDS logs each login attempt in a fixed order (`connection received`, then `connection authorized` or the
refusal, later `disconnection`), and the sandbox keeps a diagnostic file with the real cause of every refusal
(the client only ever hears "PAM authentication failed"). `ConnectionLog` holds that bookkeeping, so the
front door itself is only protocol; both sinks are optional (None: nothing is written).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from pgiam_sandbox.rds_logs import DiagnosticLog, RdsLogSink, SslInfo
from pgiam_sandbox.token_check import Verdict

__all__ = ["ClientConn", "ConnectionLog"]

_pids = itertools.count(40000)  # "pid" of sessions that never reach a backend (RDS logs the backend's pid)


@dataclass
class ClientConn:
    """One client connection as the logs see it: its address, TLS details and (once known) backend pid."""

    host: str
    port: int
    received_at: datetime | None
    ssl: SslInfo | None = None
    sni: str | None = None
    tls: bool = False
    pid: int = field(default_factory=lambda: next(_pids))

    @property
    def address(self) -> str:
        """`host:port`, as the diagnostic log names clients."""
        return f"{self.host}:{self.port}"


class ConnectionLog:
    """The log lines of one endpoint (`instance_id` is the log stream and the diagnostic file's instance)."""

    def __init__(self, instance_id: str, sink: RdsLogSink | None, diagnostics: DiagnosticLog | None) -> None:
        self.instance_id = instance_id
        self.sink = sink
        self.diagnostics = diagnostics

    def received(self, client: ClientConn) -> None:
        """Write the `connection received` line once, with the session's pid when we know it."""
        if self.sink is not None and client.received_at is not None:
            self.sink.connection_received(
                self.instance_id, client.host, client.port, client.pid, when=client.received_at
            )
        client.received_at = None

    def authorized(self, client: ClientConn, user: str, database: str, application_name: str | None) -> None:
        """The backend said ReadyForQuery: `connection authorized` (with the client's TLS details)."""
        self.received(client)
        if self.sink is not None:
            self.sink.connection_authorized(
                self.instance_id,
                client.host,
                client.port,
                client.pid,
                user,
                database,
                application_name,
                client.ssl,
            )

    def iam_refused(self, client: ClientConn, user: str, database: str, verdict: Verdict) -> None:
        """A token was refused: the two PAM lines RDS writes, and the true reason in the diagnostic file."""
        self.received(client)
        if self.sink is not None:
            self.sink.pam_failed(self.instance_id, client.host, client.port, client.pid, user, database)
        self._diagnose(user, client, verdict.error_code, verdict.reason)

    def iam_result(self, user: str, verdict: Verdict) -> None:
        """Every token check, good or bad: the iam-db-auth-error line and the per-minute metrics."""
        if self.sink is not None:
            self.sink.iam_result(self.instance_id, user, verdict)

    def server_refused(self, client: ClientConn, user: str, database: str, err: dict[str, str]) -> None:
        """The real server refused the login (e.g. 28P01 password authentication failed): log it like RDS."""
        self.received(client)
        if self.sink is not None:
            self.sink.server_error(
                self.instance_id,
                client.host,
                client.port,
                client.pid,
                user,
                database,
                err.get("S", "FATAL"),
                err.get("M", ""),
            )
        if err.get("C", "").startswith("28"):
            self._diagnose(user, client, None, f"server refused: {err.get('C')} {err.get('M', '')}")

    def refused(self, client: ClientConn, user: str, database: str, text: str) -> None:
        """The front door itself refused the login (no TLS, server not up yet): a FATAL line and why."""
        self.received(client)
        if self.sink is not None:
            self.sink.server_error(
                self.instance_id, client.host, client.port, client.pid, user, database, "FATAL", text
            )
        self._diagnose(user, client, None, text)

    def internal_error(self, client: ClientConn, exc: BaseException) -> None:
        """A bug of the front door cost this connection: say so (exception type only, never its text)."""
        self._diagnose(None, client, None, f"front door internal error: {type(exc).__name__}")

    def disconnection(self, client: ClientConn, user: str, database: str, session_seconds: float) -> None:
        """`disconnection: session time: …` for a session that was authorized."""
        if self.sink is not None:
            self.sink.disconnection(
                self.instance_id, client.host, client.port, client.pid, user, database, session_seconds
            )

    def _diagnose(self, user: str | None, client: ClientConn, code: str | None, reason: str) -> None:
        if self.diagnostics is not None:
            self.diagnostics.write(self.instance_id, user, client.address, code, reason)
