"""The few pieces of the PostgreSQL v3 wire protocol the front door needs (up to authentication), and the
byte relay it uses once a session is established.

Reference: PostgreSQL docs, "Frontend/Backend Protocol" — message formats. The message helpers are pure
bytes handling; the small async readers take an asyncio.StreamReader; `relay()` moves bytes both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
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


# Authentication requests the client must answer with one message: cleartext (3), MD5 (5), GSS (7),
# GSS continue (8), SSPI (9), SASL (10), SASL continue (11). Ok (0) and SASL final (12) need no answer.
AUTH_NEEDS_REPLY = frozenset({3, 5, 7, 8, 9, 10, 11})


def auth_needs_reply(body: bytes) -> bool:
    """Whether an Authentication ('R') message body asks the client for a reply message."""
    return len(body) >= 4 and struct.unpack("!i", body[:4])[0] in AUTH_NEEDS_REPLY


class _Pipe(asyncio.Protocol):
    """Forwards what its transport receives to `out`; with latency, each chunk waits, order kept.

    Flow control: when this pipe's own transport cannot take more writes (pause_writing), reading from the
    other side stops until it drains.
    """

    def __init__(self, out: asyncio.BaseTransport, done: asyncio.Future[None], latency: Callable[[], float]):
        self.out = out
        self.done = done
        self.latency = latency
        self.queued = 0
        self.not_before = 0.0
        self.ended = False
        # asked before each chunk is forwarded; True: it reset the sending side, drop the chunk (see relay())
        self.cut: Callable[[], bool] | None = None

    def data_received(self, data: bytes) -> None:
        if self.cut is not None and self.cut():
            self.out.close()
            self._finish()
            return
        delay = self.latency()
        if delay <= 0 and self.queued == 0:
            self.out.write(data)  # type: ignore[attr-defined]
            return
        loop = asyncio.get_running_loop()
        # never earlier than the previous chunk: a latency change must not reorder the stream
        self.not_before = max(loop.time() + max(delay, 0.0), self.not_before)
        self.queued += 1
        loop.call_at(self.not_before, self._send_later, data)

    def _send_later(self, data: bytes) -> None:
        self.queued -= 1
        if not self.out.is_closing():
            self.out.write(data)  # type: ignore[attr-defined]
        if self.ended and self.queued == 0:
            self._finish()

    def eof_received(self) -> bool:
        self.ended = True
        if self.queued == 0:
            self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._finish()

    def pause_writing(self) -> None:
        with contextlib.suppress(Exception):
            self.out.pause_reading()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        with contextlib.suppress(Exception):
            self.out.resume_reading()  # type: ignore[attr-defined]

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def reset(transport: asyncio.BaseTransport) -> None:
    """Close TRANSPORT's connection with a TCP RST (SO_LINGER 0, then abort), not an orderly FIN; for a TLS
    transport, no close_notify either: the peer sees "connection reset by peer"."""
    sock = transport.get_extra_info("socket")  # a TLS transport hands out its raw socket's
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def _take_buffered(reader: asyncio.StreamReader) -> bytes:
    # Bytes the StreamReader already holds must go out first. StreamReader has no public way to take them
    # without waiting, so read its buffer directly (stable in CPython 3.11-3.13).
    buf = getattr(reader, "_buffer", None)
    if not buf:
        return b""
    data = bytes(buf)
    buf.clear()
    return data


def _gone(reader: asyncio.StreamReader) -> bool:
    # After _take_buffered, at_eof() is exactly "the peer closed"; exception() is "the connection was lost".
    return reader.at_eof() or reader.exception() is not None


async def relay(
    c_reader: asyncio.StreamReader,
    c_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    switches: object | None,
    reset_now: Callable[[], bool] | None = None,
) -> None:
    """Relay bytes both ways until either side closes; `switches.latency_ms` delays every chunk, both ways.

    `reset_now`, asked whenever the client sends something (a query, once logged in): when it says yes,
    that is not forwarded, the client's connection is reset (TCP RST, as a middlebox or a crashed host does)
    and the backend's closed.

    Takes the transports over from the streams (protocol callbacks instead of a task per direction).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def latency() -> float:
        return float(getattr(switches, "latency_ms", 0) or 0) / 1000.0

    c_transport, b_transport = c_writer.transport, b_writer.transport
    to_backend = _Pipe(b_transport, done, latency)
    if reset_now is not None:

        def reset_client() -> bool:
            if not reset_now():
                return False
            reset(c_transport)
            return True

        to_backend.cut = reset_client
    to_client = _Pipe(c_transport, done, latency)
    pending_c, pending_b = _take_buffered(c_reader), _take_buffered(b_reader)
    c_transport.set_protocol(to_backend)
    b_transport.set_protocol(to_client)
    if pending_c:
        to_backend.data_received(pending_c)
    if pending_b:
        to_client.data_received(pending_b)
    for transport in (c_transport, b_transport):
        with contextlib.suppress(Exception):
            transport.resume_reading()  # type: ignore[attr-defined]  # the stream may have paused it
        if transport.is_closing():
            to_backend._finish()
    # A side whose end of file reached its stream before the hand-over will not tell our protocols again
    # (a TLS transport is not "closing" until its shutdown completes): relaying on would keep the other side's
    # session open for good.
    if any(_gone(stream) for stream in (c_reader, b_reader)):
        to_backend._finish()
    try:
        await done
    finally:
        for transport in (c_transport, b_transport):
            transport.close()
