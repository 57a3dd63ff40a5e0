"""The shared vocabulary: the codes every part of the product and its outputs agree on.

Values are the strings of the JSON contract and of the config file (a `StrEnum` member *is* its string), so
`snapshot --json`, recordings and `profiles.toml` stay as they were; code that builds a finding or reads a
log source names a member, and mypy holds it to the list. Event kinds and the definitions of a failed login
live with the connection attempts (collect/); check causes with the check (diagnose/causes.py).
Nothing here imports anything of ours.
"""

from __future__ import annotations

from enum import StrEnum, unique

__all__ = ["FindingCode", "LogSource"]


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
