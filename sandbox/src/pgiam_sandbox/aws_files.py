"""Files the sandbox writes for its users: AWS config + credentials, profiles.toml, env.sh, sandbox.json.

Profile names are a contract (tests, the demo and the docs name them):
instancecrossaccount, pgdemo-oltp-rw, pgdemo-oltp-ro, sandbox-db-admin, iam-reader, sandbox-mgmt-admin.
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from pgiam_sandbox.fake_aws import DB_ACCOUNT, StaticKey
from pgiam_sandbox.topology import SandboxCluster


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (it may hold keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def write_aws_files(
    directory: Path,
    keys: Mapping[str, StaticKey],
    *,
    endpoint_url: str,
    imds_url: str,
    region: str = "us-east-1",
) -> tuple[Path, Path]:
    """Write DIR/config and DIR/credentials; returns their paths.

    Every profile also names the sandbox's endpoints (endpoint_url, ec2_metadata_service_endpoint), so the
    files work without env.sh's AWS_ENDPOINT_URL / AWS_EC2_METADATA_SERVICE_ENDPOINT too.
    """
    config = directory / "config"
    credentials = directory / "credentials"
    endpoints = [f"endpoint_url = {endpoint_url}", f"ec2_metadata_service_endpoint = {imds_url}"]
    # A session name unique to this sandbox run: botocore and the AWS CLI key their assumed-role cache
    # (~/.aws/cli/cache) by role ARN + explicit session name, so without it a new sandbox would reuse role
    # credentials minted by an earlier (dead) moto for up to an hour, and every token would be refused.
    session_name = f"role_session_name = pgiam-sandbox-{uuid.uuid4().hex[:12]}"
    lines = [
        "# Written by the pgiam-tui sandbox: every endpoint is local (moto on loopback, a loopback IMDS).",
        "",
        "[default]",
        f"region = {region}",
        *endpoints,
        "",
        "# The scenario's cross-account chain: EC2 instance role pg-mgmt-role (management account, via IMDS)",
        "# assumes pg-monitor-role in the DB account.",
        "[profile instancecrossaccount]",
        f"role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pg-monitor-role",
        "credential_source = Ec2InstanceMetadata",
        session_name,
        f"region = {region}",
        *endpoints,
        "",
    ]
    for suffix in ("rw", "ro"):
        lines += [
            f"[profile pgdemo-oltp-{suffix}]",
            f"role_arn = arn:aws:iam::{DB_ACCOUNT}:role/pgdemo-oltp-{suffix}-role",
            "source_profile = sandbox-db-admin",
            session_name,
            f"region = {region}",
            *endpoints,
            "",
        ]
    for name in sorted(keys):
        lines += [f"[profile {name}]", f"region = {region}", *endpoints, ""]
    _write_private(config, "\n".join(lines))
    cred_lines = ["# Static keys of IAM users in the sandbox's fake AWS (moto); worthless elsewhere.", ""]
    for name, key in sorted(keys.items()):
        cred_lines += [
            f"[{name}]",
            f"aws_access_key_id = {key.access_key_id}",
            f"aws_secret_access_key = {key.secret_access_key}",
            "",
        ]
    _write_private(credentials, "\n".join(cred_lines))
    return config, credentials


def _toml_str(value: str) -> str:
    # JSON string escaping is valid TOML basic-string escaping for the characters we can meet here.
    return json.dumps(value)


def profiles_toml(clusters: Iterable[SandboxCluster], ca_path: Path) -> str:
    """The console config: one [[clusters]] entry per sandbox cluster, all through local tunnels."""
    out = [
        "# pgiam-tui console config for the local sandbox (written by `pgiam-tui sandbox up`).",
        "# Every endpoint is reached through a loopback port (the sandbox's RDS front doors), as through",
        "# an SSM/SSH tunnel: TLS name and token stay the endpoint, TCP goes to 127.0.0.1:PORT.",
        "",
    ]
    for c in clusters:
        out.append("[[clusters]]")
        out.append(f"name = {_toml_str(c.name)}")
        out.append('profile = "instancecrossaccount"')
        out.append('iam_profile = "iam-reader"')
        out.append(f"region = {_toml_str(c.region)}")
        if c.kind == "aurora" and c.cluster_id:
            out.append(f"cluster_id = {_toml_str(c.cluster_id)}")
        elif c.instance_id:
            out.append(f"instance_id = {_toml_str(c.instance_id)}")
        out.append(f"account_id = {_toml_str(c.account_id)}")
        out.append(f"database = {_toml_str(c.database)}")
        out.append('user = "pgmonitor"')
        out.append('auth = "iam"')
        out.append('sslmode = "verify-full"')
        out.append(f"sslrootcert = {_toml_str(str(ca_path))}")
        out.append(f"group = {_toml_str(f'db-account/{c.region}')}")
        out.append("allow_actions = true")
        out.append('log_source = "auto"')
        out.append("")
        out.append("[clusters.tunnels]")
        for host, port in _tunnels(c):
            out.append(f"{_toml_str(host)} = {_toml_str(f'{c.listen_host}:{port}')}")
        out.append("")
    return "\n".join(out)


def _tunnels(c: SandboxCluster) -> list[tuple[str, int]]:
    pairs: list[tuple[str, int]] = [(c.endpoint, c.listen_port)]
    if c.reader_endpoint and c.reader_listen_port:
        pairs.append((c.reader_endpoint, c.reader_listen_port))
    pairs += [(i.endpoint, i.listen_port) for i in c.instances if i.endpoint != c.endpoint]
    return pairs


def env_sh(env: Mapping[str, str]) -> str:
    """Shell exports, quoted for sh."""
    lines = ["# Source me: . ./env.sh   (pgiam-tui sandbox)"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a non-secret file (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def sandbox_json(clusters: Iterable[SandboxCluster], extra: Mapping[str, object]) -> str:
    """sandbox.json: every cluster (with instances) plus top-level facts (accounts, URLs, paths)."""
    return json.dumps({**extra, "clusters": [c.to_json() for c in clusters]}, indent=2) + "\n"
