"""The check's own network probes on real sockets and real TLS (trustme CA), no AWS needed.

A tiny server answers PostgreSQL's SSLRequest with 'S' and completes a TLS handshake, like RDS does before
authentication; the probe must tell an untrusted CA from a hostname mismatch and name what it verified.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from helpers.check_support import RefusedPort
from pgiam_tui.diagnose.probe import TlsOutcome, resolve, tcp_connect, tls_probe
from pgiam_tui.vocabulary import CheckCause

SERVER_NAME = "pgdemo.cluster-abc.us-east-1.rds.amazonaws.com"


class SslRequestServer:
    """Answers SSLRequest with ANSWER ('S' or 'N') and, for 'S', does a TLS handshake; stopped by close()."""

    def __init__(self, ctx: ssl.SSLContext, answer: bytes = b"S") -> None:
        self.ctx, self.answer = ctx, answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError, ssl.SSLError):
                    conn.recv(8)
                    conn.sendall(self.answer)
                    if self.answer == b"S":
                        with self.ctx.wrap_socket(conn, server_side=True) as tls:
                            tls.recv(1)  # until the client closes

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="test RDS CA")


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "bundle.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def other_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "other.pem"
    trustme.CA(organization_name="some other CA").cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[SslRequestServer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(SERVER_NAME).configure_cert(ctx)
    srv = SslRequestServer(ctx)
    yield srv
    srv.close()


def _probe(
    server: SslRequestServer,
    *,
    name: str = SERVER_NAME,
    sslmode: str = "verify-full",
    rootcert: Path | str | None,
) -> TlsOutcome:
    sock = tcp_connect("127.0.0.1", server.port, 5)
    return tls_probe(
        sock,
        addr="127.0.0.1",
        port=server.port,
        server_name=name,
        sslmode=sslmode,
        sslrootcert=str(rootcert) if rootcert is not None else None,
        timeout_s=5,
    )


def test_verified_handshake_names_protocol_and_bundle(server: SslRequestServer, ca_file: Path) -> None:
    out = _probe(server, rootcert=ca_file)
    assert out.failure is None, out.message
    assert out.protocol in ("TLSv1.2", "TLSv1.3")
    assert str(ca_file) in out.verified and SERVER_NAME in out.verified
    assert SERVER_NAME in out.peer_names


def test_wrong_bundle_is_untrusted_ca(server: SslRequestServer, other_ca_file: Path) -> None:
    out = _probe(server, rootcert=other_ca_file)
    assert out.failure == CheckCause.UNTRUSTED_CA
    assert any("some other CA" in s for s in out.ca_subjects)


def test_other_name_is_hostname_mismatch_with_covered_names(server: SslRequestServer, ca_file: Path) -> None:
    out = _probe(server, name="127.0.0.1", rootcert=ca_file)
    assert out.failure == CheckCause.HOSTNAME_MISMATCH
    assert SERVER_NAME in out.peer_names


def test_verify_ca_ignores_the_name_but_not_the_chain(
    server: SslRequestServer, ca_file: Path, other_ca_file: Path
) -> None:
    assert _probe(server, name="127.0.0.1", sslmode="verify-ca", rootcert=ca_file).failure is None
    bad = _probe(server, sslmode="verify-ca", rootcert=other_ca_file)
    assert bad.failure == CheckCause.UNTRUSTED_CA


def test_require_does_not_verify(server: SslRequestServer, other_ca_file: Path) -> None:
    out = _probe(server, sslmode="require", rootcert=other_ca_file)
    assert out.failure is None
    assert "NOT verified" in out.verified


def test_missing_bundle_file(server: SslRequestServer, tmp_path: Path) -> None:
    out = _probe(server, rootcert=tmp_path / "nope.pem")
    assert out.failure == CheckCause.CA_FILE


def test_server_refusing_tls(ca: trustme.CA, ca_file: Path) -> None:
    srv = SslRequestServer(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), answer=b"N")
    try:
        out = _probe(srv, rootcert=ca_file)
    finally:
        srv.close()
    assert out.failure == CheckCause.TLS_REFUSED


def test_resolve_failure_and_refused_port() -> None:
    with pytest.raises(OSError):
        resolve("no-such-host.invalid", 5432)
    with RefusedPort() as port, pytest.raises(ConnectionRefusedError):
        tcp_connect("127.0.0.1", port, 2)
