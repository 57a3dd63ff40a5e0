"""`pgiam-tui [--config FILE] token NAME`: print an IAM auth token, as `aws rds generate-db-auth-token` would.

The token is signed for the cluster's endpoint and canonical port (never a tunnel's local address), the
configured user and the cluster's region. Only the token goes to stdout; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `token` command."""
    parser = subparsers.add_parser(
        "token",
        help="print an IAM auth token for a cluster",
        description="Print an IAM database auth token for cluster NAME (valid 15 minutes), signed for its "
        "endpoint and port, as `aws rds generate-db-auth-token` would.",
    )
    parser.add_argument("name", metavar="NAME", help="cluster name from the config")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--instance", metavar="ID", help="sign for this member instance's endpoint instead")
    where.add_argument("--reader", action="store_true", help="sign for the Aurora reader endpoint instead")
    parser.add_argument("--user", metavar="USER", help="database user (default: the config's user)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 with the token on stdout; 2 for config/usage errors (a region contradicting the endpoint too);
    1 when AWS refused or failed."""
    from pgiam_tui.aws.discovery import resolve_cluster
    from pgiam_tui.aws.errors import AwsCredentialError, DiscoveryError
    from pgiam_tui.aws.session import SessionFactory
    from pgiam_tui.aws.tokens import make_token
    from pgiam_tui.commands._cliutil import fail, load_cli_config, terminal_mfa_prompt
    from pgiam_tui.config import ConfigError

    try:
        cfg = load_cli_config(args.config).cluster(args.name)
    except ConfigError as exc:
        fail(str(exc))
        return 2
    if cfg.auth != "iam":
        fail(f'cluster {cfg.name!r} uses auth = {cfg.auth!r}; tokens are for auth = "iam" clusters')
        return 2
    user = args.user or cfg.user
    factory = SessionFactory(terminal_mfa_prompt)
    try:
        session = factory.session(cfg.profile)
        resolved = resolve_cluster(cfg, session)
        host, port = resolved.endpoint, resolved.port
        if args.reader:
            if not resolved.reader_endpoint:
                fail(f"cluster {cfg.name!r} has no reader endpoint (kind {resolved.kind})")
                return 2
            host = resolved.reader_endpoint
        elif args.instance:
            try:
                inst = resolved.instance(args.instance)
            except KeyError:
                known = ", ".join(i.id for i in resolved.instances)
                fail(f"cluster {cfg.name!r} has no instance {args.instance!r} (known: {known})")
                return 2
            host, port = inst.endpoint, inst.port
        token = make_token(session, host, port, user, resolved.region)
    except (AwsCredentialError, DiscoveryError) as exc:
        fail(str(exc), exc.hint)
        # a region that contradicts the endpoint is a config error (nothing was signed)
        return 2 if isinstance(exc, DiscoveryError) and exc.kind == "region_mismatch" else 1
    print(token.value)
    return 0
