"""The `IamDbAuthConnection*` CloudWatch metrics of RDS, per instance, over the last hour.

When RDS publishes them they are the truth about IAM logins (requests, successes, failures by cause), so the
IAM pane shows them next to what we infer from logs. One `get_metric_data` call covers every metric of every
instance of the cluster (namespace AWS/RDS, dimension DBInstanceIdentifier, Sum per 5 minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pgiam_tui.model import IamMetrics

__all__ = ["IAM_METRICS", "fetch_iam_metrics"]

#: metric name -> short key used in IamMetrics.totals / .series
IAM_METRICS: dict[str, str] = {
    "IamDbAuthConnectionRequests": "requests",
    "IamDbAuthConnectionSuccess": "success",
    "IamDbAuthConnectionFailure": "failure",
    "IamDbAuthConnectionFailureInvalidToken": "failure_invalid_token",
    "IamDbAuthConnectionFailureInsufficientPermissions": "failure_insufficient_permissions",
    "IamDbAuthConnectionFailureThrottling": "failure_throttling",
    "IamDbAuthConnectionFailureServerError": "failure_server_error",
}

_MAX_QUERIES = 500  # get_metric_data limit per call


def fetch_iam_metrics(
    cloudwatch: Any,
    instance_ids: Sequence[str],
    *,
    now: datetime | None = None,
    hours: float = 1.0,
    period_s: int = 300,
) -> tuple[IamMetrics, ...]:
    """Sum of each IamDbAuthConnection* metric over the last `hours` (up to the end of the current period),
    and its per-`period_s` series (oldest first, the current period last, missing periods as 0), for every
    instance. Blocking (boto3): call it in a worker thread.

    An instance with no datapoints at all gets empty totals (RDS publishes nothing when nothing happened, or
    when the metrics are not available for the engine version). Raises botocore errors (e.g. AccessDenied).
    """
    # The window ends at the period boundary *after* now, so the current (partial) period is the last slot:
    # RDS stamps a datapoint with the start of its minute, and a window ending at the start of the current
    # minute (as it once did) missed everything of the last minute, i.e. all of a fresh cluster's logins.
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    epoch = int(moment.timestamp())
    end = datetime.fromtimestamp(epoch - epoch % period_s + period_s, UTC)
    start = end - timedelta(hours=hours)
    slots = int(hours * 3600 // period_s)
    queries: list[dict[str, Any]] = []
    index: dict[str, tuple[str, str]] = {}
    for i, inst in enumerate(instance_ids):
        for j, metric in enumerate(IAM_METRICS):
            qid = f"m{i}_{j}"  # ids must start with a lower-case letter
            index[qid] = (inst, IAM_METRICS[metric])
            queries.append(
                {
                    "Id": qid,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/RDS",
                            "MetricName": metric,
                            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": inst}],
                        },
                        "Period": period_s,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
            )
    values: dict[str, dict[datetime, float]] = {qid: {} for qid in index}
    for chunk_start in range(0, len(queries), _MAX_QUERIES):
        chunk = queries[chunk_start : chunk_start + _MAX_QUERIES]
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": chunk, "StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            resp = cloudwatch.get_metric_data(**kwargs)
            for result in resp.get("MetricDataResults", []):
                qid = result.get("Id")
                if qid not in values:
                    continue
                for ts, val in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    values[qid][ts] = values[qid].get(ts, 0.0) + float(val)
            token = resp.get("NextToken")
            if not token:
                break
    out: list[IamMetrics] = []
    for inst in instance_ids:
        totals: dict[str, float] = {}
        series: dict[str, tuple[float, ...]] = {}
        for qid, (qinst, key) in index.items():
            if qinst != inst or not values[qid]:
                continue
            totals[key] = sum(values[qid].values())
            buckets = [0.0] * slots
            for ts, val in values[qid].items():
                slot = int((ts.astimezone(UTC) - start).total_seconds() // period_s)
                if 0 <= slot < slots:
                    buckets[slot] += val
            series[key] = tuple(buckets)
        out.append(IamMetrics(instance=inst, totals=totals, series=series))
    return tuple(out)
