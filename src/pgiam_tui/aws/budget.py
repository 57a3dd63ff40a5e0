"""AWS read budget: requests per minute per account and region, shared by every cluster and pane.

CloudWatch Logs, RDS, IAM and CloudWatch quotas are per account and region, shared with every other tool and
person using that account: a console polling 20 clusters must not throttle its colleagues' scripts. Every
request our boto3 clients send (retries included: botocore's `before-send` event fires per attempt) first
takes a token from the bucket of its account and region, waiting when the budget is spent. Throttling
answers are handled by botocore's own retry modes (`adaptive` unless the user chose a mode, aws/session.py:
it backs off and slows its client-side rate after a throttling error); nothing here signs or retries requests
itself.

The account of a session is known once discovery or STS said it (`note_account`); until then its profile
name stands in for it (most people keep one profile per account).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import boto3

__all__ = [
    "DEFAULT_REQUESTS_PER_MINUTE",
    "RequestBudget",
    "apply_budget",
    "budget_for",
    "install_budget",
    "note_account",
    "set_requests_per_minute",
    "signed_region",
]

#: AWS read requests per minute per account and region (all clusters and panes together), unless
#: `aws_requests_per_minute` in profiles.toml says otherwise. CloudWatch Logs' FilterLogEvents, the busiest
#: read, allows 5 per second per account and region: 120 a minute leaves most of it to everyone else.
DEFAULT_REQUESTS_PER_MINUTE = 120


class RequestBudget:
    """A token bucket: `per_minute` requests a minute on average, bursts of up to a tenth of that."""

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self.per_minute = float(per_minute)
        self._tokens = self.capacity
        self._at = clock()
        self.sent = 0  # requests let through so far (the bench and tests read it)
        self.waited_s = 0.0  # total time callers waited for a token

    @property
    def capacity(self) -> float:
        """The largest burst (at least one request)."""
        return max(1.0, self.per_minute / 10.0)

    def set_rate(self, per_minute: float) -> None:
        """Change the rate (takes effect for the next request)."""
        with self._cond:
            self.per_minute = float(per_minute)
            self._tokens = min(self._tokens, self.capacity)
            self._cond.notify_all()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_minute / 60.0)
        self._at = now

    def try_take(self) -> float:
        """Take a token if one is there (0.0), else the seconds until one will be."""
        with self._cond:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.sent += 1
                return 0.0
            return (1.0 - self._tokens) * 60.0 / max(self.per_minute, 1e-9)

    def take(self) -> None:
        """Take a token, waiting (this thread only: boto3 runs in worker threads) until there is one."""
        started = self._clock()
        while (wait := self.try_take()) > 0.0:
            with self._cond:
                self._cond.wait(wait)
        self.waited_s += self._clock() - started


_lock = threading.Lock()
_budgets: dict[tuple[str, str], RequestBudget] = {}
_rates: dict[tuple[str, str], float] = {}
_accounts: weakref.WeakKeyDictionary[boto3.Session, str] = weakref.WeakKeyDictionary()
_installed: weakref.WeakSet[Any] = weakref.WeakSet()


def _key_of(session: boto3.Session, region: str | None) -> tuple[str, str]:
    account = _accounts.get(session)
    who = account if account else f"profile:{session.profile_name}"
    return who, region or session.region_name or "-"


def note_account(session: boto3.Session, account_id: str | None) -> None:
    """Record that SESSION's credentials belong to ACCOUNT_ID (from discovery or STS)."""
    if account_id:
        with _lock:
            _accounts[session] = account_id


def set_requests_per_minute(account: str, region: str, per_minute: float) -> None:
    """The budget of ACCOUNT (an account id, or "profile:NAME") in REGION."""
    with _lock:
        _rates[(account, region)] = per_minute
        budget = _budgets.get((account, region))
    if budget is not None:
        budget.set_rate(per_minute)


def apply_budget(session: boto3.Session, region: str | None, per_minute: float) -> None:
    """Set the budget of SESSION's account in REGION to PER_MINUTE unless a smaller one was set."""
    account, where = _key_of(session, region)
    with _lock:
        known = _rates.get((account, where))
    if known is None or per_minute < known:
        set_requests_per_minute(account, where, per_minute)


def budget_for(session: boto3.Session, region: str | None) -> RequestBudget:
    """The shared budget of SESSION's account in REGION (made with the configured or default rate)."""
    key = _key_of(session, region)
    with _lock:
        budget = _budgets.get(key)
        if budget is None:
            rate = _rates.get(key, _default_rate())
            budget = _budgets[key] = RequestBudget(rate)
        return budget


def _default_rate() -> float:
    raw = os.environ.get("PGIAM_TUI_AWS_REQUESTS_PER_MINUTE")
    try:
        return float(raw) if raw else float(DEFAULT_REQUESTS_PER_MINUTE)
    except ValueError:
        return float(DEFAULT_REQUESTS_PER_MINUTE)


def signed_region(request: Any) -> str | None:
    """The region in a signed request's SigV4 credential scope: the one AWS counts it against (IAM and
    other global services sign for us-east-1 whatever region their client was made with)."""
    headers = getattr(request, "headers", None)
    raw = headers.get("Authorization") if headers is not None else None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    _, found, rest = (text or "").partition("Credential=")
    parts = rest.split(",", 1)[0].split("/")  # AKID/DATE/REGION/SERVICE/aws4_request
    return parts[2] if found and len(parts) >= 4 and parts[2] else None


def install_budget(client: Any, session: boto3.Session, region: str | None) -> None:
    """Make every request CLIENT sends (each retry too) wait for a token of its account and of the region
    its signature names (else REGION)."""
    with _lock:
        if client in _installed:
            return
        _installed.add(client)
    session_ref = weakref.ref(session)

    def before_send(request: Any = None, **_: Any) -> None:  # returning None lets botocore send it as usual
        owner = session_ref()
        if owner is not None:
            budget_for(owner, signed_region(request) or region).take()

    client.meta.events.register("before-send", before_send)
