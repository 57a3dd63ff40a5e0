"""pgiam_sandbox.shared_loader: the stand-in's botocore sessions parse each data file once per process."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import botocore.session
import pytest
from pgiam_sandbox import shared_loader

pytestmark = pytest.mark.unit


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # undone after the test: other tests see botocore as it ships
    monkeypatch.setattr(botocore.session, "create_loader", botocore.session.create_loader)
    monkeypatch.setattr(shared_loader, "_loaders", {})
    shared_loader.install()
    yield


def test_sessions_made_after_install_share_one_loader(installed: None) -> None:
    first = botocore.session.Session().get_component("data_loader")
    second = botocore.session.Session().get_component("data_loader")
    assert first is second
    # what one session parsed, the next finds parsed: the very same object
    assert first.load_data("partitions") is second.load_data("partitions")


def test_boto3_sessions_add_their_data_directory_once(installed: None) -> None:
    sessions = [boto3.Session(region_name="us-east-1") for _ in range(3)]
    paths = sessions[0]._session.get_component("data_loader").search_paths
    assert len(paths) == len(set(paths))
    assert any(p.endswith("boto3/data") for p in paths)  # boto3's resource models stay reachable


def test_a_different_data_path_gets_its_own_loader(installed: None, tmp_path: object) -> None:
    default = botocore.session.Session().get_component("data_loader")
    other = botocore.session.Session()
    other.set_config_variable("data_path", str(tmp_path))
    assert other.get_component("data_loader") is not default
