"""CloudTrail `AssumeRole` events on the monitoring role: who took it, from which account and address, when.

The scenario's monitoring role (`pg-monitor-role`) is assumed cross-account by `pg-mgmt-role`. CloudTrail's
event history (`lookup_events`, last 90 days, no trail needed) in the role's account records each AssumeRole
with the caller's account id and source IP — a quick audit of who is watching the databases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pgiam_tui.model import AssumeRoleEvent

__all__ = ["lookup_assume_role_events"]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def lookup_assume_role_events(
    cloudtrail: Any,
    role_arn: str,
    *,
    hours: float = 24.0,
    now: datetime | None = None,
    max_events: int = 200,
) -> tuple[AssumeRoleEvent, ...]:
    """AssumeRole events whose requested role is `role_arn` over the last `hours`, newest first.

    Blocking (boto3): call it in a worker thread. `cloudtrail` must be a client in the role's account and
    region (CloudTrail records IAM/STS events in the region of the STS endpoint used; us-east-1 for the global
    endpoint). Events whose JSON cannot be read are skipped. Raises botocore errors (e.g. AccessDenied).
    """
    end = now or datetime.now(UTC)
    kwargs: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}],
        "StartTime": end - timedelta(hours=hours),
        "EndTime": end,
    }
    out: list[AssumeRoleEvent] = []
    token: str | None = None
    while len(out) < max_events:
        resp = cloudtrail.lookup_events(**kwargs, **({"NextToken": token} if token else {}))
        for ev in resp.get("Events", []):
            try:
                detail = json.loads(ev.get("CloudTrailEvent") or "{}")
            except ValueError:
                continue
            if not isinstance(detail, dict):
                continue
            params = detail.get("requestParameters") or {}
            if not isinstance(params, dict) or params.get("roleArn") != role_arn:
                continue
            who = detail.get("userIdentity") or {}
            if not isinstance(who, dict):
                who = {}
            when = _when(ev.get("EventTime")) or _when(detail.get("eventTime"))
            if when is None:
                continue
            out.append(
                AssumeRoleEvent(
                    time=when,
                    source_account=who.get("accountId"),
                    source_ip=detail.get("sourceIPAddress"),
                    principal_arn=who.get("arn"),
                )
            )
        token = resp.get("NextToken")
        if not token:
            break
    out.sort(key=lambda e: e.time, reverse=True)
    return tuple(out[:max_events])
