"""Helpers shared by the check's sandbox tests (no tests here): fixtures, configs, fault injectors, servers.

A test module takes the fixtures by importing them (pytest finds a fixture by its `name` in the module):
`from helpers.check_support import private_sessions, sandbox_config  # noqa: F401`.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import ClusterConfig, Config, load_config
from pgiam_tui.diagnose import CheckResult, run_check

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox, SandboxCluster

ADMIN = "sandbox-db-admin"
MONITOR_POLICY = "pg-db-monitor-policy"


@pytest.fixture(scope="module", name="config")
def sandbox_config(sandbox: Sandbox) -> Config:
    """`config`: the sandbox's own profiles.toml, loaded."""
    return load_config(sandbox.profiles_toml)


@pytest.fixture(name="sessions")
def private_sessions(tmp_path: Path) -> SessionFactory:
    """`sessions`: a SessionFactory with a CLI cache of the test's own, so that a fault in one test never
    leaves cached credentials for the next."""
    return SessionFactory(cache_dir=tmp_path / "aws-cli-cache")


def aurora(
    sandbox: Sandbox, config: Config, region: str = "us-east-1"
) -> tuple[ClusterConfig, SandboxCluster]:
    """An Aurora cluster of the sandbox in REGION with its config entry."""
    for c in sandbox.clusters:
        if c.kind == "aurora" and c.region == region:
            return config.cluster(c.name), c
    raise AssertionError(f"no aurora cluster in {region}")


def direct(cfg: ClusterConfig, sb: SandboxCluster, **changes: Any) -> ClusterConfig:
    """CFG as a directly given endpoint (no discovery), through the cluster endpoint's front door."""
    base = replace(
        cfg,
        cluster_id=None,
        instance_id=None,
        endpoint=sb.endpoint,
        port=5432,
        resource_id=sb.resource_id,
        account_id=sb.account_id,
        tunnels=(),
        hostaddr="127.0.0.1",
        local_port=sb.listen_port,
    )
    return replace(base, **changes)


async def check(cfg: ClusterConfig, sessions: SessionFactory, **kwargs: Any) -> CheckResult:
    # A generous cap on waiting for AWS's log line: the check stops waiting as soon as the line is there,
    # and a loaded test machine must not turn "AWS's log decided" into "inference".
    kwargs.setdefault("log_wait_s", 15.0)
    result = await run_check(cfg, sessions, **kwargs)
    assert result.steps[0].name == "config"
    return result


def failed(result: CheckResult) -> str:
    """Name of the first failed step (for readable asserts)."""
    step = result.failed_step
    return step.name if step else "none"


def set_cluster_iam_flag(sandbox: Sandbox, sb: SandboxCluster, enabled: bool) -> None:
    """modify_db_cluster(EnableIAMDatabaseAuthentication=...) through moto's API, as an operator would."""
    assert sb.cluster_id is not None
    rds = sandbox.boto_session(ADMIN).client("rds", region_name=sb.region)
    rds.modify_db_cluster(
        DBClusterIdentifier=sb.cluster_id, EnableIAMDatabaseAuthentication=enabled, ApplyImmediately=True
    )


def admin_sql(sandbox: Sandbox, sb: SandboxCluster, sql: str) -> None:
    """SQL as the sandbox superuser on every instance of the cluster (counts for the very next login)."""
    sandbox.admin_sql(sb.name, sql)


class WrongMonitorPolicy:
    """Make pg-db-monitor-policy's default version name RESOURCE (restored on exit)."""

    def __init__(self, sandbox: Sandbox, sb: SandboxCluster, resource: str) -> None:
        self.iam = sandbox.boto_session(ADMIN).client("iam")
        self.arn = f"arn:aws:iam::{sandbox.db_account_id}:policy/{MONITOR_POLICY}"
        self.document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "rds-db:connect",
                    "Resource": f"arn:aws:rds-db:{sb.region}:{sb.account_id}:{resource}",
                }
            ],
        }

    def __enter__(self) -> None:
        self.old = self.iam.get_policy(PolicyArn=self.arn)["Policy"]["DefaultVersionId"]
        new = self.iam.create_policy_version(
            PolicyArn=self.arn, PolicyDocument=json.dumps(self.document), SetAsDefault=True
        )
        self.new = new["PolicyVersion"]["VersionId"]

    def __exit__(self, *exc: object) -> None:
        self.iam.set_default_policy_version(PolicyArn=self.arn, VersionId=self.old)
        self.iam.delete_policy_version(PolicyArn=self.arn, VersionId=self.new)


class RefusedPort:
    """A loopback port that refuses every connection while the block runs: bound by us, never listening.

    Held, not just "free a moment ago": a second test run on the same machine cannot start a server on it.
    """

    def __enter__(self) -> int:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return int(self.socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.socket.close()


class UnansweringPort:
    """A port whose accept queue is full, so a new connect() hangs until its timeout (SYNs are dropped)."""

    def __enter__(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(4):  # backlog 0 still admits one or two; fill it
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            self.fillers.append(c)
        return port

    def __exit__(self, *exc: object) -> None:
        for c in self.fillers:
            c.close()
        self.listener.close()
