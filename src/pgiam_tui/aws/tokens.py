"""IAM database auth tokens, made locally by boto3 (a SigV4-presigned URL, no network call).

A token is bound to host, port, region and user and is valid for 15 minutes; it is only checked at
login. The value is a credential: it is kept out of repr/str, logs and exception text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import botocore.exceptions

from pgiam_tui.aws.endpoints import require_endpoint_region
from pgiam_tui.aws.errors import classify_aws_error
from pgiam_tui.aws.session import rds_client

#: How long RDS accepts a token after it was signed.
TOKEN_LIFETIME = timedelta(seconds=900)


@dataclass(frozen=True, slots=True)
class Token:
    """An IAM auth token and what it is bound to. str()/repr() never show the value."""

    value: str = field(repr=False)
    host: str
    port: int
    user: str
    region: str
    issued_at: datetime
    expires_at: datetime

    def __str__(self) -> str:
        return (
            f"<token for {self.user}@{self.host}:{self.port} ({self.region}), "
            f"expires {self.expires_at.isoformat()}>"
        )

    def remaining(self, now: datetime | None = None) -> timedelta:
        """Time left before RDS refuses this token (negative when expired)."""
        return self.expires_at - (now or datetime.now(UTC))


def make_token(session: boto3.Session, host: str, port: int, user: str, region: str) -> Token:
    """Sign a token for USER at HOST:PORT in REGION with SESSION's credentials.

    Credential problems (no credentials, expired SSO, AssumeRole refused...) raise AwsCredentialError; a
    REGION other than the one an RDS endpoint HOST names raises DiscoveryError("region_mismatch") before
    anything is signed. Nothing raised here ever carries the token.
    """
    require_endpoint_region(host, region, "the token request")
    profile = session.profile_name if session.profile_name != "default" else None
    try:
        client = rds_client(session, region)
        value = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise classify_aws_error(exc, profile) from None
    issued_at, lifetime = _signed_at(value)
    return Token(
        value=value,
        host=host,
        port=port,
        user=user,
        region=region,
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
    )


_DATE_RE = re.compile(r"[?&]X-Amz-Date=(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")
_EXPIRES_RE = re.compile(r"[?&]X-Amz-Expires=(\d+)")


def _signed_at(value: str) -> tuple[datetime, timedelta]:
    """The signing time and lifetime written in the presigned URL (X-Amz-Date, X-Amz-Expires).

    A regex rather than urllib + strptime: this runs for every token and costs a few microseconds.
    """
    date = _DATE_RE.search(value)
    expires = _EXPIRES_RE.search(value)
    if date is None or expires is None:
        # Never expected from botocore; fall back to the documented lifetime rather than fail.
        return datetime.now(UTC).replace(microsecond=0), TOKEN_LIFETIME
    year, month, day, hour, minute, second = (int(g) for g in date.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC), timedelta(seconds=int(expires[1]))
