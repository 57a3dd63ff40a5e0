"""The AWS request budget counts each request against the account and region AWS counts it against."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from pgiam_tui.aws import budget

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"


class _Headers(dict[str, str]):
    pass


class _FakeRaw:
    def stream(self, **_: Any) -> Any:
        return iter(())


def _answer(status: int, body: bytes) -> AWSResponse:
    response = AWSResponse("https://example.invalid", status, HTTPHeaders(), _FakeRaw())
    response._content = body  # type: ignore[attr-defined]  # what botocore reads back
    return response


_USER = (
    b"<GetUserResponse><GetUserResult><User><UserName>u</UserName><UserId>AIDAEXAMPLE</UserId><Path>/</Path>"
    b"<Arn>arn:aws:iam::123456789012:user/u</Arn><CreateDate>2024-01-01T00:00:00Z</CreateDate></User>"
    b"</GetUserResult></GetUserResponse>"
)


def test_the_signed_region_is_read_from_the_credential_scope() -> None:
    # the Authorization header form of AWS's SigV4 documentation ("Authorization header" examples)
    request = type("R", (), {})()
    request.headers = _Headers(
        Authorization="AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-date, "
        "Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
    )
    assert budget.signed_region(request) == "us-east-1"
    request.headers = _Headers()  # unsigned
    assert budget.signed_region(request) is None
    assert budget.signed_region(None) is None


def test_a_global_service_counts_in_the_region_it_signs_for_and_the_noted_account() -> None:
    session = boto3.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region_name="eu-west-3",
    )
    budget.note_account(session, ACCOUNT)
    iam = session.client("iam")  # made without a region, as the IAM pane's client is
    budget.install_budget(iam, session, None)
    # answered locally: registered after the budget's handler, it runs after it and stops the real send
    answer: Any = lambda **_: _answer(200, _USER)  # noqa: E731  # botocore's stubs expect None handlers
    iam.meta.events.register("before-send", answer)
    before = budget.budget_for(session, "us-east-1").sent
    elsewhere = budget.budget_for(session, "eu-west-3").sent
    iam.get_user()
    assert budget.budget_for(session, "us-east-1").sent == before + 1
    assert budget.budget_for(session, "eu-west-3").sent == elsewhere
