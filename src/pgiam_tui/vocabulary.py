"""The shared vocabulary: the codes every part of the product and its outputs agree on.

Values are the strings of the JSON contract and of the config file (a `StrEnum` member *is* its string), so
`snapshot --json`, recordings and `profiles.toml` stay as they were; code that builds a finding or reads a
log source names a member, and mypy holds it to the list. Event kinds and the definitions of a failed login
live with the connection attempts (collect/); the sentence and fix of each check cause with the check
(diagnose/causes.py).
Nothing here imports anything of ours.
"""

from __future__ import annotations

from enum import StrEnum, unique

__all__ = ["CheckCause", "FindingCode", "LogSource"]


@unique
class FindingCode(StrEnum):
    """The stable code of a finding (a problem shown with a fix), as `snapshot --json` reports it."""

    # the IAM mapping: the database side and the AWS side of a cluster joined
    IAM_AUTH_DISABLED = "iam_auth_disabled"
    ORPHAN_DB_USER = "orphan_db_user"
    ORPHAN_GRANT = "orphan_grant"
    GRANT_WITHOUT_RDS_IAM = "grant_without_rds_iam"
    WILDCARD_GRANT = "wildcard_grant"
    WRONG_RESOURCE_ID = "wrong_resource_id"
    UNUSED_GRANT = "unused_grant"
    NO_PG_MONITOR = "no_pg_monitor"
    # what the monitoring user cannot see or read
    INSUFFICIENT_PRIVILEGE = "insufficient_privilege"
    IAM_UNREADABLE = "iam_unreadable"
    METRICS_UNREADABLE = "metrics_unreadable"
    CLOUDTRAIL_UNREADABLE = "cloudtrail_unreadable"
    EVENTS_UNREADABLE = "events_unreadable"
    IAM_LOG_UNREADABLE = "iam_log_unreadable"
    # the round itself
    DISCOVERY_FAILED = "discovery_failed"


@unique
class LogSource(StrEnum):
    """Where connection-log lines are read (`log_source` in profiles.toml; AUTO lets the collector choose)."""

    AUTO = "auto"
    CLOUDWATCH = "cloudwatch"
    RDS_LOGFILE = "rds_logfile"
    FILE = "file"
    NONE = "none"


@unique
class CheckCause(StrEnum):
    """The stable code of the cause a connection check names (`check --json`'s `cause`); the sentence and the
    fix of each are in diagnose/causes.py."""

    # the config and the AWS credentials
    CONFIG_INVALID = "config_invalid"
    UNKNOWN_PROFILE = "unknown_profile"
    SSO_EXPIRED = "sso_expired"
    IMDS_UNREACHABLE = "imds_unreachable"
    ASSUME_ROLE_DENIED = "assume_role_denied"
    CREDENTIALS_EXPIRED = "credentials_expired"
    NO_CREDENTIALS = "no_credentials"
    AWS_ERROR = "aws_error"
    AWS_TIMEOUT = "aws_timeout"
    # discovery and the token
    CLUSTER_NOT_FOUND = "cluster_not_found"
    DISCOVERY_DENIED = "discovery_denied"
    IAM_AUTH_DISABLED = "iam_auth_disabled"
    TOKEN_ERROR = "token_error"
    CLOCK_SKEW = "clock_skew"
    REGION_MISMATCH = "region_mismatch"
    TOKEN_HOST_MISMATCH = "token_host_mismatch"
    # the network and TLS
    DNS_FAILURE = "dns_failure"
    TCP_REFUSED = "tcp_refused"
    TCP_TIMEOUT = "tcp_timeout"
    TCP_UNREACHABLE = "tcp_unreachable"
    TLS_REFUSED = "tls_refused"
    CA_FILE = "ca_file"
    UNTRUSTED_CA = "untrusted_ca"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    CERT_EXPIRED = "cert_expired"
    TLS_ERROR = "tls_error"
    # the login (RDS's iam-db-auth-error codes and the server's answer)
    NO_POLICY = "no_policy"
    EXPLICIT_DENY = "explicit_deny"
    TOKEN_EXPIRED = "token_expired"
    INVALID_TOKEN = "invalid_token"
    THROTTLED = "throttled"
    AWS_INTERNAL_ERROR = "aws_internal_error"
    NOT_IN_RDS_IAM = "not_in_rds_iam"
    DATABASE_MISSING = "database_missing"
    USER_MISSING = "user_missing"
    SERVER_UNAVAILABLE = "server_unavailable"
    AUTH_FAILED = "auth_failed"
    # after the login
    PG_MONITOR_MISSING = "pg_monitor_missing"
    SESSION_ERROR = "session_error"
    CONNECT_ERROR = "connect_error"
