"""What the import-linter contracts cannot see: imports made at run time.

The walls themselves (collection never imports the UI, db never imports aws, the product never imports the
stand-in...) are import-linter contracts in pyproject.toml, checked by `make check`. They read import
statements; these tests run the real CLI paths in a fresh interpreter (so modules pytest already imported
hide nothing) and look at what was actually loaded: the headless commands must not pay for Textual, and
only `sandbox` and `demo` may load the stand-in, lazily.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.check_support import RefusedPort

# Runs `pgiam-tui ARGS...` through the real entry point (every command's parser is registered, `sandbox` and
# `demo` included), then reports the exit code and the loaded modules that matter (textual/rich, our UI, the
# stand-in) as one JSON line.
_PROBE = """
import json, sys
{prelude}
from pgiam_tui.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("textual", "rich", "pgiam_sandbox") or m.startswith("pgiam_tui.ui")
)
print(json.dumps({{"code": code, "loaded": loaded}}))
"""


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but never listens: every connection to it is refused at once."""
    with RefusedPort() as port:
        yield port


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, closed_port: int) -> Path:
    """One password cluster and one IAM cluster on CLOSED_PORT: every command runs and fails fast."""
    path = tmp_path_factory.mktemp("hygiene") / "profiles.toml"
    common = f'endpoint = "127.0.0.1"\nport = {closed_port}\nregion = "us-east-1"\nconnect_timeout_s = 1\n'
    path.write_text(
        textwrap.dedent(
            f"""\
            [[clusters]]
            name = "pw"
            auth = "password"
            sslmode = "disable"
            {common}
            [[clusters]]
            name = "iam"
            resource_id = "cluster-ABCDEFGHIJKL"
            {common}"""
        ),
        encoding="utf-8",
    )
    return path


def _run(config: Path, *args: str, prelude: str = "") -> dict[str, object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config.parent),
        # no real AWS, no instance metadata, no real keyring: the probe must never leave the machine
        "AWS_CONFIG_FILE": str(config.parent / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(config.parent / "no-aws-credentials"),
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",  # AWS's documented example key: tokens sign locally
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(prelude=prelude), "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("check", "pw"), 1),
        (("check", "--json", "pw"), 1),
        (("snapshot",), 1),
        (("snapshot", "--json", "--cluster", "pw"), 1),
        (("token", "iam"), 0),
        (("check", "no-such-cluster"), 2),
    ],
)
def test_headless_commands_load_neither_the_ui_nor_the_stand_in(
    config: Path, args: tuple[str, ...], code: int
) -> None:
    result = _run(config, *args)
    assert result["code"] == code  # the command really ran to its end, not just imported
    assert result["loaded"] == []


def test_the_probe_sees_what_a_command_loads(config: Path) -> None:
    """Not vacuous: the same probe, with the UI imported before the command runs, reports it."""
    result = _run(config, "check", "pw", prelude="import pgiam_tui.ui.app")
    assert result["code"] == 1
    assert isinstance(result["loaded"], list)
    assert {"textual", "pgiam_tui.ui.app"} <= set(result["loaded"])
