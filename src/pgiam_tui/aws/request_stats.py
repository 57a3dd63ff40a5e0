"""How many AWS requests the console sent, and how many AWS throttled, per service and operation.

Counted from botocore's own events on every client we make: `before-send` fires once per HTTP attempt
(retries included), `needs-retry` sees each response, and botocore's standard retry checker decides what is a
throttling answer (its list of codes, not ours). Process-wide and thread-safe; `serve` exports the counts as
`pgiam_aws_requests_total` and `pgiam_aws_throttles_total`, so an operator can see what the console costs the
account's shared request quotas.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

__all__ = ["install_request_stats", "snapshot_counts"]

_lock = threading.Lock()
_requests: dict[tuple[str, str], int] = {}
_throttles: dict[tuple[str, str], int] = {}
_installed: weakref.WeakSet[Any] = weakref.WeakSet()
_throttle_checker = ThrottledRetryableChecker()


def _api(event_name: str) -> tuple[str, str]:
    # botocore's event names end in SERVICE.OPERATION, e.g. "before-send.rds.DescribeDBClusters"
    parts = event_name.split(".")
    return (parts[-2], parts[-1]) if len(parts) >= 3 else ("unknown", "unknown")


def _on_send(event_name: str = "", **_: Any) -> None:
    key = _api(event_name)
    with _lock:
        _requests[key] = _requests.get(key, 0) + 1


def _on_response(event_name: str = "", response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    http, parsed = response if isinstance(response, tuple) and len(response) == 2 else (None, None)
    context = RetryContext(
        attempt_number=1, parsed_response=parsed, http_response=http, caught_exception=caught_exception
    )
    if _throttle_checker.is_retryable(context):
        key = _api(event_name)
        with _lock:
            _throttles[key] = _throttles.get(key, 0) + 1


def install_request_stats(client: Any) -> None:
    """Count CLIENT's requests and throttled answers (once per client)."""
    with _lock:
        if client in _installed:
            return
        _installed.add(client)
    client.meta.events.register("before-send", _on_send)
    client.meta.events.register("needs-retry", _on_response)


def snapshot_counts() -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(requests, throttles) so far, by (service, operation)."""
    with _lock:
        return dict(_requests), dict(_throttles)
