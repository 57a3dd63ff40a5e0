"""Our clients retry in botocore's `adaptive` mode unless the user chose a mode (AWS_RETRY_MODE or the
profile's `retry_mode`, botocore's documented settings:
https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgiam_tui.aws.session import SessionFactory, cached_client

pytestmark = pytest.mark.unit

CONFIG = """\
[default]
region = us-east-1

[profile standard-retries]
region = us-east-1
retry_mode = standard
"""


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SessionFactory:
    config = tmp_path / "config"
    config.write_text(CONFIG, encoding="utf-8")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return SessionFactory(cache_dir=tmp_path / "cache")


def _mode(factory: SessionFactory, profile: str | None) -> str:
    client = cached_client(factory.session(profile), "sts", "us-east-1")
    return str(client.meta.config.retries["mode"])


def test_adaptive_when_the_user_chose_no_mode(factory: SessionFactory) -> None:
    assert _mode(factory, None) == "adaptive"


def test_the_profiles_retry_mode_wins(factory: SessionFactory) -> None:
    assert _mode(factory, "standard-retries") == "standard"


def test_the_environment_wins(factory: SessionFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    assert _mode(factory, None) == "legacy"
    assert _mode(factory, "standard-retries") == "legacy"  # botocore: the environment beats the profile
