"""The sandbox's environment (what env.sh exports) applied to a process or handed to a subprocess.

One place for the rule every user of the sandbox needs: a developer's own AWS variables (a profile, keys, a
web-identity role, a disabled IMDS) would make boto3 ignore the sandbox's config files, so they are removed
before the sandbox's variables are applied.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

#: Variables that would make boto3 ignore the sandbox's files.
AWS_OVERRIDES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
)


def sandbox_environ(env: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """BASE (default: this process's environment) without AWS_OVERRIDES, with the sandbox's ENV on top."""
    merged = {k: v for k, v in (os.environ if base is None else base).items() if k not in AWS_OVERRIDES}
    merged.update(env)
    return merged


@contextlib.contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """Apply the sandbox's ENV to this process (see sandbox_environ); the old environment comes back after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(sandbox_environ(env, saved))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def read_env_sh(path: Path) -> dict[str, str]:
    """The variables a sandbox's env.sh exports (for a sandbox running in another process)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env
