"""The causes a connection check can name: a stable code, a sentence, and the fix.

Codes are a contract (tests, `check --json` and the console rely on them); sentences and fixes are for humans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# code -> short title (the sentence shown when no more specific text was built)
CAUSES: dict[str, str] = {
    "config_invalid": "the cluster's entry in the config cannot work as written",
    "unknown_profile": "the AWS profile does not exist",
    "sso_expired": "the SSO session of the profile has expired",
    "imds_unreachable": "credential_source needs the EC2 instance metadata service, which is unreachable",
    "assume_role_denied": "AssumeRole was refused (trust policy or sts:AssumeRole permission)",
    "credentials_expired": "the AWS credentials have expired",
    "no_credentials": "no AWS credentials were found",
    "aws_error": "AWS could not be asked",
    "aws_timeout": "AWS did not answer in time (a timeout: nothing says a permission is missing)",
    "cluster_not_found": "the cluster or instance was not found with this profile and region",
    "discovery_denied": "the profile may not describe the cluster",
    "iam_auth_disabled": "IAM database authentication is disabled on the cluster",
    "token_error": "no IAM auth token could be made",
    "clock_skew": "the local clock is off, so the token's signing time is wrong",
    "region_mismatch": "the token is signed for another region than the cluster's",
    "token_host_mismatch": (
        "the token is signed for another host or port than the endpoint (tunnel set up wrong)"
    ),
    "dns_failure": "the endpoint name does not resolve",
    "tcp_refused": "nothing listens at the connect address (connection refused)",
    "tcp_timeout": "the TCP connection timed out (security group, network ACL, routing or tunnel down)",
    "tcp_unreachable": "the connect address is unreachable from here",
    "tls_refused": "the server refused TLS",
    "ca_file": "the CA bundle cannot be read",
    "untrusted_ca": "the server certificate is not signed by a CA in the configured bundle (wrong CA bundle)",
    "hostname_mismatch": "the server certificate does not cover the host name connected to",
    "cert_expired": "the server certificate has expired or is not yet valid",
    "tls_error": "the TLS handshake failed",
    "no_policy": "no IAM policy of the caller allows rds-db:connect as this user on this cluster",
    "explicit_deny": "an IAM policy explicitly denies rds-db:connect as this user",
    "token_expired": "the token had expired when it reached the server",
    "invalid_token": "RDS refused the token as invalid",
    "throttled": "RDS throttled new IAM connections",
    "aws_internal_error": "RDS had an internal error checking the token",
    "not_in_rds_iam": (
        "the database user is not a member of rds_iam, so the server used password authentication"
    ),
    "database_missing": "the database does not exist",
    "user_missing": "the database user does not exist",
    "server_unavailable": (
        "the server accepted TCP/TLS but closed the session (instance stopped or restarting)"
    ),
    "auth_failed": "the server refused the login",
    "pg_monitor_missing": (
        "connected, but the user is not in pg_monitor: other sessions' query text is hidden"
    ),
    "session_error": "connected, but the session could not be inspected",
    "connect_error": "the connection failed",
}


@dataclass
class Diagnosis:
    """A cause with what shows it and what fixes it."""

    code: str
    text: str = ""
    fix: str = ""
    evidence: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.text:
            self.text = CAUSES.get(self.code, self.code)


IAM_OFF_CANDIDATE = (
    "RDS wrote no iam-db-auth-error line for this refused login: IAM authentication is probably off for the "
    "instance (a modification not applied yet, or describe and the instance disagree)"
)

# Ranked candidates for a refused IAM login when neither AWS's log nor IAM read decided it.
IAM_REFUSAL_CANDIDATES: tuple[tuple[str, str], ...] = (
    (
        "no_policy",
        "no IAM policy of the caller allows rds-db:connect on this user's dbuser ARN "
        "(most common: a policy naming the cluster identifier, or another cluster's resource id, "
        "instead of this cluster's resource id)",
    ),
    ("token_host_mismatch", "the token is signed for another host:port than the endpoint"),
    ("region_mismatch", "the token is signed for another region"),
    ("clock_skew", "the local clock is off (the token looks expired or from the future)"),
    ("throttled", "too many new IAM connections per second on the instance"),
)
