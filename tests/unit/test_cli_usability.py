"""CLI usability (issue 12): `check` streams its steps (colour only on a terminal, never with NO_COLOR),
`--config` after the subcommand, `--version`, "did you mean" for cluster and profile names, a missing-config
message a pip user can follow (`discover --write`, `config example`), no retry wording in one-shot `snapshot`,
`discover` entries with database and sslrootcert, and login hints as specific as the check's."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pgiam_tui.advice import check_advice, for_console
from pgiam_tui.aws.inventory import DiscoveredDatabase
from pgiam_tui.cli import main
from pgiam_tui.commands.check import StreamPrinter, use_colour
from pgiam_tui.commands.config import example_text
from pgiam_tui.commands.discover import build_entries
from pgiam_tui.commands.snapshot import render_text as snapshot_text
from pgiam_tui.config import ConfigError, parse_config
from pgiam_tui.db.connection import _hint_for
from pgiam_tui.db.conninfo import ConnTarget
from pgiam_tui.diagnose import CheckProgress, CheckResult, CheckStep
from pgiam_tui.model import ClusterSnapshot, ConnectionStatus, ErrorInfo, InstanceInfo
from pgiam_tui.vocabulary import CheckCause

BIN = Path(sys.executable).parent

CONFIG = """
[[clusters]]
name = "orders-prod"
endpoint = "orders.cluster-abc.us-east-1.rds.amazonaws.com"
region = "us-east-1"
auth = "password"

[[clusters]]
name = "billing-prod"
endpoint = "billing.cluster-abc.us-east-1.rds.amazonaws.com"
region = "us-east-1"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return path


def test_version() -> None:
    done = subprocess.run([BIN / "pgiam-tui", "--version"], capture_output=True, text=True, check=False)
    assert (
        done.returncode == 0 and done.stdout.startswith("pgiam-tui ") and done.stdout.split()[1][0].isdigit()
    )


def test_config_after_the_subcommand(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the same unknown-cluster answer whichever side of the subcommand --config is on
    assert main(["check", "orders-prd", "--config", str(config_file)]) == 2
    after = capsys.readouterr().err
    assert main(["--config", str(config_file), "check", "orders-prd"]) == 2
    before = capsys.readouterr().err
    assert after == before and str(config_file) in after


def test_did_you_mean_a_cluster(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "orders-prd", "--config", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'orders-prod'?" in err
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(CONFIG), config_file).cluster("zzz")
    assert "did you mean" not in str(info.value)


def test_did_you_mean_a_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws = tmp_path / "aws-config"
    aws.write_text("[profile prod-admin]\nregion = us-east-1\n[profile dev]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["profiles", "prod-admn"]) == 2
    assert "did you mean 'prod-admin'?" in capsys.readouterr().err


def test_missing_config_says_what_a_pip_user_can_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.toml"
    assert main(["check", "x", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "profiles.example.toml" not in err
    assert f"pgiam-tui discover --write {missing}" in err and "pgiam-tui config example" in err


def test_config_example_is_the_documented_example_and_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "example"]) == 0
    text = capsys.readouterr().out
    assert text == example_text()
    assert text == (Path(__file__).resolve().parents[2] / "profiles.example.toml").read_text(encoding="utf-8")
    assert parse_config(text, tmp_path / "profiles.toml").clusters


def _result() -> CheckResult:
    return CheckResult(
        cluster="c",
        ok=False,
        steps=(
            CheckStep("config", "ok", 1.0, "fine"),
            CheckStep("credentials", "failed", 2.0, "evil \x1b]0;pwned\x07 text", "do this"),
            CheckStep("discovery", "skipped", 0.0, "not tried: credentials failed"),
        ),
        cause=CheckCause.IMDS_UNREACHABLE,
        cause_text="no credentials",
        fix="run on EC2",
    )


def test_check_prints_each_step_as_it_finishes() -> None:
    out = io.StringIO()
    printer = StreamPrinter(out, colour=False, live=False)
    printer.header("c")
    seen: list[str] = []
    result = _result()
    for step in result.steps:
        seen.append(out.getvalue())
        printer(CheckProgress(step.name))
        printer(CheckProgress(step.name, step))
    assert "config" not in seen[0] and "  ok      config" in seen[1]  # printed before credentials started
    assert "FAILED  credentials" in seen[2]
    printer.finish(result)
    text = out.getvalue()
    assert "\x1b" not in text and "\\x1b]0;pwned" in text  # no colour off a terminal; hostile text escaped
    assert "cause: no credentials [imds_unreachable]" in text and text.endswith("fix: run on EC2\n")


def test_colour_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert use_colour(Tty()) and not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Tty())
    out = Tty()
    printer = StreamPrinter(out, colour=True, live=True)
    step = _result().steps[1]
    printer(CheckProgress("credentials"))
    printer(CheckProgress("credentials", step))
    text = out.getvalue()
    assert "\x1b[1;31mFAILED" in text and "running…" in text and "\r\x1b[2K" in text
    assert "\x1b]0;pwned" not in text  # the painted line still escapes what came from outside


def test_snapshot_one_shot_has_no_retry_wording() -> None:
    status = ConnectionStatus("reconnecting", attempt=1, reason="connection refused")
    snap = ClusterSnapshot(
        "c",
        "error",
        None,  # type: ignore[arg-type]
        error=ErrorInfo("connect", "connection refused (next try at 12:00:05)", "is the tunnel up?"),
        instances=(
            InstanceInfo(
                "c-1",
                "writer",
                "c-1.x",
                5432,
                "reconnecting",
                error="reconnecting, attempt 1, next try 12:00:05: connection refused",
                connection=status,
            ),
        ),
    )
    text = snapshot_text([snap])
    assert "connection refused" in text
    assert "next try" not in text and "attempt 1" not in text


def test_discover_entries_have_database_and_sslrootcert(tmp_path: Path) -> None:
    found = DiscoveredDatabase(
        "aurora", "orders", "111111111111", "us-east-1", "prod", "aurora-postgresql",
        "orders.cluster-abc.us-east-1.rds.amazonaws.com", 5432, "cluster-ABC", True, (), "orders_db",
    )  # fmt: skip
    (entry,) = build_entries([found], None)
    cfg = parse_config(entry, tmp_path / "profiles.toml").cluster("orders")
    assert cfg.database == "orders_db"
    assert cfg.sslrootcert is not None and cfg.sslrootcert.endswith("rds-global-bundle.pem")
    (entry,) = build_entries([found], None, database="demo", sslrootcert="/etc/rds.pem")
    cfg = parse_config(entry, tmp_path / "profiles.toml").cluster("orders")
    assert (cfg.database, cfg.sslrootcert) == ("demo", "/etc/rds.pem")


def _target(auth: str) -> ConnTarget:
    return ConnTarget("orders prod", "i-1", "writer", "e", 5432, "us-east-1", "demo", "bob; --", auth=auth)


def test_login_hints_fit_the_auth_method() -> None:
    iam = _hint_for("28P01", 'password authentication failed for user "bob; --"', _target("iam"))
    assert "keyring" not in iam and 'GRANT rds_iam TO "bob; --";' in iam
    pw = _hint_for("28P01", "password authentication failed", _target("password"))
    assert "pgiam-tui password set 'orders prod'" in pw
    pam = _hint_for("28000", 'PAM authentication failed for user "x"', _target("iam"))
    assert check_advice("orders prod") in pam
    assert "press c" in for_console(pam, "orders prod") and "pgiam-tui check" not in for_console(
        pam, "orders prod"
    )


def test_config_path(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path", "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.strip() == str(config_file)
