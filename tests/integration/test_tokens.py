"""IAM auth tokens: made by make_token, accepted by the sandbox's RDS front door over verify-full TLS,
bound to host/port, never shown by str()/repr()/exceptions; `pgiam-tui token` matches the AWS CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from pgiam_tui.aws.discovery import resolve_cluster
from pgiam_tui.aws.errors import AwsCredentialError, DiscoveryError
from pgiam_tui.aws.session import SessionFactory
from pgiam_tui.aws.tokens import Token, make_token
from pgiam_tui.config import load_config

BIN = Path(sys.executable).parent  # the venv's console scripts (pgiam-tui, aws)

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox, SandboxCluster

PROFILE = "instancecrossaccount"


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> SessionFactory:
    return SessionFactory(cache_dir=tmp_path_factory.mktemp("cli-cache"))


def login(
    sandbox: Sandbox, endpoint: str, listen_port: int, token: Token | str, user: str = "pgmonitor"
) -> str:
    """Log in through the front door (TLS name = endpoint, TCP = loopback); returns current_user."""
    with psycopg.connect(
        host=endpoint,
        hostaddr="127.0.0.1",
        port=listen_port,
        user=user,
        password=token if isinstance(token, str) else token.value,
        dbname="demo",
        sslmode="verify-full",
        sslrootcert=str(sandbox.ca_path),
        connect_timeout=10,
    ) as conn:
        row = conn.execute("select current_user").fetchone()
    assert row is not None
    return str(row[0])


def test_token_fields_and_secrecy(sandbox: Sandbox, factory: SessionFactory) -> None:
    session = factory.session(PROFILE)
    before = datetime.now(UTC).replace(microsecond=0)
    token = make_token(session, "h.example.us-east-1.rds.amazonaws.com", 5432, "pgmonitor", "us-east-1")
    assert token.value.startswith("h.example.us-east-1.rds.amazonaws.com:5432/?")
    query = parse_qs(urlsplit("https://" + token.value).query)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["pgmonitor"]
    assert "/us-east-1/rds-db/aws4_request" in query["X-Amz-Credential"][0]
    assert token.expires_at - token.issued_at == timedelta(seconds=900)
    assert before - timedelta(seconds=1) <= token.issued_at <= datetime.now(UTC)
    assert token.remaining() > timedelta(minutes=14)
    signature = query["X-Amz-Signature"][0]
    for shown in (str(token), repr(token), f"{token}", format(token, ""), str([token])):
        assert signature not in shown and token.value not in shown
    assert "pgmonitor@h.example.us-east-1.rds.amazonaws.com:5432" in str(token)


def test_tokens_log_in_through_the_front_door(sandbox: Sandbox, factory: SessionFactory) -> None:
    config = load_config(sandbox.profiles_toml)
    for sc in sandbox.clusters:
        cfg = config.cluster(sc.name)
        session = factory.session(cfg.profile)
        resolved = resolve_cluster(cfg, session)
        # The cluster (or instance) endpoint, as `aws rds generate-db-auth-token --hostname ENDPOINT` does.
        token = make_token(session, resolved.endpoint, resolved.port, cfg.user, resolved.region)
        assert login(sandbox, sc.endpoint, sc.listen_port, token) == "pgmonitor"
        # Every member instance, with a token signed for that instance's own endpoint.
        for inst in resolved.instances:
            assert inst.connect_host == "127.0.0.1"
            token = make_token(session, inst.endpoint, inst.port, cfg.user, resolved.region)
            assert login(sandbox, inst.endpoint, inst.connect_port, token) == "pgmonitor"


def one_cluster(sandbox: Sandbox) -> SandboxCluster:
    return next(c for c in sandbox.clusters if c.kind == "aurora")


@pytest.mark.parametrize(
    ("host", "port", "region"),
    [
        ("127.0.0.1", None, None),  # signed for the tunnel's address instead of the endpoint
        (None, 15432, None),  # signed for the tunnel's local port
        (None, None, "eu-west-1"),  # wrong region (botocore signs it; the product refuses to, see below)
    ],
)
def test_token_bound_to_host_port_region(
    sandbox: Sandbox, factory: SessionFactory, host: str | None, port: int | None, region: str | None
) -> None:
    sc = one_cluster(sandbox)
    session = factory.session(PROFILE)
    if region is None:
        token = make_token(session, host or sc.endpoint, port or sc.port, "pgmonitor", sc.region).value
    else:
        with pytest.raises(
            DiscoveryError, match=f"is in region {sc.region}, but the token request says {region}"
        ):
            make_token(session, sc.endpoint, sc.port, "pgmonitor", region)
        rds = session.client("rds", region_name=region)  # as `aws rds generate-db-auth-token --region` would
        token = rds.generate_db_auth_token(DBHostname=sc.endpoint, Port=sc.port, DBUsername="pgmonitor")
    with pytest.raises(psycopg.OperationalError) as info:
        login(sandbox, sc.endpoint, sc.listen_port, token)
    text = str(info.value)
    assert 'PAM authentication failed for user "pgmonitor"' in text
    signature = parse_qs(urlsplit("https://" + token).query)["X-Amz-Signature"][0]
    assert signature not in text and signature not in repr(info.value)


def test_token_without_credentials_is_classified(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = SessionFactory(cache_dir=tmp_path / "c").session(None)
    with pytest.raises(AwsCredentialError) as info:
        make_token(session, "h.example", 5432, "pgmonitor", "us-east-1")
    assert info.value.kind == "no_credentials"
    assert "\n" not in str(info.value)


def test_token_command_matches_aws_cli_and_logs_in(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    sc = one_cluster(sandbox)
    env = {**sandbox_env, "HOME": str(tmp_path)}  # one shared ~/.aws/cli/cache for both tools
    env.pop("PGIAM_TUI_AWS_CLI_CACHE", None)  # (the sandbox points ours elsewhere by default)
    ours = subprocess.run(
        [str(BIN / "pgiam-tui"), "--config", str(sandbox.profiles_toml), "token", sc.name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == ""
    ours_token = ours.stdout.strip()
    assert "\n" not in ours_token
    theirs = subprocess.run(
        [
            str(BIN / "aws"), "rds", "generate-db-auth-token", "--hostname", sc.endpoint,
            "--port", str(sc.port), "--region", sc.region, "--username", "pgmonitor", "--profile", PROFILE,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    theirs_token = theirs.stdout.strip()

    def shape(token: str) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit("https://" + token)
        query = parse_qs(parts.query)
        for volatile in ("X-Amz-Date", "X-Amz-Signature"):
            query.pop(volatile)
        # The credential scope holds the signing date; same access key because the role creds are shared.
        query["X-Amz-Credential"] = [query["X-Amz-Credential"][0].split("/", 1)[0]]
        return parts.netloc + parts.path, query

    assert shape(ours_token) == shape(theirs_token)
    token = Token(
        ours_token, sc.endpoint, sc.port, "pgmonitor", sc.region, datetime.now(UTC), datetime.now(UTC)
    )
    assert login(sandbox, sc.endpoint, sc.listen_port, token) == "pgmonitor"


def test_token_command_errors_are_one_line(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[clusters]]\nname = "x"\ncluster_id = "no-such-cluster"\nregion = "us-east-1"\n'
                   'profile = "instancecrossaccount"\n', encoding="utf-8")  # fmt: skip
    env = {**sandbox_env, "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(BIN / "pgiam-tui"), "--config", str(bad), "token", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert (
        "Aurora cluster 'no-such-cluster' not found in account 111111111111, region us-east-1" in done.stderr
    )
    assert "Traceback" not in done.stderr
    missing = subprocess.run(
        [str(BIN / "pgiam-tui"), "--config", str(bad), "token", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "no cluster named 'nope' (known: x)" in missing.stderr and missing.stderr.count("\n") == 1
    assert os.environ.get("PGIAM_TUI_CONFIG")  # the sandbox's config is what a bare `token` would use


def test_token_command_for_a_member_or_the_reader_endpoint(
    sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path: Path
) -> None:
    sc = one_cluster(sandbox)
    reader = next(i for i in sc.instances if i.role == "reader")
    env = {**sandbox_env, "HOME": str(tmp_path)}
    base = [str(BIN / "pgiam-tui"), "--config", str(sandbox.profiles_toml), "token", sc.name]
    targets: list[tuple[str, str | None, str, int]] = [
        ("--instance", reader.id, reader.endpoint, reader.listen_port)
    ]
    assert sc.reader_endpoint is not None and sc.reader_listen_port is not None
    targets.append(("--reader", None, sc.reader_endpoint, sc.reader_listen_port))
    for flag, value, endpoint, port in targets:
        argv = [*base, flag] + ([value] if value else [])
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        value_ = done.stdout.strip()
        assert value_.startswith(f"{endpoint}:5432/?")
        token = Token(value_, endpoint, 5432, "pgmonitor", sc.region, datetime.now(UTC), datetime.now(UTC))
        assert login(sandbox, endpoint, port, token) == "pgmonitor"
    bad = subprocess.run([*base, "--instance", "nope"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert (
        f"cluster '{sc.name}' has no instance 'nope' (known: " in bad.stderr and bad.stderr.count("\n") == 1
    )


def test_role_credentials_cached_by_an_earlier_sandbox_are_not_reused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """An earlier sandbox (another moto) left role credentials in the AWS CLI cache under the key botocore
    uses for a profile without role_session_name; they must not be picked up (they'd be refused)."""
    import hashlib
    import json

    arn = "arn:aws:iam::111111111111:role/pg-monitor-role"
    key = hashlib.sha1(json.dumps({"RoleArn": arn}, sort_keys=True).encode()).hexdigest()
    stale = {
        "Credentials": {
            "AccessKeyId": "ASIASTALESTALESTALE0",
            "SecretAccessKey": "stale-secret",
            "SessionToken": "stale-token",
            "Expiration": (datetime.now(UTC) + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "AssumedRoleUser": {
            "Arn": "arn:aws:sts::111111111111:assumed-role/pg-monitor-role/old",
            "AssumedRoleId": "x",
        },
    }
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{key}.json").write_text(json.dumps(stale), encoding="utf-8")
    factory = SessionFactory(cache_dir=cache)
    credentials = factory.session(PROFILE).get_credentials()
    assert credentials is not None
    assert credentials.get_frozen_credentials().access_key != "ASIASTALESTALESTALE0"
    sc = one_cluster(sandbox)
    token = make_token(factory.session(PROFILE), sc.endpoint, sc.port, "pgmonitor", sc.region)
    assert login(sandbox, sc.endpoint, sc.listen_port, token) == "pgmonitor"
