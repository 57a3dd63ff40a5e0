"""moto's server in this process, over real HTTP on a free loopback port.

Not ``mock_aws``: that resets every moto backend of the process, which would wipe a session-wide sandbox.
Tests make their own uniquely named resources in moto's default account instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest


@contextmanager
def running_moto() -> Iterator[str]:
    """Start a ThreadedMotoServer on 127.0.0.1 (port chosen by the OS), yield its URL, stop it on exit."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_session(url: str, monkeypatch: pytest.MonkeyPatch, region: str = "us-east-1") -> boto3.Session:
    """A boto3 session whose clients talk to the moto server at URL (AWS_ENDPOINT_URL, as the product reads
    it), with moto's default test keys (requests land in moto's default account 123456789012)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
