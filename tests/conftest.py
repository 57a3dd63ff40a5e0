"""Session-scoped sandbox fixtures shared by the whole suite.

`sandbox` starts ONE Sandbox (workload on) the first time a test asks for it and stops it at the end of the
session; tests that do not ask pay nothing (nothing heavy is imported here). While it runs, its environment
(AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AWS_ENDPOINT_URL, AWS_EC2_METADATA_SERVICE_ENDPOINT,
PGIAM_TUI_CONFIG, PGIAM_SANDBOX_ADMIN_DSN, PGIAM_SANDBOX_CA) is exported into os.environ, with
AWS_MAX_ATTEMPTS small, so product code finds it exactly as a user's shell would after `. env.sh`.

Tests that inject faults into the shared sandbox must restore what they change (try/finally).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pgiam_sandbox.environment import sandbox_environ

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

    from helpers.tmux import Tmux


_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier (the folder it lives in): `-m unit` selects the server-free subset."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
                break


@pytest.fixture(autouse=True)
def notifications_stay(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the unit tests (the app driven by Pilot) a notification never expires. Textual drops one a few
    seconds after it is raised (5 s by default), in real time: on a loaded machine a test could read
    `app._notifications` after that and find nothing. No test is about that expiry."""
    if request.node.get_closest_marker("unit") is None:
        return
    from textual.notifications import Notification

    monkeypatch.setattr(Notification, "has_expired", property(lambda self: False))


@pytest.fixture(autouse=True)
def unit_tests_see_no_aws_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit test sees none of the AWS_* / PGIAM_* variables around it.

    The session's sandbox exports its endpoints and config files for the rest of the run (tests/e2e and
    tests/integration sort first), and a developer's shell has its own: either would change what botocore
    resolves (an endpoint override signs IAM for the client's region, not us-east-1), so a unit test's
    result would depend on which tests ran before it (seen in a full run: the request budget's key test).
    """
    if request.node.get_closest_marker("unit") is None:
        return
    for name in list(os.environ):
        if name.startswith(("AWS_", "PGIAM_")):
            monkeypatch.delenv(name)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The session's sandbox (3 Aurora clusters + 1 RDS instance, workload on), env exported."""
    from pgiam_sandbox import Sandbox

    root: Path = tmp_path_factory.mktemp("sandbox")
    sb = Sandbox(root, workload=True)
    saved = dict(os.environ)
    # `timeout` and CI runners stop pytest with SIGTERM, which skips fixture teardown and would leave the
    # sandbox's PostgreSQL servers running: turn it into KeyboardInterrupt, which pytest unwinds cleanly.
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    sb.start()
    try:
        os.environ.clear()
        os.environ.update(sandbox_environ(sb.env, saved))
        os.environ["AWS_MAX_ATTEMPTS"] = "2"
        os.environ["AWS_RETRY_MODE"] = "standard"
        # botocore reads this at first IMDS use; keep failures quick when a test breaks the IMDS on purpose.
        os.environ["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] = "2"
        # A private HOME: the AWS CLI's credential cache (~/.aws/cli/cache), which the product shares on
        # purpose, would otherwise hand this sandbox's tests keys cached from another run's moto.
        home = root / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)
        yield sb
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sb.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)


@pytest.fixture(scope="session")
def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    """The variables env.sh exports (for tests that run `pgiam-tui` in a subprocess)."""
    env = sandbox_environ(sandbox.env)
    env["AWS_MAX_ATTEMPTS"] = "2"
    return env


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    """A tmux server of the test's own (killed by its socket name afterwards), for the real binary in a
    terminal (tests/e2e); skips where tmux is not installed."""
    import shutil

    from helpers.tmux import Tmux

    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t.kill()
