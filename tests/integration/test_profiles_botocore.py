"""`pgiam-tui profiles --json` against botocore itself, on botocore's own config fixtures.

Every profile of every file in tests/data/botocore (each file names the botocore test it was copied
from) is listed by the product, then botocore's own credential resolver is asked the same question
(its IMDS/container leaves replaced as botocore's functional tests replace them, STS answered by
Stubber): the kind must match the provider botocore used, a refusal must be botocore's exception in
botocore's words, and the chain must name the roles botocore assumed, in order, from the keys it used.
Nothing is contacted and no credential_process runs while the product lists profiles.
"""

from __future__ import annotations

import argparse
import configparser
import copy
import datetime as dt
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.credentials
import botocore.session
import pytest
from botocore.stub import Stubber

from pgiam_tui.aws.profile_dry_run import check_botocore_layout
from pgiam_tui.commands import profiles as profiles_command

DATA = Path(__file__).resolve().parent.parent / "data" / "botocore"
FIXTURES = sorted(DATA.glob("*.ini"))

# A credential_process that leaves a mark when it runs, then prints keys (as botocore's own
# tests/functional/utils/credentialprocess.py does).
PROCESS_SCRIPT = """
import json, pathlib, sys
pathlib.Path(sys.argv[1]).write_text("ran")
print(json.dumps({"Version": 1, "AccessKeyId": "proc-key", "SecretAccessKey": "proc-secret"}))
"""


class CountingListener:
    """A TCP listener that counts connections (stands where IMDS would be)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def imds() -> Iterator[CountingListener]:
    listener = CountingListener()
    yield listener
    listener.close()


@dataclass
class Environment:
    config: Path
    credentials: Path
    marker: Path
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)


def prepare(
    fixture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, imds: CountingListener
) -> Environment:
    """Write FIXTURE with its placeholders filled, point botocore at it, clear every other source."""
    script = tmp_path / "credentialprocess.py"
    script.write_text(PROCESS_SCRIPT, encoding="utf-8")
    marker = tmp_path / "process-ran"
    token = tmp_path / "token.jwt"
    token.write_text("totally.a.token", encoding="utf-8")
    text = fixture.read_text(encoding="utf-8")
    text = text.replace("{credential_process}", f"{sys.executable} {script} {marker}")
    text = text.replace("{token_path}", str(token))
    config = tmp_path / "config"
    config.write_text(text, encoding="utf-8")
    companion = fixture.with_suffix(".credentials")
    credentials = tmp_path / "credentials"
    if companion.exists():
        credentials.write_text(companion.read_text(encoding="utf-8"), encoding="utf-8")
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ENDPOINT_URL",
        "BOTO_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    env = Environment(config, credentials, marker)
    env.profiles = {k: dict(v) for k, v in botocore.session.Session().full_config["profiles"].items()}
    return env


def product_rows(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="pgiam-tui")
    profiles_command.register(parser.add_subparsers())
    args = parser.parse_args(["profiles", "--json"])
    assert args.func(args) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)["profiles"]}


# ------------------------------------------------------------------------------- botocore's answer


@dataclass
class BotocoreAnswer:
    method: str | None = None
    error: Exception | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, RoleArn), in call order
    first_key: str | None = None  # access key botocore signed its first AssumeRole with
    frozen_error: Exception | None = None


def fake_provider(cls: type[Any], key: str, *, only_if: tuple[str, ...] = ()) -> Any:
    """A leaf provider answering KEY, as botocore's functional tests mock IMDS and the container
    (the container one only when its environment variables are set, as botocore's own checks first)."""

    class Fake(cls):  # type: ignore[misc]
        def __init__(self) -> None:
            pass

        def load(self) -> botocore.credentials.Credentials | None:
            if only_if and not any(v in os.environ for v in only_if):
                return None
            return botocore.credentials.Credentials(key, "secret", method=cls.METHOD)

    return Fake()


def stubbed_session(profile: str, answer: BotocoreAnswer) -> botocore.session.Session:
    """botocore's session whose STS clients answer from a Stubber and record what they were asked."""
    session = botocore.session.Session(profile=profile)
    original = session.create_client
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    body = {
        "Credentials": {
            "AccessKeyId": "ASIAASSUMEDKEY0001",
            "SecretAccessKey": "assumed-secret",
            "SessionToken": "assumed-token",
            "Expiration": expiry,
        },
        "AssumedRoleUser": {"AssumedRoleId": "id:x", "Arn": "arn:aws:sts::123456789012:assumed-role/r/x"},
    }

    def create_client(service: str, *args: Any, **kwargs: Any) -> Any:
        client = original(service, *args, **kwargs)
        if service != "sts":
            return client
        web = "aws_access_key_id" not in kwargs
        operation = "assume_role_with_web_identity" if web else "assume_role"
        if not web and answer.first_key is None:
            answer.first_key = kwargs["aws_access_key_id"]

        def record(params: dict[str, Any], **_: Any) -> None:
            answer.calls.append((operation, params["RoleArn"]))

        client.meta.events.register("provide-client-params.sts.*", record)
        stubber = Stubber(client)
        stubber.add_response(operation, copy.deepcopy(body))  # botocore edits the response it parses
        stubber.activate()
        return client

    session.create_client = create_client  # type: ignore[method-assign, assignment]
    return session


def ask_botocore(profile: str) -> BotocoreAnswer:
    answer = BotocoreAnswer()
    session = stubbed_session(profile, answer)
    resolver = botocore.credentials.create_credential_resolver(session)
    fakes = {
        "iam-role": fake_provider(botocore.credentials.InstanceMetadataProvider, "imds-key"),
        "container-role": fake_provider(
            botocore.credentials.ContainerProvider,
            "container-key",
            only_if=(
                botocore.credentials.ContainerProvider.ENV_VAR,
                botocore.credentials.ContainerProvider.ENV_VAR_FULL,
            ),
        ),
    }
    resolver.providers = [fakes.get(p.METHOD or "", p) for p in resolver.providers]
    assume = resolver.get_provider("assume-role")
    assume._credential_sourcer = botocore.credentials.CanonicalNameCredentialSourcer(  # type: ignore[attr-defined]
        [botocore.credentials.EnvProvider(), fakes["container-role"], fakes["iam-role"]]
    )
    try:
        creds = resolver.load_credentials()
    except Exception as exc:
        answer.error = exc
        return answer
    if creds is None:
        return answer
    answer.method = creds.method
    try:
        creds.get_frozen_credentials()
    except Exception as exc:  # e.g. an SSO source without a cached token
        answer.frozen_error = exc
    return answer


KINDS = {
    "shared-credentials-file": "static",
    "config-file": "static",
    "sso": "sso",
    "login": "login",
    "custom-process": "credential_process",
    "assume-role-with-web-identity": "web_identity",
    "iam-role": "none",
    "container-role": "none",
}

SOURCE_KEYS = {"credential_process": "proc-key", "credential_source Ec2InstanceMetadata": "imds-key"}


def expected_calls(row: dict[str, Any], profiles: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """The STS calls the product's chain implies, innermost first."""
    chain: list[str] = row["chain"]
    source: str = row["chain_source"]
    roles = [("assume_role", profiles[p]["role_arn"]) for p in chain[:-1]]
    last = profiles[chain[-1]]
    if source == "web identity":
        roles.append(("assume_role_with_web_identity", last["role_arn"]))
    elif len(chain) == 1 or source.startswith("credential_source"):
        roles.append(("assume_role", last["role_arn"]))
    return list(reversed(roles))


def static_key(profile: str, env: Environment) -> str | None:
    parser = configparser.ConfigParser()
    parser.read(env.credentials)
    if parser.has_option(profile, "aws_access_key_id"):
        return parser.get(profile, "aws_access_key_id")
    return env.profiles[profile].get("aws_access_key_id")


# ------------------------------------------------------------------------------------------ tests


def test_fixtures_are_there() -> None:
    assert len(FIXTURES) >= 25
    for fixture in FIXTURES:
        assert fixture.read_text(encoding="utf-8").startswith(
            ("# Copied from boto/botocore", "# Profiles")
        ), fixture


def test_botocore_still_has_what_the_dry_run_replaces() -> None:
    check_botocore_layout()


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_profiles_agree_with_botocore(
    fixture: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    imds: CountingListener,
) -> None:
    env = prepare(fixture, tmp_path, monkeypatch, imds)
    rows = product_rows(capsys)
    # Listing contacted nothing and ran nothing.
    assert imds.accepted == 0
    assert not env.marker.exists()
    assert set(rows) == set(env.profiles)
    for name, row in rows.items():
        answer = ask_botocore(name)
        where = f"{fixture.name} [{name}]"
        if answer.error is not None:
            assert row["problem"] == str(answer.error), where
            assert row["problem_type"] == type(answer.error).__name__, where
            continue
        assert row["problem"] is None, where
        if answer.method == "assume-role":
            assert row["kind"].startswith("assume_role"), where
            if answer.frozen_error is not None:
                assert row["chain_source"] == "sso", (where, answer.frozen_error)
                continue
            assert answer.calls == expected_calls(row, env.profiles), where
            if row["chain_source"] == "static keys":
                assert answer.first_key == static_key(row["chain"][-1], env), where
            elif row["chain_source"] in SOURCE_KEYS:
                assert answer.first_key == SOURCE_KEYS[row["chain_source"]], where
        else:
            assert row["kind"] == KINDS[str(answer.method)], where
            assert row["chain"] == [name], where


def test_the_cases_the_issue_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    imds: CountingListener,
) -> None:
    """Spot checks with the expected answers written out (botocore's words)."""
    rows: dict[str, dict[str, Any]] = {}
    for stem in (
        "unit_test_credentials_cases",
        "functional_TestAssumeRole__test_recursive_assume_role_stops_at_static_creds",
        "functional_TestAssumeRole__test_misconfigured_source_profile",
        "functional_TestAssumeRole__test_invalid_credential_source",
        "functional_SSOSessionTest__test_mismatched_session_values",
    ):
        sub = tmp_path / stem
        sub.mkdir()
        env = prepare(DATA / f"{stem}.ini", sub, monkeypatch, imds)
        rows.update({f"{stem}:{k}": v for k, v in product_rows(capsys).items()})
        assert not env.marker.exists()
    cases = "unit_test_credentials_cases:"
    assert rows[cases + "partial"]["problem"] == (
        "Partial credentials found in config-file, missing: aws_secret_access_key"
    )
    assert rows[cases + "development"]["problem"] == (
        'The profile "development" contains both source_profile and credential_source.'
    )
    assert "has no role ARN configured" in rows[cases + "web-no-role"]["problem"]
    assert rows[cases + "sso-no-region"]["problem"] == (
        'The profile "sso-no-region" is configured to use SSO but is missing required '
        "configuration: sso_region"
    )
    assert rows[cases + "process-and-keys"]["kind"] == "static"  # the credentials file wins
    assert rows[cases + "process-and-config-keys"]["kind"] == "credential_process"
    stops = "functional_TestAssumeRole__test_recursive_assume_role_stops_at_static_creds:A"
    assert rows[stops]["chain"] == ["A", "B"] and rows[stops]["chain_source"] == "static keys"
    assert rows["functional_TestAssumeRole__test_misconfigured_source_profile:A"]["problem"] == (
        'The source profile "B" must have credentials.'
    )
    assert rows["functional_TestAssumeRole__test_invalid_credential_source:A"]["problem"] == (
        'The credential source "CustomInvalidProvider" referenced in profile "A" is not valid.'
    )
    assert rows["functional_SSOSessionTest__test_mismatched_session_values:sso-test"]["problem"] == (
        "The value for sso_start_url is inconsistent between profile "
        "(https://test2.awsapps.com/start) and sso-session (https://test.awsapps.com/start)."
    )


def test_login_session_is_a_kind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    imds: CountingListener,
) -> None:
    prepare(DATA / "functional_login_provider.ini", tmp_path, monkeypatch, imds)
    row = product_rows(capsys)["signin"]
    assert row["login_session"] == "arn:aws:sts::012345678910:assumed-role/Admin/admin"
    assert row["kind"] == "login"
