"""The real `pgiam-tui` console script: config errors are one line and exit 2; `password set/delete`
stores in the OS keyring (helpers.memory_keyring's backends, the library's own extension point), prompting
without echo on a terminal."""

from __future__ import annotations

import argparse
import io
import json
import os
import pty
import select
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from helpers.memory_keyring import MemoryKeyring, installed_keyring
from pgiam_tui import secrets
from pgiam_tui.commands import password as password_command

BIN = Path(sys.executable).parent
TESTS = Path(__file__).resolve().parent


CONFIG = """
[defaults]
region = "eu-west-1"

[[clusters]]
name = "legacy"
endpoint = "legacy.abc.eu-west-1.rds.amazonaws.com"
auth = "password"
user = "app_password_user"

[[clusters]]
name = "aurora"
cluster_id = "pgdemo-1"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(textwrap.dedent(CONFIG).lstrip(), encoding="utf-8")
    return path


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PGIAM_TUI_CONFIG"}
    return subprocess.run(
        [str(BIN / "pgiam-tui"), *args],
        env={**base, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("pgiam-tui: "), done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '[[clusters]]\nname = "a"\ncluster_id = "c"\npassword = "hunter2"\n',
            ":4: key 'password': secrets do not",
        ),
        (
            '[[clusters]]\nname = "a"\ncluster_id = "c"\nportt = 1\n',
            ":4: key 'portt': unknown key (did you mean 'port'?)",
        ),
        ('[[clusters]]\nname = "a"\n', ":1: cluster 'a' needs one of cluster_id, instance_id or endpoint"),
        ("[[clusters]\n", ":1: TOML syntax error"),
        (
            '[[clusters]]\nname = "a"\nendpoint = "e"\n[[clusters]]\nname = "a"\nendpoint = "f"\n',
            ":5: key 'name'",
        ),
        (
            '[[clusters]]\nname = "a"\nendpoint = "e"\nsslmode = "on"\n',
            ":4: key 'sslmode': invalid value 'on'",
        ),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(cli("--config", str(path), "token", "a"), 2, f"{path}{needle}")
    assert "hunter2" not in cli("--config", str(path), "token", "a").stderr


def test_missing_config_from_env_var(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    done = cli("token", "a", env={"PGIAM_TUI_CONFIG": str(missing)})
    assert_one_line_error(done, 2, f"{missing}: config file not found")


def test_default_config_location(tmp_path: Path) -> None:
    done = cli("token", "a", env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert_one_line_error(
        done, 2, f"{tmp_path / 'xdg' / 'pgiam-tui' / 'profiles.toml'}: config file not found"
    )


def test_token_refuses_password_cluster(config: Path) -> None:
    done = cli("--config", str(config), "token", "legacy")
    assert_one_line_error(done, 2, "cluster 'legacy' uses auth = 'password'")


def test_usage_errors_exit_2(config: Path) -> None:
    assert cli("--config", str(config), "token").returncode == 2  # argparse: NAME missing
    done = cli("--config", str(config), "password")
    assert_one_line_error(done, 2, "usage: pgiam-tui password {set,delete} NAME")


def test_help_lists_our_commands() -> None:
    done = cli("--help")
    assert done.returncode == 0
    for name in ("token", "profiles", "discover", "password"):
        assert name in done.stdout


# ------------------------------------------------------------------------------------------ password


@pytest.fixture
def memory_keyring() -> Any:
    with installed_keyring(MemoryKeyring()) as backend:
        yield backend


def run_password(config: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="pgiam-tui")
    parser.add_argument("--config")
    password_command.register(parser.add_subparsers())
    args = parser.parse_args(["--config", str(config), "password", *argv])
    return int(args.func(args))


def test_password_set_get_delete(
    config: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pw\n"))
    assert run_password(config, "set", "legacy", "--stdin") == 0
    assert memory_keyring.store == {("pgiam-tui", "legacy"): "s3cret-pw"}
    assert secrets.get_password("legacy") == "s3cret-pw"
    assert run_password(config, "delete", "legacy") == 0
    assert secrets.get_password("legacy") is None
    assert run_password(config, "delete", "legacy") == 1
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err
    assert "no password stored for 'legacy'" in out.err


def test_password_refused_for_iam_cluster_and_unknown_names(
    config: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n"))
    assert run_password(config, "set", "aurora", "--stdin") == 2
    assert run_password(config, "set", "nope", "--stdin") == 2
    assert memory_keyring.store == {}
    err = capsys.readouterr().err
    assert "cluster 'aurora' uses auth = 'iam'" in err and "no cluster named 'nope'" in err


def test_password_empty_or_no_terminal(
    config: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert run_password(config, "set", "legacy", "--stdin") == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))  # not a tty: refuse to prompt
    assert run_password(config, "set", "legacy") == 2
    assert memory_keyring.store == {}
    assert "pipe the password with --stdin" in capsys.readouterr().err


def test_broken_keyring_is_one_line(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from keyring.backends import fail

    with installed_keyring(fail.Keyring()):  # type: ignore[no-untyped-call]
        monkeypatch.setattr(sys, "stdin", io.StringIO("pw-value\n"))
        assert run_password(config, "set", "legacy", "--stdin") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot store the password of 'legacy' in the OS keyring" in err
    assert "pw-value" not in err
    # no backend at all (keyring's fail.Keyring raises NoKeyringError): what to do, not keyring's paragraph
    assert "this machine has no OS keyring" in err and "PYTHON_KEYRING_BACKEND" in err
    assert "keyrings.alt" not in err


def test_password_prompt_on_a_terminal_does_not_echo(config: Path, tmp_path: Path) -> None:
    store = tmp_path / "keyring.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PGIAM_TEST_KEYRING=str(store),
        PYTHON_KEYRING_BACKEND="helpers.memory_keyring.FileKeyring",
        PYTHONPATH=str(TESTS.parent),
    )
    pid, fd = pty.fork()
    if pid == 0:  # child: the real console script on a terminal
        os.execve(str(BIN / "pgiam-tui"), [str(BIN / "pgiam-tui"), "--config", str(config), "password", "set",
                                           "legacy"], env)  # fmt: skip
    seen = b""
    try:
        seen += read_until(fd, b"Password: ")
        os.write(fd, b"tty-pw-123\n")
        seen += read_until(fd, b"Again: ")
        os.write(fd, b"tty-pw-123\n")
        seen += read_until(fd, b"OS keyring")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"tty-pw-123" not in seen  # no echo
    assert json.loads(store.read_text(encoding="utf-8")) == {"pgiam-tui\0legacy": "tty-pw-123"}


def read_until(fd: int, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            raise AssertionError(f"no {marker!r} on the terminal; got {data!r}")
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data
