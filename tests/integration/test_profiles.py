"""AWS profiles: classification and role chains (pure), and SessionFactory against the sandbox's moto:
cross-account resolution, the shared AWS CLI cache, MFA prompts through the callback, classified errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import pytest

from helpers.aws_env import only_these_aws_files
from pgiam_tui.aws.errors import AwsCredentialError, classify_aws_error
from pgiam_tui.aws.profiles import list_profiles, resolve_identities
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.commands import profiles as profiles_command

BIN = Path(sys.executable).parent  # the venv's console scripts (pgiam-tui, aws)

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

DB_ACCOUNT = "111111111111"
MGMT_ACCOUNT = "222222222222"

CONFIG = """
[default]
region = eu-west-1

[profile dev-static]
region = us-east-1

[profile chained]
role_arn = arn:aws:iam::111111111111:role/second
source_profile = middle
mfa_serial = arn:aws:iam::222222222222:mfa/dba

[profile middle]
role_arn = arn:aws:iam::111111111111:role/first
source_profile = dev-static

[profile on-ec2]
role_arn = arn:aws:iam::111111111111:role/pg-monitor-role
credential_source = Ec2InstanceMetadata

[profile chained-to-ec2]
role_arn = arn:aws:iam::111111111111:role/other
source_profile = on-ec2

[profile self-sourced]
role_arn = arn:aws:iam::111111111111:role/self
source_profile = self-sourced
aws_access_key_id = AKIAEXAMPLESELF
aws_secret_access_key = never-printed-self

[profile sso-new]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = DBA

[profile sso-legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = us-east-1
sso_account_id = 111111111111
sso_role_name = DBA

[profile sso-broken]
sso_session = nowhere

[profile proc]
credential_process = /usr/local/bin/get-creds --secret hunter2

[profile k8s]
role_arn = arn:aws:iam::111111111111:role/irsa
web_identity_token_file = /var/run/secrets/token

[profile loop-a]
role_arn = arn:aws:iam::111111111111:role/a
source_profile = loop-b

[profile loop-b]
role_arn = arn:aws:iam::111111111111:role/b
source_profile = loop-a

[profile dangling]
role_arn = arn:aws:iam::111111111111:role/x
source_profile = not-there

[profile region-only]
region = ap-northeast-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
"""

CREDENTIALS = """
[default]
aws_access_key_id = AKIAEXAMPLEDEFAULT
aws_secret_access_key = never-printed-default

[dev-static]
aws_access_key_id = AKIAEXAMPLEDEV
aws_secret_access_key = never-printed-dev
"""


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    config.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    credentials = tmp_path / "credentials"
    credentials.write_text(textwrap.dedent(CREDENTIALS), encoding="utf-8")
    only_these_aws_files(monkeypatch, config, credentials)
    return tmp_path


def run_profiles(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pgiam-tui")
    parser.add_argument("--config")
    profiles_command.register(parser.add_subparsers())
    args = parser.parse_args(["profiles", *argv])
    return int(args.func(args))


def test_every_kind_is_classified(aws_files: Path) -> None:
    by_name = {p.name: p for p in list_profiles()}
    kinds = {name: p.kind for name, p in by_name.items()}
    assert kinds == {
        "default": "static",
        "dev-static": "static",
        "chained": "assume_role_source_profile",
        "middle": "assume_role_source_profile",
        "on-ec2": "assume_role_credential_source",
        "chained-to-ec2": "assume_role_source_profile",
        "self-sourced": "assume_role_source_profile",
        "sso-new": "sso",
        "sso-legacy": "sso",
        "sso-broken": "none",  # botocore's SSO provider ignores a profile without sso_account_id/role_name
        "proc": "credential_process",
        "k8s": "web_identity",
        "loop-a": "assume_role_source_profile",
        "loop-b": "assume_role_source_profile",
        "dangling": "assume_role_source_profile",
        "region-only": "none",
    }
    assert by_name["default"].region == "eu-west-1"
    assert by_name["sso-new"].sso_start_url == "https://corp.awsapps.com/start"
    assert by_name["sso-legacy"].sso_start_url == "https://legacy.awsapps.com/start"
    assert by_name["proc"].credential_program == "/usr/local/bin/get-creds"
    assert by_name["chained"].mfa_serial == "arn:aws:iam::222222222222:mfa/dba"


def test_role_chains_and_their_problems(aws_files: Path) -> None:
    by_name = {p.name: p for p in list_profiles()}
    assert by_name["chained"].chain_text() == "chained -> middle -> dev-static -> static keys"
    assert (
        by_name["chained-to-ec2"].chain_text()
        == "chained-to-ec2 -> on-ec2 -> credential_source Ec2InstanceMetadata"
    )
    assert by_name["on-ec2"].chain_text() == "on-ec2 -> credential_source Ec2InstanceMetadata"
    assert by_name["self-sourced"].chain_text() == "self-sourced -> static keys"
    assert by_name["dev-static"].chain == ("dev-static",) and by_name["dev-static"].problem is None
    # Refusals in botocore's own words.
    assert by_name["loop-a"].problem == (
        "Infinite loop in credential configuration detected. Attempting to load from profile loop-a "
        "which has already been visited. Visited profiles: ['loop-a', 'loop-b']"
    )
    assert by_name["dangling"].problem == (
        'The source_profile "not-there" referenced in the profile "dangling" does not exist.'
    )
    assert by_name["sso-broken"].problem is None and by_name["sso-broken"].kind == "none"


def test_profiles_json_holds_no_secret(aws_files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_profiles(["--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    names = [p["name"] for p in data["profiles"]]
    assert names == sorted(names) and "on-ec2" in names
    row = next(p for p in data["profiles"] if p["name"] == "on-ec2")
    assert row["kind"] == "assume_role_credential_source"
    assert row["chain"] == ["on-ec2"] and row["chain_source"] == "credential_source Ec2InstanceMetadata"
    assert row["identity_arn"] is None and row["error"] is None
    for secret in ("never-printed", "AKIAEXAMPLE", "hunter2"):
        assert secret not in out


def test_profiles_table(aws_files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_profiles(["chained", "proc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PROFILE", "KIND", "REGION", "CHAIN"]
    assert lines[1].startswith("chained ") and "assume-role (source_profile)" in lines[1]
    assert "chained -> middle -> dev-static -> static keys" in lines[1]
    assert lines[2].startswith("proc ") and "hunter2" not in lines[2]


def test_unknown_profile_name_is_usage_error(aws_files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_profiles(["nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown AWS profile(s): nope" in err


def test_session_factory_reuses_sessions_across_threads(aws_files: Path) -> None:
    factory = SessionFactory(cache_dir=aws_files / "cache")
    seen: list[Any] = []

    def grab() -> None:
        seen.append(factory.session("dev-static"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 1
    assert factory.session(None) is not seen[0]


def test_unknown_profile_is_classified(aws_files: Path) -> None:
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory(cache_dir=aws_files / "cache").session("typo")
    assert info.value.kind == "unknown_profile"
    assert "AWS profile 'typo' not found" in str(info.value)
    assert info.value.hint and "pgiam-tui profiles" in info.value.hint


def test_sso_without_login_says_how_to_log_in(aws_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(aws_files))  # no ~/.aws/sso/cache token there
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory(cache_dir=aws_files / "cache").identity("sso-new")
    assert info.value.kind == "sso_expired"
    assert info.value.hint == "aws sso login --profile sso-new"


@pytest.mark.parametrize(
    ("error", "operation", "kind"),
    [
        ("AccessDenied", "AssumeRole", "assume_role_denied"),
        ("ExpiredToken", "GetCallerIdentity", "expired"),
        ("ExpiredTokenException", "DescribeDBClusters", "expired"),
        ("InvalidClientTokenId", "GetCallerIdentity", "other"),
        ("AccessDenied", "DescribeDBClusters", "other"),
    ],
)
def test_client_errors_are_classified(error: str, operation: str, kind: str) -> None:
    exc = botocore.exceptions.ClientError({"Error": {"Code": error, "Message": "m"}}, operation)
    classified = classify_aws_error(exc, "p")
    assert classified.kind == kind and classified.profile == "p"
    assert "\n" not in str(classified)


def test_botocore_errors_are_classified() -> None:
    cases = [
        (botocore.exceptions.NoCredentialsError(), "no_credentials"),
        (
            botocore.exceptions.CredentialRetrievalError(provider="Ec2InstanceMetadata", error_msg="x"),
            "imds_unreachable",
        ),
        (botocore.exceptions.UnauthorizedSSOTokenError(), "sso_expired"),
        (botocore.exceptions.ProfileNotFound(profile="p"), "unknown_profile"),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), "other"),
        (ValueError("weird"), "other"),
    ]
    for exc, kind in cases:
        assert classify_aws_error(exc, "p").kind == kind, exc


def test_resolve_identities_keeps_errors_per_profile() -> None:
    def identity(name: str) -> str:
        if name == "bad":
            raise AwsCredentialError("nope", "no_credentials", None, name)
        if name == "worse":
            raise RuntimeError("boom")
        return f"arn:{name}"

    result = {r.profile: r for r in resolve_identities(["a", "bad", "worse", "b"], identity)}
    assert result["a"].arn == "arn:a" and result["b"].arn == "arn:b"
    assert result["bad"].error is not None and result["bad"].error.kind == "no_credentials"
    assert result["worse"].error is not None and "boom" in str(result["worse"].error)


# ------------------------------------------------------------------------------------------ sandbox


@pytest.fixture
def extra_profiles(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The sandbox's AWS config plus a few profiles of our own (MFA, refused role, dead IMDS)."""
    base = sandbox.aws_config_file.read_text(encoding="utf-8")
    endpoint = sandbox.endpoint_url
    extra = f"""

[profile with-mfa]
role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pgdemo-oltp-rw-role
source_profile = sandbox-db-admin
mfa_serial = arn:aws:iam::{DB_ACCOUNT}:mfa/dba
region = us-east-1
endpoint_url = {endpoint}

[profile refused]
role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pg-monitor-role
source_profile = sandbox-db-admin
region = us-east-1
endpoint_url = {endpoint}

[profile dead-imds]
role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pg-monitor-role
credential_source = Ec2InstanceMetadata
region = us-east-1
endpoint_url = {endpoint}
ec2_metadata_service_endpoint = http://127.0.0.1:9
"""
    # credential_process: a real program printing the DB admin's keys (as a password manager would).
    import configparser

    creds = configparser.ConfigParser()
    creds.read(sandbox.aws_credentials_file)
    admin = creds["sandbox-db-admin"]
    payload = json.dumps(
        {
            "Version": 1,
            "AccessKeyId": admin["aws_access_key_id"],
            "SecretAccessKey": admin["aws_secret_access_key"],
        }
    )
    (tmp_path / "creds.json").write_text(payload, encoding="utf-8")
    (tmp_path / "web-token").write_text("eyJhbGciOi.test.token", encoding="utf-8")
    cat_program = f'{sys.executable} -c "import sys; sys.stdout.write(open(sys.argv[1]).read())"'
    extra += f"""
[profile from-process]
credential_process = {cat_program} {tmp_path / "creds.json"}
region = us-east-1
endpoint_url = {endpoint}

[profile broken-process]
credential_process = {sys.executable} -c "import sys; sys.exit('vault is sealed')"
region = us-east-1
endpoint_url = {endpoint}

[profile web]
role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pgdemo-oltp-rw-role
web_identity_token_file = {tmp_path / "web-token"}
region = us-east-1
endpoint_url = {endpoint}
"""
    config = tmp_path / "aws-config"
    config.write_text(base + extra, encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # the AWS CLI cache of this test only...
    monkeypatch.delenv("PGIAM_TUI_AWS_CLI_CACHE", raising=False)  # ...and ours is the AWS CLI's
    yield config


def test_cross_account_profile_resolves_to_monitor_role(sandbox: Sandbox, tmp_path: Path) -> None:
    factory = SessionFactory(cache_dir=tmp_path / "cache")
    arn = factory.identity("instancecrossaccount")
    assert arn.startswith(f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pg-monitor-role/")
    assert factory.identity("sandbox-mgmt-admin").split(":")[4] == MGMT_ACCOUNT


def test_profiles_resolve_command(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # this test's own AWS CLI cache
    code = run_profiles(["--json", "--resolve"])
    data = json.loads(capsys.readouterr().out)
    rows = {p["name"]: p for p in data["profiles"]}
    assert rows["instancecrossaccount"]["identity_arn"].startswith(
        f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pg-monitor-role/"
    )
    assert rows["instancecrossaccount"]["kind"] == "assume_role_credential_source"
    assert rows["pgdemo-oltp-rw"]["chain"] == ["pgdemo-oltp-rw", "sandbox-db-admin"]
    assert rows["pgdemo-oltp-rw"]["identity_arn"].startswith(
        f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pgdemo-oltp-rw-role/"
    )
    assert all(r["error"] is None for r in rows.values()), rows
    assert code == 0


def frozen_key(factory: SessionFactory, profile: str) -> str:
    credentials = factory.session(profile).get_credentials()
    assert credentials is not None
    return str(credentials.get_frozen_credentials().access_key)


def cache_files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.glob("*.json"))} if directory.exists() else {}


@pytest.mark.parametrize("profile", ["instancecrossaccount", "pgdemo-oltp-rw"])
def test_assumed_role_credentials_shared_through_cli_cache(
    sandbox: Sandbox, extra_profiles: Path, profile: str
) -> None:
    cache = Path(os.environ["HOME"]) / ".aws" / "cli" / "cache"
    first = SessionFactory()  # default: ~/.aws/cli/cache, the AWS CLI's
    first.identity(profile)
    written = cache_files(cache)
    assert len(written) == 1, written
    key_one = frozen_key(first, profile)

    # A second process (a fresh factory) finds the cached role credentials instead of assuming again.
    second = SessionFactory()
    second.identity(profile)
    assert frozen_key(second, profile) == key_one
    # And the AWS CLI itself reuses them: the cache file is left as it was.
    env = dict(os.environ)
    done = subprocess.run(
        [str(BIN / "aws"), "sts", "get-caller-identity", "--profile", profile, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == first.identity(profile)
    assert cache_files(cache) == written


def test_mfa_code_comes_from_the_callback(sandbox: Sandbox, extra_profiles: Path) -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "123456"

    arn = SessionFactory(ask).identity("with-mfa")
    assert ":assumed-role/pgdemo-oltp-rw-role/" in arn
    assert prompts == [f"Enter MFA code for arn:aws:iam::{DB_ACCOUNT}:mfa/dba: "]


def test_mfa_without_callback_is_a_clear_error(sandbox: Sandbox, extra_profiles: Path) -> None:
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory().identity("with-mfa")
    assert "an MFA code is needed" in str(info.value)


def test_refused_assume_role_is_classified(sandbox: Sandbox, extra_profiles: Path) -> None:
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory().identity("refused")
    assert info.value.kind == "assume_role_denied"
    assert info.value.profile == "refused"
    assert "AssumeRole refused" in str(info.value)


def test_unreachable_imds_is_classified(
    sandbox: Sandbox, extra_profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment variable wins over the profile's setting: point both at a closed port.
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory().identity("dead-imds")
    assert info.value.kind == "imds_unreachable"
    assert "credential_source" in str(info.value)


def test_unparsable_aws_config_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "config"
    broken.write_text("[profile x\nregion = us-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(broken))
    assert run_profiles([]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and f"cannot read the AWS config: Unable to parse config file: {broken}" in err
    )


def test_no_profiles_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert run_profiles([]) == 0
    assert capsys.readouterr().out.startswith("no AWS profiles found")
    assert run_profiles(["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"profiles": []}


def test_credential_process_and_web_identity_resolve(sandbox: Sandbox, extra_profiles: Path) -> None:
    factory = SessionFactory()
    assert factory.identity("from-process").split(":")[4] == DB_ACCOUNT
    assert ":assumed-role/pgdemo-oltp-rw-role/" in factory.identity("web")
    kinds = {p.name: p.kind for p in list_profiles()}
    assert (kinds["from-process"], kinds["web"]) == ("credential_process", "web_identity")


def test_failing_credential_process_is_reported(sandbox: Sandbox, extra_profiles: Path) -> None:
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory().identity("broken-process")
    assert info.value.kind == "other"
    assert "vault is sealed" in str(info.value) and "\n" not in str(info.value)
    assert info.value.hint is not None and "credential_process" in info.value.hint


def test_expired_session_credentials_are_classified(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from pgiam_sandbox.moto_guards import find_assumed_role

    # Real session credentials of the monitoring role...
    frozen = SessionFactory(cache_dir=tmp_path / "c").session("instancecrossaccount").get_credentials()
    assert frozen is not None
    keys = frozen.get_frozen_credentials()
    assert keys.access_key and keys.secret_key and keys.token
    # ...that have since expired (moto runs in this process; its record says when they end).
    record = find_assumed_role(keys.access_key)
    assert record is not None
    record.expiration = dt.datetime(2020, 1, 1)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[stale]\naws_access_key_id = {keys.access_key}\naws_secret_access_key = {keys.secret_key}\n"
        f"aws_session_token = {keys.token}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config"
    config.write_text(
        f"[profile stale]\nregion = us-east-1\nendpoint_url = {sandbox.endpoint_url}\n", encoding="utf-8"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory(cache_dir=tmp_path / "c").identity("stale")
    assert info.value.kind == "expired"
    assert str(info.value) == "profile 'stale': the credentials have expired (ExpiredToken)"
    for secret in (keys.secret_key, keys.token):
        assert secret is not None
        assert secret not in str(info.value) and secret not in repr(info.value)


def test_clients_are_made_once_per_session_service_region(aws_files: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pgiam_tui.aws.session import cached_client, rds_client

    factory = SessionFactory(cache_dir=aws_files / "cache")
    session = factory.session("dev-static")
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: rds_client(session, "us-east-2"), range(32)))
    assert len({id(c) for c in made}) == 1
    assert made[0].meta.region_name == "us-east-2"
    assert cached_client(session, "rds", "us-east-1") is not made[0]
    assert cached_client(factory.session("default"), "rds", "us-east-2") is not made[0]
    assert getattr(made[0].meta.config, "connect_timeout", None) == 5


def test_expired_sso_token_says_how_to_log_in(aws_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setenv("HOME", str(aws_files))
    cache = aws_files / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    start_url = "https://legacy.awsapps.com/start"
    token = {
        "accessToken": "old",
        "expiresAt": "2020-01-01T00:00:00Z",
        "region": "us-east-1",
        "startUrl": start_url,
    }
    (cache / f"{hashlib.sha1(start_url.encode()).hexdigest()}.json").write_text(
        json.dumps(token), encoding="utf-8"
    )
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory(cache_dir=aws_files / "cli-cache").identity("sso-legacy")
    assert info.value.kind == "sso_expired"
    assert info.value.hint == "aws sso login --profile sso-legacy"
    assert str(info.value) == "profile 'sso-legacy': the SSO session has expired or was never started"


def test_cli_asks_for_the_mfa_code_on_the_terminal(
    sandbox: Sandbox, sandbox_env: dict[str, str], extra_profiles: Path
) -> None:
    import pty
    import select

    env = {**sandbox_env, "AWS_CONFIG_FILE": str(extra_profiles), "HOME": os.environ["HOME"]}
    env.pop("PGIAM_TUI_AWS_CLI_CACHE", None)  # this test's own (empty) cache: the MFA code must be asked
    argv = [str(BIN / "pgiam-tui"), "profiles", "--resolve", "with-mfa"]
    pid, fd = pty.fork()
    if pid == 0:  # child: the real console script on a terminal
        os.execve(argv[0], argv, env)
    seen = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                raise AssertionError(f"the command went quiet; terminal so far: {seen!r}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"Enter MFA code for" in seen:
                os.write(fd, b"424242\n")
                answered = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = seen.decode(errors="replace")
    assert answered, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert f"Enter MFA code for arn:aws:iam::{DB_ACCOUNT}:mfa/dba:" in text
    assert "424242" not in text  # not echoed
    assert f"arn:aws:sts::{DB_ACCOUNT}:assumed-role/pgdemo-oltp-rw-role/" in text


def test_cache_dir_override_from_environment(
    sandbox: Sandbox, extra_profiles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("PGIAM_TUI_AWS_CLI_CACHE", str(elsewhere))
    SessionFactory().identity("pgdemo-oltp-rw")
    assert len(cache_files(elsewhere)) == 1
    assert cache_files(tmp_path / ".aws" / "cli" / "cache") == {}  # HOME's cache untouched


def test_aws_profile_env_naming_a_missing_profile(aws_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "gone")
    with pytest.raises(AwsCredentialError) as info:
        SessionFactory(cache_dir=aws_files / "cache").session(None)
    assert info.value.kind == "unknown_profile"
    assert str(info.value) == "AWS profile 'gone' not found (from AWS_PROFILE)"
