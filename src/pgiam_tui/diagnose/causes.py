"""The causes a connection check can name: a stable code, a sentence, and the fix.

The codes are `vocabulary.CheckCause` (a contract: tests, `check --json` and the console rely on them);
sentences and fixes are for humans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgiam_tui.vocabulary import CheckCause

# cause -> short title (the sentence shown when no more specific text was built); every cause has one
CAUSES: dict[CheckCause, str] = {
    CheckCause.CONFIG_INVALID: "the cluster's entry in the config cannot work as written",
    CheckCause.UNKNOWN_PROFILE: "the AWS profile does not exist",
    CheckCause.SSO_EXPIRED: "the SSO session of the profile has expired",
    CheckCause.IMDS_UNREACHABLE: (
        "credential_source needs the EC2 instance metadata service, which is unreachable"
    ),
    CheckCause.ASSUME_ROLE_DENIED: "AssumeRole was refused (trust policy or sts:AssumeRole permission)",
    CheckCause.CREDENTIALS_EXPIRED: "the AWS credentials have expired",
    CheckCause.NO_CREDENTIALS: "no AWS credentials were found",
    CheckCause.AWS_ERROR: "AWS could not be asked",
    CheckCause.AWS_TIMEOUT: "AWS did not answer in time (a timeout: nothing says a permission is missing)",
    CheckCause.CLUSTER_NOT_FOUND: "the cluster or instance was not found with this profile and region",
    CheckCause.DISCOVERY_DENIED: "the profile may not describe the cluster",
    CheckCause.IAM_AUTH_DISABLED: "IAM database authentication is disabled on the cluster",
    CheckCause.TOKEN_ERROR: "no IAM auth token could be made",
    CheckCause.CLOCK_SKEW: "the local clock is off, so the token's signing time is wrong",
    CheckCause.REGION_MISMATCH: "the token is signed for another region than the cluster's",
    CheckCause.TOKEN_HOST_MISMATCH: (
        "the token is signed for another host or port than the endpoint (tunnel set up wrong)"
    ),
    CheckCause.DNS_FAILURE: "the endpoint name does not resolve",
    CheckCause.TCP_REFUSED: "nothing listens at the connect address (connection refused)",
    CheckCause.TCP_TIMEOUT: (
        "the TCP connection timed out (security group, network ACL, routing or tunnel down)"
    ),
    CheckCause.TCP_UNREACHABLE: "the connect address is unreachable from here",
    CheckCause.TLS_REFUSED: "the server refused TLS",
    CheckCause.CA_FILE: "the CA bundle cannot be read",
    CheckCause.UNTRUSTED_CA: (
        "the server certificate is not signed by a CA in the configured bundle (wrong CA bundle)"
    ),
    CheckCause.HOSTNAME_MISMATCH: "the server certificate does not cover the host name connected to",
    CheckCause.CERT_EXPIRED: "the server certificate has expired or is not yet valid",
    CheckCause.TLS_ERROR: "the TLS handshake failed",
    CheckCause.NO_POLICY: "no IAM policy of the caller allows rds-db:connect as this user on this cluster",
    CheckCause.EXPLICIT_DENY: "an IAM policy explicitly denies rds-db:connect as this user",
    CheckCause.TOKEN_EXPIRED: "the token had expired when it reached the server",
    CheckCause.INVALID_TOKEN: "RDS refused the token as invalid",
    CheckCause.THROTTLED: "RDS throttled new IAM connections",
    CheckCause.AWS_INTERNAL_ERROR: "RDS had an internal error checking the token",
    CheckCause.NOT_IN_RDS_IAM: (
        "the database user is not a member of rds_iam, so the server used password authentication"
    ),
    CheckCause.DATABASE_MISSING: "the database does not exist",
    CheckCause.USER_MISSING: "the database user does not exist",
    CheckCause.SERVER_UNAVAILABLE: (
        "the server accepted TCP/TLS but closed the session (instance stopped or restarting)"
    ),
    CheckCause.AUTH_FAILED: "the server refused the login",
    CheckCause.PG_MONITOR_MISSING: (
        "connected, but the user is not in pg_monitor: other sessions' query text is hidden"
    ),
    CheckCause.SESSION_ERROR: "connected, but the session could not be inspected",
    CheckCause.CONNECT_ERROR: "the connection failed",
}


@dataclass
class Diagnosis:
    """A cause with what shows it and what fixes it."""

    code: CheckCause
    text: str = ""
    fix: str = ""
    evidence: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.text:
            self.text = CAUSES[self.code]


IAM_OFF_CANDIDATE = (
    "RDS wrote no iam-db-auth-error line for this refused login: IAM authentication is probably off for the "
    "instance (a modification not applied yet, or describe and the instance disagree)"
)

# Ranked candidates for a refused IAM login when neither AWS's log nor IAM read decided it.
IAM_REFUSAL_CANDIDATES: tuple[tuple[CheckCause, str], ...] = (
    (
        CheckCause.NO_POLICY,
        "no IAM policy of the caller allows rds-db:connect on this user's dbuser ARN "
        "(most common: a policy naming the cluster identifier, or another cluster's resource id, "
        "instead of this cluster's resource id)",
    ),
    (CheckCause.TOKEN_HOST_MISMATCH, "the token is signed for another host:port than the endpoint"),
    (CheckCause.REGION_MISMATCH, "the token is signed for another region"),
    (CheckCause.CLOCK_SKEW, "the local clock is off (the token looks expired or from the future)"),
    (CheckCause.THROTTLED, "too many new IAM connections per second on the instance"),
)
