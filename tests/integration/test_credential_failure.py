"""Credentials failures say their real reason under the credentials step (issue 10): an instance metadata
service that refuses, hangs or has no role is named as such (botocore itself only says "No credentials
found"), and an AWS endpoint that does not answer is a timeout, never a permissions problem. The services
are small local listeners; botocore and the check are the real ones."""

from __future__ import annotations

import http.server
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import botocore.config
import botocore.session
import pytest

from helpers.aws_env import only_these_aws_files
from helpers.check_support import RefusedPort
from pgiam_tui.aws import session as aws_session
from pgiam_tui.aws.credential_failure import credential_failure
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import parse_config
from pgiam_tui.diagnose import CheckResult, CheckStep, run_check

AWS_CONFIG = """
[profile on-ec2]
role_arn = arn:aws:iam::111111111111:role/pg-monitor-role
credential_source = Ec2InstanceMetadata
region = us-east-1

[profile static]
aws_access_key_id = AKIAEXAMPLESTATIC01
aws_secret_access_key = never-printed
region = us-east-1
"""

CLUSTERS = """
[[clusters]]
name = "via-ec2"
profile = "on-ec2"
endpoint = "pgdemo.cluster-abc.us-east-1.rds.amazonaws.com"
region = "us-east-1"
user = "pgmonitor"
database = "demo"

[[clusters]]
name = "via-static"
profile = "static"
endpoint = "pgdemo.cluster-abc.us-east-1.rds.amazonaws.com"
region = "us-east-1"
user = "pgmonitor"
database = "demo"
"""


class Silent:
    """Accepts TCP connections and never answers (a stalled service)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def close(self) -> None:
        self.sock.close()


class NoRoleImds(http.server.BaseHTTPRequestHandler):
    """IMDSv2 that hands out tokens but has no role attached (404 on the role list)."""

    def do_PUT(self) -> None:
        body = b"token-for-test"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "aws-config"
    config.write_text(textwrap.dedent(AWS_CONFIG), encoding="utf-8")
    only_these_aws_files(monkeypatch, config, tmp_path / "none")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "1")
    monkeypatch.setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return tmp_path


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL whose port refuses every connection (held by the test, so no other process can listen there)."""
    with RefusedPort() as port:
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


@pytest.fixture
def no_role_imds() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoRoleImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def botocore_failure(profile: str) -> BaseException:
    """What botocore raises for PROFILE's credentials (its own words: 'No credentials found')."""
    session = botocore.session.Session(profile=profile)
    try:
        credentials = session.get_credentials()
        assert credentials is not None
        credentials.get_frozen_credentials()
    except Exception as exc:
        return exc
    raise AssertionError("botocore found credentials")


def test_refused_imds_is_named(aws_files: Path, monkeypatch: pytest.MonkeyPatch, refused_url: str) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", refused_url)
    exc = botocore_failure("on-ec2")
    assert "No credentials found" in str(exc)  # all botocore says
    err = credential_failure(exc, "on-ec2")
    assert err is not None and err.kind == "imds_unreachable"
    assert "instance metadata service at http://127.0.0.1:" in err.message
    assert "cannot be reached" in err.message


def test_stalled_imds_is_a_timeout(aws_files: Path, monkeypatch: pytest.MonkeyPatch, silent: Silent) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", silent.url)
    err = credential_failure(botocore_failure("on-ec2"), "on-ec2")
    assert err is not None
    assert "accepted the connection but did not answer within 1 s" in err.message


def test_imds_without_role(aws_files: Path, monkeypatch: pytest.MonkeyPatch, no_role_imds: str) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", no_role_imds)
    err = credential_failure(botocore_failure("on-ec2"), "on-ec2")
    assert err is not None and "no IAM role is attached to this instance" in err.message


def test_not_a_credentials_problem_is_left_alone() -> None:
    assert credential_failure(ValueError("x"), "p") is None


async def _check_failing_at_credentials(
    aws_files: Path, name: str
) -> tuple[CheckResult, dict[str, CheckStep]]:
    """`check` of cluster NAME of CLUSTERS (a private CLI cache), which must fail at its credentials step:
    the result and its steps by name."""
    cfg = parse_config(CLUSTERS, aws_files / "profiles.toml").cluster(name)
    result = await run_check(cfg, SessionFactory(cache_dir=aws_files / "cache"))
    steps = {s.name: s for s in result.steps}
    assert steps["credentials"].status == "failed", result.steps
    return result, steps


async def test_check_reports_imds_outage_under_credentials(
    aws_files: Path, monkeypatch: pytest.MonkeyPatch, refused_url: str
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", refused_url)
    result, steps = await _check_failing_at_credentials(aws_files, "via-ec2")
    assert result.cause == "imds_unreachable"
    assert "cannot be reached" in (steps["credentials"].detail or "")
    assert steps["discovery"].status == "skipped"


async def test_check_reports_a_stalled_sts_as_a_timeout(
    aws_files: Path, monkeypatch: pytest.MonkeyPatch, silent: Silent
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
    # the product's 20 s read timeout, shortened for the test
    monkeypatch.setattr(
        aws_session, "_CLIENT_CONFIG", botocore.config.Config(connect_timeout=1, read_timeout=1)
    )
    result, steps = await _check_failing_at_credentials(aws_files, "via-static")
    assert result.cause == "aws_timeout"
    assert "did not answer in time" in (steps["credentials"].detail or "")
    assert "permission" not in (result.fix or "").replace("says nothing about permissions", "")
