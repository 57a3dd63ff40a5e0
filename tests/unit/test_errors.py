"""The one error base class: config, AWS, database and check errors carry message, hint and step alike."""

from __future__ import annotations

import pytest

from pgiam_tui.aws.errors import AwsCredentialError, DiscoveryError
from pgiam_tui.aws.iam_read import IamReadError
from pgiam_tui.config import ConfigError
from pgiam_tui.db.connection import ConnectError, QueryError
from pgiam_tui.db.queries import UnsupportedServerError
from pgiam_tui.diagnose.iam_evidence import EvidenceUnavailable
from pgiam_tui.errors import PgiamError
from pgiam_tui.secrets import SecretStoreError


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (ConfigError("profiles.toml:3: key 'port': port 0 out of range 1-65535"), "config"),
        (
            AwsCredentialError("no credentials\nfound", "no_credentials", "aws sso login", "dev"),
            "credentials",
        ),
        (DiscoveryError("cluster pgdemo-9 not found", "not_found"), "discovery"),
        (IamReadError("AccessDenied", code="AccessDenied", permission="iam:GetRole"), "iam"),
        (ConnectError("connection refused", hint="is the tunnel up?"), "connect"),
        (ConnectError("no region known", step="config"), "config"),
        (QueryError("canceling statement due to statement timeout", sqlstate="57014"), "query"),
        (UnsupportedServerError("PostgreSQL 9.6 is older than any query file"), "query"),
        (EvidenceUnavailable("cannot read log group"), "evidence"),
        (SecretStoreError("no keyring backend"), "password"),
    ],
)
def test_every_error_carries_message_hint_and_step(error: PgiamError, step: str) -> None:
    assert isinstance(error, PgiamError)
    assert error.step == step
    assert isinstance(error.hint, str)
    assert str(error) == error.message and "\n" not in error.message


def test_hint_and_step_given_by_the_raiser_win() -> None:
    error = PgiamError("x", hint="do y", step="token")
    assert (error.message, error.hint, error.step) == ("x", "do y", "token")
    assert PgiamError("x").hint == "" and PgiamError("x").step == "error"
