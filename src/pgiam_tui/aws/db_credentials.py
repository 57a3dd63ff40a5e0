"""The IAM side of a database login: db/ asks a `CredentialProvider` for a password, this supplies tokens.

db/ never imports aws/ (import-linter keeps that wall): it defines the interface (`Credential`,
`CredentialProvider`) and the composition root (the Monitor) wires this implementation into it.
"""

from __future__ import annotations

import asyncio

import boto3

from pgiam_tui.aws.tokens import make_token
from pgiam_tui.db.connection import ConnectError, Credential, CredentialProvider
from pgiam_tui.db.conninfo import ConnTarget


def iam_token_provider(session: boto3.Session, target: ConnTarget) -> CredentialProvider:
    """A CredentialProvider making a fresh IAM token per call (boto3 in a worker thread, never on the loop).

    The token is signed for the endpoint and canonical port (not the tunnel), the user and the region.
    """
    if not target.region:
        raise ConnectError(f"{target.cluster}: no region known for {target.endpoint}", step="config")
    region = target.region

    async def provide() -> Credential:
        token = await asyncio.to_thread(
            make_token, session, target.endpoint, target.port, target.user, region
        )
        return Credential(token.value, token.expires_at)

    return provide
