"""A test's AWS environment: botocore reads the files the test wrote and nothing else around it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def only_these_aws_files(monkeypatch: pytest.MonkeyPatch, config: Path, credentials: Path) -> None:
    """Point botocore at CONFIG and CREDENTIALS after removing every AWS_* variable around the test.

    A developer's shell (a profile, keys) or the session's sandbox (its endpoint, its IMDS, its retry
    settings, exported for the rest of the run) would otherwise change what botocore resolves, and so the
    test's result would depend on which tests ran before it. The test sets what it needs on top.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
