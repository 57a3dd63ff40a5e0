"""Fault matrix, AWS side (issue 10 item 3): the AWS API stalls (every request to moto held without an
answer, by a relay the monitor's AWS_ENDPOINT_URL points at). Activity rounds keep coming with fresh rows;
the AWS-fed parts (discovery, events) say within their budget that AWS does not answer, as a timeout; when
AWS answers again they are fresh again. A secrets scan runs over everything the session wrote."""

from __future__ import annotations

import functools
import json
import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pgiam_sandbox import Sandbox

from helpers.faults import PausableProxy, Snapshots, Stopwatch, record_figure
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.config import Config, load_config
from pgiam_tui.db.connection import utcnow
from pgiam_tui.jsonout import snapshot_to_json
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.monitor import Monitor


def _answered_since(snap: ClusterSnapshot, name: str, when: datetime) -> bool:
    return snap.name == name and snap.status == "ok" and _fresh_after(snap, when)


def _fresh_after(snap: ClusterSnapshot, when: datetime) -> bool:
    return all(
        i.freshness.collected_at is not None and i.freshness.collected_at > when for i in snap.instances
    )


async def test_aws_stall_never_holds_up_activity(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(sandbox.endpoint_url)
    assert target.hostname is not None and target.port is not None
    proxy = PausableProxy(target.hostname, target.port)
    await proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    caplog.set_level(logging.DEBUG)
    config = load_config(sandbox.profiles_toml)
    names = [c.name for c in config.clusters[:2]]
    chosen = Config(path=config.path, clusters=tuple(config.cluster(n) for n in names))
    seen = Snapshots()
    monitor = Monitor(
        chosen,
        SessionFactory(cache_dir=tmp_path / "cli-cache"),
        seen,
        collect_iam=False,
        discovery_refresh_s=1.0,
        events_refresh_s=1.0,
        aws_read_budget_s=2.0,
    )
    for n in names:
        monitor.set_interval(n, 0.5)
    first = names[0]
    await monitor.start()
    try:
        await seen.wait(
            lambda s: s.name == first and s.status == "ok" and s.events_freshness.collected_at is not None
        )
        paused_at = utcnow()
        clock = Stopwatch()
        proxy.pause()
        try:
            mark = seen.mark()
            stale = await seen.wait(lambda s: s.name == first and s.events_freshness.stale, after=mark)
            detected = clock()
            reason = stale.events_freshness.reason or ""
            assert "timeout" in reason.lower() or "timed out" in reason.lower(), reason
            assert "permission" not in reason.lower()
            # activity is not held up: rounds with rows read after the stall began, for both clusters
            for n in names:
                await seen.wait(functools.partial(_answered_since, name=n, when=paused_at), after=mark)
        finally:
            proxy.resume()
        resumed_at = utcnow()
        clock = Stopwatch()
        mark = seen.mark()
        await seen.wait(
            lambda s: (
                s.name == first
                and not s.events_freshness.stale
                and s.events_freshness.collected_at is not None
                and s.events_freshness.collected_at > resumed_at
            ),
            after=mark,
        )
        record_figure("AWS API stall (every request held)", detected_s=detected, recovered_s=clock())
    finally:
        await monitor.stop()
        await proxy.close()
    # secrets scan over everything this session wrote: every snapshot as JSON, and every log record
    written = "\n".join(json.dumps(snapshot_to_json([s])) for s in seen.all)
    # our own log records at every level (botocore's DEBUG lines are its own, not written by a session)
    written += "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pgiam_tui"))
    secrets = [k for k in _sandbox_secrets(sandbox) if k]
    assert secrets
    for secret in secrets:
        assert secret not in written
    for marker in ("X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Security-Token="):
        assert marker not in written


def _sandbox_secrets(sandbox: Sandbox) -> list[str]:
    """The secret keys the sandbox's AWS files hold (credentials file values)."""
    out: list[str] = []
    for path in (sandbox.root / "aws").iterdir():
        if not path.is_file():  # the AWS CLI cache dir appears there once any test has assumed a role
            continue
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("aws_secret_access_key", "aws_session_token") and value.strip():
                out.append(value.strip())
    return out
