"""Network probes of the check: name lookup, TCP connect and PostgreSQL's TLS handshake, done by hand.

libpq reports TLS trouble as one flat string; doing the handshake ourselves (SSLRequest, then `ssl` with the
configured CA bundle and hostname check) tells an untrusted CA from a hostname mismatch precisely, names the
CA bundle used and the names the server's certificate does cover. All functions here are blocking: callers
run them in a thread.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pgiam_tui.vocabulary import CheckCause

# PostgreSQL's SSLRequest: length 8, then the magic code 1234.5679.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)

# OpenSSL verify codes (X509_V_ERR_*) that mean "the chain does not lead to a CA we trust".
_UNTRUSTED_CODES = {2, 18, 19, 20, 21, 27}
# 62: host name mismatch, 64: IP address mismatch (connecting "to 127.0.0.1" with verify-full)
_NAME_MISMATCH = {62, 64}
_CERT_EXPIRED = 10
_CERT_NOT_YET_VALID = 9

TlsFailure = Literal[
    CheckCause.UNTRUSTED_CA,
    CheckCause.HOSTNAME_MISMATCH,
    CheckCause.CERT_EXPIRED,
    CheckCause.TLS_REFUSED,
    CheckCause.TLS_ERROR,
    CheckCause.CA_FILE,
]


def is_ip(host: str) -> bool:
    """True when HOST is a literal IPv4/IPv6 address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int) -> list[str]:
    """The addresses HOST resolves to (socket.gaierror when it does not)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


def tcp_connect(addr: str, port: int, timeout_s: float) -> socket.socket:
    """A connected TCP socket (OSError / TimeoutError as the OS reports them)."""
    return socket.create_connection((addr, port), timeout=timeout_s)


@dataclass(frozen=True)
class TlsOutcome:
    """What the TLS handshake showed. `failure` is None when it succeeded."""

    failure: TlsFailure | None
    message: str
    protocol: str | None = None
    cipher: str | None = None
    verified: str = ""  # e.g. "verified against /path/ca.pem (chain and hostname)"
    peer_names: tuple[str, ...] = ()  # names the server's certificate covers (when we could read them)
    ca_subjects: tuple[str, ...] = ()  # subjects of the CAs in the bundle


def ca_file_for(sslrootcert: str | None) -> str | None:
    """The CA file libpq would use: sslrootcert, else ~/.postgresql/root.crt ("system": the OS store)."""
    if sslrootcert:
        return sslrootcert
    default = Path.home() / ".postgresql" / "root.crt"
    return str(default)


def _subject(cert: dict[str, Any]) -> str:
    parts = []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            parts.append(f"{key}={value}")
    return ", ".join(parts) or "?"


def _names(cert: dict[str, Any]) -> tuple[str, ...]:
    names = [str(v) for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    if not names:
        for rdn in cert.get("subject", ()):
            names.extend(str(v) for k, v in rdn if k == "commonName")
    return tuple(names)


def _context(sslmode: str, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if sslmode in ("verify-ca", "verify-full"):
        if ca_file == "system":
            ctx.load_default_certs()
        elif ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        ctx.check_hostname = sslmode == "verify-full"
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _handshake(sock: socket.socket, ctx: ssl.SSLContext, server_name: str) -> ssl.SSLSocket:
    """Ask for TLS the PostgreSQL way and wrap SOCK; ConnectionError('N') when the server says no."""
    sock.sendall(_SSL_REQUEST)
    answer = sock.recv(1)
    if answer != b"S":
        raise ConnectionRefusedError("server refused TLS" if answer == b"N" else "no answer to SSLRequest")
    # SNI and hostname check use the endpoint name even when TCP goes to a tunnel address.
    return ctx.wrap_socket(sock, server_hostname=server_name)


def _peer_names(
    addr: str, port: int, timeout_s: float, server_name: str, ca_file: str | None
) -> tuple[str, ...]:
    """Names in the server certificate, read over a second connection verified for the chain only."""
    try:
        ctx = _context("verify-ca", ca_file)
        with tcp_connect(addr, port, timeout_s) as sock, _handshake(sock, ctx, server_name) as tls:
            cert = tls.getpeercert()
            return _names(cert) if cert else ()
    except (OSError, ssl.SSLError, ValueError):
        return ()


def tls_probe(
    sock: socket.socket,
    *,
    addr: str,
    port: int,
    server_name: str,
    sslmode: str,
    sslrootcert: str | None,
    timeout_s: float,
) -> TlsOutcome:
    """TLS handshake over the connected SOCK (closed afterwards) as libpq would do it for SSLMODE."""
    ca_file = ca_file_for(sslrootcert) if sslmode in ("verify-ca", "verify-full") else None
    ca_subjects: tuple[str, ...] = ()
    try:
        ctx = _context(sslmode, ca_file)
        ca_subjects = tuple(_subject(c) for c in ctx.get_ca_certs())
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return TlsOutcome(CheckCause.CA_FILE, f"cannot load CA bundle {ca_file}: {reason}")
    try:
        sock.settimeout(timeout_s)
        with _handshake(sock, ctx, server_name) as tls:
            cipher = tls.cipher()
            if sslmode == "verify-full":
                verified = f"verified against {ca_file} (chain and hostname {server_name})"
            elif sslmode == "verify-ca":
                verified = f"chain verified against {ca_file}; hostname NOT checked (sslmode=verify-ca)"
            else:
                verified = f"certificate NOT verified (sslmode={sslmode})"
            cert = tls.getpeercert() if sslmode in ("verify-ca", "verify-full") else None
            return TlsOutcome(
                None,
                "handshake complete",
                protocol=tls.version(),
                cipher=cipher[0] if cipher else None,
                verified=verified,
                peer_names=_names(cert) if cert else (),
                ca_subjects=ca_subjects,
            )
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
        message = exc.verify_message or str(exc)
        if code in _NAME_MISMATCH:
            names = _peer_names(addr, port, timeout_s, server_name, ca_file)
            return TlsOutcome(
                CheckCause.HOSTNAME_MISMATCH, message, peer_names=names, ca_subjects=ca_subjects
            )
        if code in (_CERT_EXPIRED, _CERT_NOT_YET_VALID):
            return TlsOutcome(CheckCause.CERT_EXPIRED, message, ca_subjects=ca_subjects)
        if code in _UNTRUSTED_CODES:
            return TlsOutcome(CheckCause.UNTRUSTED_CA, message, ca_subjects=ca_subjects)
        return TlsOutcome(CheckCause.TLS_ERROR, message, ca_subjects=ca_subjects)
    except TimeoutError:
        return TlsOutcome(
            CheckCause.TLS_ERROR,
            f"no TLS answer within {timeout_s:g} s (is this PostgreSQL?)",
            ca_subjects=ca_subjects,
        )
    except ConnectionRefusedError as exc:
        return TlsOutcome(CheckCause.TLS_REFUSED, str(exc), ca_subjects=ca_subjects)
    except (ssl.SSLError, OSError) as exc:
        return TlsOutcome(CheckCause.TLS_ERROR, str(exc) or type(exc).__name__, ca_subjects=ca_subjects)
    finally:
        sock.close()
