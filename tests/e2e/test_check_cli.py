"""`pgiam-tui check NAME [--json]`: exit codes 0/1/2, one-line errors, and no token anywhere in its output.

Tokens are caught by wrapping make_token; everything a whole check session prints (stdout, stderr, JSON, text)
and every log record it emits is then scanned for them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pgiam_tui.cli import main

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox, SandboxCluster

    from pgiam_tui.aws.tokens import Token

pytestmark = pytest.mark.timeout(120)


def _aurora(sandbox: Sandbox) -> SandboxCluster:
    return next(c for c in sandbox.clusters if c.kind == "aurora" and c.region == "us-east-1")


def _config_with_faults(sandbox: Sandbox, tmp_path: Path) -> Path:
    """The sandbox's profiles.toml plus entries that fail at authentication (a token is made for each)."""
    sb = _aurora(sandbox)
    extra = ""
    for name, region, database in (("wrong-region", "us-east-2", "demo"), ("no-db", sb.region, "nope")):
        extra += f"""
[[clusters]]
name = "{name}"
profile = "instancecrossaccount"
iam_profile = "iam-reader"
region = "{region}"
endpoint = "{sb.endpoint}"
port = 5432
resource_id = "{sb.resource_id}"
account_id = "{sb.account_id}"
database = "{database}"
user = "pgmonitor"
sslmode = "verify-full"
sslrootcert = "{sandbox.ca_path}"
hostaddr = "127.0.0.1"
local_port = {sb.listen_port}
"""
    path = tmp_path / "profiles.toml"
    path.write_text(sandbox.profiles_toml.read_text() + extra)
    return path


@pytest.fixture
def aws_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "HOME", str(tmp_path / "home")
    )  # the CLI's SessionFactory caches under ~/.aws/cli/cache


def test_unknown_cluster_and_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ok.toml"
    good.write_text('[[clusters]]\nname = "a"\nendpoint = "db.example.com"\nresource_id = "db-ABC"\n')
    assert main(["--config", str(good), "check", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[[clusters]\nname = ")
    assert main(["--config", str(bad), "check", "a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err
    assert main(["--config", str(tmp_path / "missing.toml"), "check", "a"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2


def test_check_session_exit_codes_and_no_token_anywhere(
    sandbox: Sandbox,
    tmp_path: Path,
    aws_cache: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pgiam_tui.aws.tokens as tokens

    made: list[Token] = []
    real = tokens.make_token

    def capturing(*args: Any, **kwargs: Any) -> Token:
        token = real(*args, **kwargs)
        made.append(token)
        return token

    monkeypatch.setattr(tokens, "make_token", capturing)
    config = str(_config_with_faults(sandbox, tmp_path))
    name = _aurora(sandbox).name
    outputs: list[str] = []
    caplog.set_level(logging.DEBUG, logger="pgiam_tui")
    caplog.set_level(logging.INFO)

    assert main(["--config", config, "check", name, "--json"]) == 0
    out, err = capsys.readouterr()
    outputs += [out, err]
    data = json.loads(out)
    assert data["cluster"] == name and data["ok"] is True
    assert [s["status"] for s in data["steps"]].count("failed") == 0
    assert all({"name", "status", "ms", "detail", "hint"} <= set(s) for s in data["steps"])

    assert main(["--config", config, "check", name]) == 0
    out, err = capsys.readouterr()
    outputs += [out, err]
    assert "result: connected" in out

    for broken, cause in (("wrong-region", "region_mismatch"), ("no-db", "database_missing")):
        assert main(["--config", config, "check", broken, "--json"]) == 1
        out, err = capsys.readouterr()
        outputs += [out, err]
        data = json.loads(out)
        assert data["ok"] is False and data["cause"] == cause
        assert main(["--config", config, "check", broken]) == 1
        out, err = capsys.readouterr()
        outputs += [out, err]
        assert f"[{cause}]" in out and "fix:" in out

    # Each healthy check signs 3 tokens (cluster endpoint, then writer and reader for the members step); the
    # missing database signs 1; the wrong region none (a token is never signed for a region other than its
    # endpoint's). All of them were made, and all are looked for below.
    assert len(made) == 2 * 3 + 2
    records = [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    for token in made:
        assert token.value not in repr(token) and token.value not in str(token)
        signature = token.value.split("X-Amz-Signature=")[1].split("&")[0]
        for text in outputs + records:
            assert token.value not in text
            assert signature not in text


def test_registering_check_stays_light() -> None:
    """`pgiam-tui --help` must stay fast: the check command's module imports nothing heavy until it runs."""
    import subprocess
    import sys

    code = (
        "import sys, argparse; import pgiam_tui.commands.check as c; "
        "c.register(argparse.ArgumentParser().add_subparsers()); "
        "heavy = [m for m in ('boto3', 'botocore', 'psycopg', 'pgiam_tui.diagnose') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
