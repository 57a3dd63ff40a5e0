"""The IAM pane's "cannot read IAM" fix follows the rule of every AWS read (aws_read_fix): a permission only
when AWS refused; a timeout, an unreachable endpoint or throttling say what they were. Each failure is one a
real botocore IAM client raises: against a closed port, against a port that never answers, and (Stubber:
no local server throttles) with the error codes IAM documents at
https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.config
import botocore.exceptions as bx
import pytest
from botocore.stub import Stubber

from pgiam_tui.aws.errors import AWS_THROTTLED_FIX, AWS_TIMEOUT_FIX, AWS_UNREACHABLE_FIX
from pgiam_tui.aws.iam_read import IamReadError, read_inventory
from pgiam_tui.collect.iam_findings import MappingContext, build_snapshot
from pgiam_tui.vocabulary import FindingCode

pytestmark = pytest.mark.unit

NOW = datetime(2025, 9, 22, tzinfo=UTC)
CTX = MappingContext(
    region="us-east-1",
    account_id="111111111111",
    resource_id="cluster-ABCDEFGHIJKLMNOP",
    iam_auth_enabled=True,
    identifiers=frozenset({"pgdemo-1"}),
    monitor_user="pgmonitor",
    kind="aurora",
    cluster_label="pgdemo-1",
)


def _iam(endpoint: str = "http://127.0.0.1:9") -> Any:
    config = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=0.2)
    return boto3.client(
        "iam", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="x",
        aws_secret_access_key="y", config=config,
    )  # fmt: skip


def _failure(client: Any) -> IamReadError:
    """What reading IAM with CLIENT fails with, as the collector keeps it (IamMappingCollector._read_iam)."""
    try:
        read_inventory(client)
    except IamReadError as err:
        return err
    except Exception as other:
        return IamReadError(f"{type(other).__name__}: {other}", code="Error", permission=None, cause=other)
    raise AssertionError("reading IAM did not fail")


def _fix(error: IamReadError) -> str:
    snap = build_snapshot(CTX, [], None, iam_error=error, iam_profile="iam-reader", now=NOW)
    (finding,) = [f for f in snap.findings if f.code == FindingCode.IAM_UNREADABLE]
    return finding.fix


def _answered(code: str) -> IamReadError:
    client = _iam()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_account_authorization_details", service_error_code=code, http_status_code=400
        )
        return _failure(client)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_refusal_names_the_permission() -> None:
    error = _answered("AccessDenied")
    assert error.denied
    assert "allow iam:GetAccountAuthorizationDetails to profile iam-reader" in _fix(error)


def test_throttling_is_no_missing_permission() -> None:
    assert _fix(_answered("Throttling")) == AWS_THROTTLED_FIX


def test_a_timeout_is_no_missing_permission(silent_port: int) -> None:
    error = _failure(_iam(f"http://127.0.0.1:{silent_port}"))
    assert isinstance(error.cause, bx.ReadTimeoutError)
    assert _fix(error) == AWS_TIMEOUT_FIX


def test_an_unreachable_endpoint_is_no_missing_permission() -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        error = _failure(_iam(f"http://127.0.0.1:{closed.getsockname()[1]}"))
    assert isinstance(error.cause, bx.EndpointConnectionError)
    assert _fix(error) == AWS_UNREACHABLE_FIX
