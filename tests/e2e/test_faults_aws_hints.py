"""Fault matrix, AWS side (issue 10): a timeout is reported as a timeout, never as a permissions problem.

Every place that turns an AWS error into a hint is run against a real timeout: moto's server holds the
requests of the stalled services without an answer (the stand-in's `aws_stalled` switch) and botocore's
read timeout (the product's client config) is cut to 3 s so each read gives up quickly. Places: the events
pane (CloudWatch and RDS log-file sources), the IAM pane (inventory, CloudWatch metrics, CloudTrail),
`snapshot` (discovery's error and hint, findings in --json) and `check` (credentials, discovery steps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.config
import psycopg
import pytest
from pgiam_sandbox import Sandbox

from helpers.check_support import check
from pgiam_tui.aws import session as aws_session
from pgiam_tui.aws.discovery import resolve_cluster
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.collect.events import EventsCollector
from pgiam_tui.collect.iam_mapping import IamMappingCollector
from pgiam_tui.commands import snapshot as snapshot_command
from pgiam_tui.config import ClusterConfig, Config, load_config
from pgiam_tui.model import Finding
from pgiam_tui.vocabulary import FindingCode, LogSource

pytestmark = pytest.mark.timeout(300)

AWS_FINDINGS = {
    FindingCode.EVENTS_UNREADABLE,
    FindingCode.IAM_LOG_UNREADABLE,
    FindingCode.IAM_UNREADABLE,
    FindingCode.METRICS_UNREADABLE,
    FindingCode.CLOUDTRAIL_UNREADABLE,
}


@pytest.fixture(autouse=True)
def quick_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore gives up after 3 s without an answer, in one attempt (the product's 20 s twice only makes
    the wait longer); 3 s leaves the requests that are not stalled ample time on a loaded machine."""
    quick = botocore.config.Config(connect_timeout=3, read_timeout=3, user_agent_extra="pgiam-tui")
    monkeypatch.setattr(aws_session, "_CLIENT_CONFIG", quick)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@contextmanager
def stalled(sandbox: Sandbox, *services: str) -> Iterator[None]:
    """AWS holds every request of SERVICES without an answer until the block ends."""
    sandbox.switches.aws_stalled = set(services)
    try:
        yield
    finally:
        sandbox.switches.aws_stalled = set()


def says_timeout(message: str, fix: str | None) -> None:
    """MESSAGE names a timeout and FIX suggests no permission (it may say a timeout is not one)."""
    assert "timeout" in message.lower() or "timed out" in message.lower(), message
    fix_text = (fix or "").lower()
    assert "did not answer in time" in fix_text or "timing out" in fix_text, fix
    for wrong in ("allow ", "grant ", "iam policy", "securityaudit", "logs:", "rds:", "iam:", "cloudwatch:"):
        assert wrong not in fix_text, fix


def aws_findings(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.code in AWS_FINDINGS]


@pytest.fixture
def config(sandbox: Sandbox) -> Config:
    return load_config(sandbox.profiles_toml)


@pytest.fixture
def aurora_cfg(sandbox: Sandbox, config: Config) -> ClusterConfig:
    name = next(c.name for c in sandbox.clusters if c.kind == "aurora")
    return config.cluster(name)


@pytest.fixture
def sessions(tmp_path: Path) -> SessionFactory:
    return SessionFactory(cache_dir=tmp_path / "cli-cache")


@pytest.mark.parametrize(
    ("log_source", "service"), [(LogSource.CLOUDWATCH, "logs"), (LogSource.RDS_LOGFILE, "rds")]
)
async def test_events_pane_reports_an_aws_timeout_as_a_timeout(
    sandbox: Sandbox,
    aurora_cfg: ClusterConfig,
    sessions: SessionFactory,
    log_source: LogSource,
    service: str,
) -> None:
    cfg = replace(aurora_cfg, log_source=log_source)
    session = await asyncio.to_thread(sessions.session, cfg.profile)
    resolved = await asyncio.to_thread(resolve_cluster, cfg, session)
    collector = EventsCollector(cfg)
    with stalled(sandbox, service, "logs"):
        await collector.collect(resolved, session)
    found = aws_findings(collector.problems)
    assert any(f.code == FindingCode.EVENTS_UNREADABLE for f in found), collector.problems
    for f in found:
        says_timeout(f.message, f.fix)


async def test_iam_pane_reports_an_aws_timeout_as_a_timeout(
    sandbox: Sandbox, aurora_cfg: ClusterConfig, sessions: SessionFactory
) -> None:
    cfg = replace(aurora_cfg, cloudtrail=True)
    session = await asyncio.to_thread(sessions.session, cfg.profile)
    resolved = await asyncio.to_thread(resolve_cluster, cfg, session)
    writer = next(c.writer for c in sandbox.clusters if c.name == cfg.name)
    assert writer is not None
    admin = await psycopg.AsyncConnection.connect(sandbox.admin_dsn(cfg.name, writer.id), autocommit=True)

    async def fetch(sql: Any, params: Any) -> list[tuple[Any, ...]]:
        cur = await admin.execute(sql, params)
        return await cur.fetchall()

    collector = IamMappingCollector(cfg)
    try:
        with stalled(sandbox, "iam", "monitoring", "cloudtrail"):
            iam = await collector.collect(resolved, session, fetch)
    finally:
        await admin.close()
    found = aws_findings(iam.findings)
    codes = {f.code for f in found}
    assert {FindingCode.IAM_UNREADABLE, FindingCode.METRICS_UNREADABLE} <= codes, iam.findings
    for f in found:
        says_timeout(f.message, f.fix)


def _snapshot(config: Config, name: str, capsys: pytest.CaptureFixture[str], *, as_json: bool) -> str:
    args = argparse.Namespace(config=str(config.path), cluster=[name], json=as_json)
    capsys.readouterr()
    snapshot_command.run(args)
    return capsys.readouterr().out


async def test_snapshot_reports_an_aws_timeout_as_a_timeout(
    sandbox: Sandbox, aurora_cfg: ClusterConfig, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    # discovery (rds) stalled: the cluster's error is a timeout, and so is its hint
    with stalled(sandbox, "rds"):
        text = await asyncio.to_thread(_snapshot, config, aurora_cfg.name, capsys, as_json=False)
    error = next(line for line in text.splitlines() if line.strip().startswith("error ["))
    hint = next(line for line in text.splitlines() if line.strip().startswith("hint:"))
    says_timeout(error, hint)
    assert "error [discovery]" in error, error
    # discovery answers, the log, metrics and IAM reads do not: each finding says timeout
    with stalled(sandbox, "logs", "iam", "monitoring"):
        out = await asyncio.to_thread(_snapshot, config, aurora_cfg.name, capsys, as_json=True)
    clusters = json.loads(out)["clusters"]
    findings = [f for c in clusters for f in c["findings"] if f["code"] in AWS_FINDINGS]
    assert any(f["code"] == FindingCode.EVENTS_UNREADABLE for f in findings), clusters[0]["findings"]
    for f in findings:
        says_timeout(f["message"], f["fix"])


@pytest.mark.parametrize("service", ["sts", "rds"])
async def test_check_reports_an_aws_timeout_as_a_timeout(
    sandbox: Sandbox, aurora_cfg: ClusterConfig, sessions: SessionFactory, service: str
) -> None:
    # a profile with static keys: with the role chain's, botocore's own AssumeRole client (60 s read timeout,
    # not the product's client config) would be the one waiting for STS
    cfg = replace(aurora_cfg, profile="sandbox-db-admin")
    with stalled(sandbox, service):
        result = await check(cfg, sessions)
    assert result.cause == "aws_timeout", result
    failing = [s for s in result.steps if s.status == "failed"]
    assert failing
    for step in failing:
        says_timeout(step.detail, step.hint)
