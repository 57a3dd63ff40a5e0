"""The stand-in's HTTP servers (IMDS, moto) say nothing on the terminal when a client goes away mid-request.

Issue 10: after a SIGSTOP of the console, `sandbox up` printed six BrokenPipeError tracebacks from its IMDS.
Here clients reset their connection (SO_LINGER 0) right after sending a request, over and over; the server's
stderr must stay free of tracebacks and it must keep answering.
"""

from __future__ import annotations

import socket
import struct
import urllib.request

import pytest
from pgiam_sandbox.fake_aws import MotoServer
from pgiam_sandbox.imds import ImdsServer

RESETS = 30


def _reset_after_sending(port: int, request: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close() sends RST
    sock.sendall(request)
    sock.close()


def _imds_token(port: int) -> str:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def test_imds_is_quiet_when_clients_reset(capfd: pytest.CaptureFixture[str]) -> None:
    imds = ImdsServer("222222222222")
    imds.start()
    try:
        put = b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"
        half = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n"  # headers never end
        for _ in range(RESETS):
            _reset_after_sending(imds.port, put)
            _reset_after_sending(imds.port, half)
        assert _imds_token(imds.port)  # still serving
    finally:
        imds.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err[:2000]


def test_moto_is_quiet_when_clients_reset(capfd: pytest.CaptureFixture[str]) -> None:
    moto = MotoServer()
    moto.start()
    try:
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        post = (
            b"POST / HTTP/1.1\r\nHost: sts.amazonaws.com\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body) + 100}\r\n\r\n".encode()  # more body promised than sent
            + body
        )
        for _ in range(RESETS):
            _reset_after_sending(moto.port, post)
        with urllib.request.urlopen(f"{moto.url}/moto-api/", timeout=10) as resp:
            assert resp.status == 200
    finally:
        moto.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err[:2000]
