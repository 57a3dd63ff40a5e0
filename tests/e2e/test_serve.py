"""`serve` on the sandbox as a real process: /metrics parses, refusals move the right counter, a down cluster
reads 0 beside clusters that read 1, /healthz answers, SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.check_support import RefusedPort
from helpers.tmux import wait

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

pytestmark = [pytest.mark.timeout(300)]
BINARY = Path(sys.executable).with_name("pgiam-tui")
DOWN = "down-cluster"

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _config(sandbox: Sandbox, path: Path, closed: int) -> Path:
    """The sandbox's clusters plus one whose tunnel port (CLOSED) nobody listens on."""
    extra = f"""
[[clusters]]
name = "{DOWN}"
profile = "instancecrossaccount"
region = "us-east-1"
endpoint = "down.cluster-cabc123.us-east-1.rds.amazonaws.com"
resource_id = "cluster-DOWNDOWNDOWN"
database = "demo"
user = "pgmonitor"
sslmode = "verify-full"
sslrootcert = "{sandbox.ca_path}"
hostaddr = "127.0.0.1"
local_port = {closed}
log_source = "none"
"""
    path.write_text(sandbox.profiles_toml.read_text() + extra)
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """Held for the test: no other test run on this machine can start a server there."""
    with RefusedPort() as port:
        yield port


@pytest.fixture
def served(sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path, closed_port: int) -> Iterator[str]:
    env = {**os.environ, **sandbox_env, "HOME": str(tmp_path)}
    closed = closed_port
    env["PGIAM_TUI_CONFIG"] = str(_config(sandbox, tmp_path / "profiles.toml", closed))
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0"],  # the kernel's pick, read back from its first line
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
    try:
        assert found, line + (proc.stderr.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped (signal SIGTERM)" in err


def scrape(base: str) -> Samples:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for ls, v in samples.get(name, []) if all(ls.get(k) == w for k, w in labels.items()))


def up(samples: Samples, cluster: str) -> float | None:
    found = [v for ls, v in samples.get("pgiam_cluster_up", []) if ls.get("cluster") == cluster]
    return found[0] if found else None


def _refuse(sandbox: Sandbox, name: str, count: int) -> None:
    """Logins with a garbage token as an IAM user: AWS says InvalidToken, the client sees PAM failure."""
    c = sandbox.cluster(name)
    for _ in range(count):
        with pytest.raises(psycopg.OperationalError, match="PAM authentication failed"):
            psycopg.connect(
                host=c.endpoint, hostaddr=c.listen_host, port=c.listen_port, dbname=c.database,
                user="pgmonitor", password="not-a-token", sslmode="verify-full",
                sslrootcert=str(sandbox.ca_path), connect_timeout=10,
            )  # fmt: skip


def test_serve_on_the_sandbox(served: str, sandbox: Sandbox) -> None:
    names = [c.name for c in sandbox.clusters]

    def fleet_seen() -> bool:
        s = scrape(served)
        return all(up(s, n) == 1.0 for n in names) and up(s, DOWN) == 0.0

    wait("every sandbox cluster up and the broken one down", fleet_seen, 180)
    assert total(scrape(served), "pgiam_sessions", cluster=names[0]) > 0
    wait(
        "the IAM flag read",
        lambda: total(scrape(served), "pgiam_iam_auth_enabled", cluster=names[0]) == 1,
        120,
    )
    with urllib.request.urlopen(f"{served}/healthz", timeout=30) as resp:
        assert resp.status == 200

    target = names[0]

    def invalid_tokens() -> float:
        return total(
            scrape(served), "pgiam_connection_attempts_total", cluster=target, aws_code="InvalidToken"
        )

    before = invalid_tokens()
    _refuse(sandbox, target, 3)
    wait("the refused logins counted under InvalidToken", lambda: invalid_tokens() >= before + 3, 120)
    assert invalid_tokens() >= before + 3  # a counter never goes down
    # what the monitor itself cost the account: requests per API, from botocore's own events
    samples = scrape(served)
    assert total(samples, "pgiam_aws_requests_total", service="rds") > 0
