"""The few pieces of the PostgreSQL v3 wire protocol the front door needs (up to authentication).

Reference: PostgreSQL docs, "Frontend/Backend Protocol" — message formats. Everything here is pure bytes
handling; no I/O except the small async readers, which take an asyncio.StreamReader.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

PROTOCOL_V3 = 196608  # 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000  # PostgreSQL's own limit on a startup packet
MAX_MESSAGE = 1 << 20  # authentication-phase messages are small; refuse absurd lengths


class ProtocolError(Exception):
    """The peer sent something that is not valid protocol; str() is safe to log."""


@dataclass(frozen=True)
class StartupPacket:
    """The first packet of a connection: its request code and, for a StartupMessage, its parameters."""

    code: int
    params: dict[str, str]
    raw: bytes  # the complete packet, length included (forwarded as is for CancelRequest)


async def read_startup(reader: asyncio.StreamReader) -> StartupPacket:
    """Read an untyped startup-phase packet (SSLRequest, GSSENCRequest, CancelRequest or StartupMessage)."""
    head = await reader.readexactly(8)
    length, code = struct.unpack("!ii", head)
    if length < 8 or length > MAX_STARTUP:
        raise ProtocolError(f"invalid startup packet length {length}")
    body = await reader.readexactly(length - 8)
    params: dict[str, str] = {}
    if code == PROTOCOL_V3:
        params = parse_params(body)
    return StartupPacket(code, params, head + body)


def parse_params(body: bytes) -> dict[str, str]:
    """Name/value pairs of a StartupMessage body (NUL-terminated strings, ending with an empty name)."""
    parts = body.split(b"\x00")
    params: dict[str, str] = {}
    i = 0
    while i + 1 < len(parts) and parts[i]:
        try:
            params[parts[i].decode()] = parts[i + 1].decode()
        except UnicodeDecodeError:
            raise ProtocolError("startup parameter is not valid UTF-8") from None
        i += 2
    if "user" not in params:
        raise ProtocolError("no PostgreSQL user name specified in startup packet")
    return params


def startup_message(params: dict[str, str]) -> bytes:
    """Encode a v3 StartupMessage."""
    body = struct.pack("!i", PROTOCOL_V3)
    for key, value in params.items():
        body += key.encode() + b"\x00" + value.encode() + b"\x00"
    body += b"\x00"
    return struct.pack("!i", len(body) + 4) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one typed message: (type byte, body without the length)."""
    head = await reader.readexactly(5)
    kind = head[:1]
    (length,) = struct.unpack("!i", head[1:])
    if length < 4 or length > MAX_MESSAGE:
        raise ProtocolError(f"invalid message length {length} for type {kind!r}")
    return kind, await reader.readexactly(length - 4)


def message(kind: bytes, body: bytes) -> bytes:
    """Encode a typed message."""
    return kind + struct.pack("!i", len(body) + 4) + body


AUTH_CLEARTEXT = message(b"R", struct.pack("!i", 3))


def error_response(severity: str, sqlstate: str, text: str) -> bytes:
    """An ErrorResponse with severity (S and V), SQLSTATE and message."""
    fields = b""
    for code, value in ((b"S", severity), (b"V", severity), (b"C", sqlstate), (b"M", text)):
        fields += code + value.encode() + b"\x00"
    return message(b"E", fields + b"\x00")


def parse_error(body: bytes) -> dict[str, str]:
    """Fields of an ErrorResponse / NoticeResponse body, keyed by their one-letter code."""
    out: dict[str, str] = {}
    for field in body.split(b"\x00"):
        if field:
            out[chr(field[0])] = field[1:].decode("utf-8", "replace")
    return out


def password_from(body: bytes) -> str:
    """The password of a PasswordMessage body (NUL-terminated)."""
    return body.split(b"\x00", 1)[0].decode("utf-8", "replace")
