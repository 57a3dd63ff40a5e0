"""The stand-in's `aws_stalled` switch (pgiam_sandbox/fake_aws.py): moto's server holds the requests of the
stalled services without an answer, as a stalled AWS endpoint does; a real boto3 client sees its read timeout.
A server that stops lets the requests it holds go (no thread left waiting on the switch)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from pgiam_sandbox.fake_aws import MotoServer, credential_scope

pytestmark = pytest.mark.integration

# one attempt, a short read timeout: the stalled call fails fast instead of retrying for a minute
_CONFIG = botocore.config.Config(read_timeout=1, connect_timeout=5, retries={"total_max_attempts": 1})


def _sts(url: str) -> Any:
    return boto3.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region_name="us-east-1",
    ).client("sts", endpoint_url=url, config=_CONFIG)


def test_credential_scope_of_a_sigv4_header() -> None:
    # AWS's SigV4 example, Amazon S3 API Reference, "Signature Calculations for the Authorization Header",
    # example "GET Object" (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-date, "
        "Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
    )
    assert credential_scope(header) == ("AKIAIOSFODNN7EXAMPLE", "us-east-1", "s3")
    assert credential_scope("") is None
    assert credential_scope("Basic dXNlcjpwYXNz") is None


def test_stalled_services_get_no_answer_and_others_do() -> None:
    stalled: set[str] = set()
    moto = MotoServer(stalled=lambda: stalled)
    moto.start()
    try:
        sts = _sts(moto.url)
        stalled.add("rds")  # another service stalled: STS answers
        assert sts.get_caller_identity()["Account"]
        stalled.add("sts")
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            sts.get_caller_identity()
        stalled.clear()
        stalled.add("*")
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            sts.get_caller_identity()
        stalled.clear()
        assert sts.get_caller_identity()["Account"]
    finally:
        moto.stop()


def test_stop_lets_held_requests_go_while_the_switch_is_on() -> None:
    held: list[threading.Thread] = []
    holding = threading.Event()

    def stalled() -> set[str]:
        if not holding.is_set():
            held.append(threading.current_thread())  # the server's thread that holds the request
            holding.set()
        return {"*"}

    moto = MotoServer(stalled=stalled)
    moto.start()
    client = threading.Thread(target=lambda: _call_ignoring_errors(moto.url), daemon=True)
    try:
        client.start()
        assert holding.wait(30), "the request never reached the server"
    finally:
        moto.stop()
    (thread,) = held
    thread.join(30)
    assert not thread.is_alive(), "a request held by the stall switch outlived the server"
    client.join(30)


def _call_ignoring_errors(url: str) -> None:
    # a timeout or a dropped connection: what a stalled, then stopped AWS gives
    with contextlib.suppress(botocore.exceptions.BotoCoreError):
        _sts(url).get_caller_identity()
