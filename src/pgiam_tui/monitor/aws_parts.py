"""The AWS-fed parts of a cluster, each run by its own Cadence: discovery, events, IAM mapping, identity.

boto3 runs in the side thread pool (collect/aws_threads.py), never in the loop's default executor, which
the activity path keeps for tokens: a stalled AWS endpoint holds up these parts only. Each run marks its
slot `running_since` first, so the snapshot says at once when AWS is slow (see assemble.AWS_READ_BUDGET_S),
and writes its slot whole at the end.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Protocol

import boto3

from pgiam_tui.advice import check_advice
from pgiam_tui.aws.budget import apply_budget, note_account
from pgiam_tui.aws.credential_failure import credential_failure
from pgiam_tui.aws.discovery import ResolvedCluster, resolve_cluster
from pgiam_tui.aws.errors import AWS_TIMEOUT_FIX, AwsCredentialError, is_timeout
from pgiam_tui.collect.aws_threads import run_side_thread
from pgiam_tui.config import ClusterConfig
from pgiam_tui.db.connection import utcnow
from pgiam_tui.db.conninfo import one_line, scrub
from pgiam_tui.model import ErrorInfo, Finding
from pgiam_tui.monitor.cluster import ClusterRuntime
from pgiam_tui.monitor.parts import Discovered, DiscoveryPart, EventsPart, IamPart
from pgiam_tui.vocabulary import FindingCode

__all__ = ["SessionSource", "aws_error", "discover", "read_events", "read_iam", "read_identity"]

log = logging.getLogger("pgiam_tui.monitor")


class SessionSource(Protocol):
    """Where boto3 sessions come from (aws.session.SessionFactory)."""

    def session(self, profile: str | None) -> boto3.Session:
        """The session of PROFILE (None: the default chain)."""
        ...

    def identity(self, profile: str | None, *, refresh: bool = False) -> str:
        """The caller ARN of PROFILE."""
        ...


def aws_error(step: str, exc: BaseException, cfg: ClusterConfig) -> ErrorInfo:
    """ErrorInfo for a boto3-side failure, with the hint of AwsCredentialError / DiscoveryError if any."""
    message = one_line(scrub(str(exc) or type(exc).__name__))
    hint = getattr(exc, "hint", None)
    if is_timeout(exc):  # a timeout is reported as one, whatever the step (never as a permission problem)
        return ErrorInfo(step, f"timeout: {message}", AWS_TIMEOUT_FIX)
    if not isinstance(hint, str) or not hint:
        hint = (
            f"check the AWS profile {cfg.profile!r} (`pgiam-tui profiles --resolve`)"
            if step == "credentials"
            else f"{check_advice(cfg.name)} for a step-by-step diagnosis"
        )
    return ErrorInfo(step, message, hint)


def _session_and_cluster(
    sessions: SessionSource, cfg: ClusterConfig
) -> tuple[boto3.Session, ResolvedCluster]:
    """Blocking: the profile's session (cached by the factory) and the cluster as AWS describes it."""
    try:
        session = sessions.session(cfg.profile)
    except Exception as exc:
        raise _StepFailed("credentials", exc) from None
    return session, resolve_cluster(cfg, session)


class _StepFailed(Exception):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.step = step
        self.cause = cause


async def discover(rt: ClusterRuntime, sessions: SessionSource) -> None:
    """Describe the cluster again (members come and go; the IAM flag changes) and store the outcome."""
    cfg = rt.cfg
    rt.discovery = replace(rt.discovery, running_since=utcnow())
    try:
        session, resolved = await run_side_thread(_session_and_cluster, sessions, cfg)
    except _StepFailed as exc:
        rt.discovery = DiscoveryPart(rt.discovery.found, aws_error(exc.step, exc.cause, cfg))
    except Exception as exc:
        # credentials are resolved lazily, at discovery's first call: a credentials failure (an IMDS outage,
        # an expired SSO session) belongs to the credentials step, with its real reason
        failure = await run_side_thread(credential_failure, exc, cfg.profile)
        if failure is not None:
            rt.discovery = DiscoveryPart(rt.discovery.found, aws_error("credentials", failure, cfg))
        else:
            # discovery wraps botocore's errors as credential errors; a timeout is discovery's own failure
            credentials = isinstance(exc, AwsCredentialError) and not is_timeout(exc)
            step = "credentials" if credentials else "discovery"
            rt.discovery = DiscoveryPart(rt.discovery.found, aws_error(step, exc, cfg))
    else:
        note_account(session, resolved.account_id)
        if cfg.aws_requests_per_minute is not None:
            apply_budget(session, resolved.region, cfg.aws_requests_per_minute)
        rt.discovery = DiscoveryPart(Discovered(session, resolved, utcnow()))
    finally:
        rt.discovered.set()


async def read_events(rt: ClusterRuntime) -> None:
    """One run of the events collector (log sources, AWS's IAM reasons, the console's own attempts)."""
    found = rt.discovery.found
    rt.events = replace(rt.events, running_since=utcnow())
    try:
        events, failures = await rt.events_collector.collect(
            found.resolved if found else None,
            found.session if found else None,
            client_events=tuple(rt.client_events),
        )
    except Exception as exc:  # the collector reports source problems itself; this is anything else
        rt.events = replace(rt.events, running_since=None, error=one_line(scrub(str(exc))))
        log.warning("events of %s failed: %s", rt.cfg.name, rt.events.error)
        return
    problems = tuple(rt.events_collector.problems)
    rt.events = EventsPart(
        tuple(events),
        tuple(failures),
        problems,
        read_at=utcnow(),
        merged_clients=True,
        attempts=tuple(rt.events_collector.attempts),
    )


async def read_iam(rt: ClusterRuntime, sessions: SessionSource) -> None:
    """One run of the IAM mapping (the roles query on the writer, plus whatever AWS reads are due)."""
    found = rt.discovery.found
    writer = rt.writer()
    if found is None or writer is None:
        return  # nothing to map yet; the snapshot shows discovery's flag and resource id meanwhile
    rt.iam = replace(rt.iam, running_since=utcnow())
    problems: tuple[Finding, ...] = ()
    iam_session = None
    if rt.cfg.iam_profile:
        try:
            iam_session = await run_side_thread(sessions.session, rt.cfg.iam_profile)
            # IAM reads the cluster's own account (IAM is per account): its requests count against that
            # account's budget, not a separate one of the profile's name
            note_account(iam_session, found.resolved.account_id)
        except Exception as exc:
            hint = getattr(exc, "hint", None) or "check iam_profile in profiles.toml"
            message = f"IAM profile {rt.cfg.iam_profile!r} unusable: {one_line(scrub(str(exc)))}"
            problems = (Finding("warning", FindingCode.IAM_UNREADABLE, message, hint),)
    try:
        iam = await rt.iam_collector.collect(
            found.resolved, found.session, writer.conn.fetch, iam_session=iam_session
        )
    except Exception as exc:  # e.g. the writer is down: keep the last mapping, say why
        rt.iam = replace(rt.iam, running_since=None, problems=problems, error=one_line(scrub(str(exc))))
        return
    rt.iam = IamPart(iam, problems, utcnow(), None, None)


async def read_identity(rt: ClusterRuntime, sessions: SessionSource) -> None:
    """The caller ARN of the cluster's profile (informative: the token step reports failures)."""
    if rt.cfg.auth != "iam":
        return
    try:
        rt.identity_arn = await run_side_thread(
            sessions.identity, rt.cfg.profile, refresh=rt.identity_arn is not None
        )
    except Exception as exc:
        log.info("identity of %s unknown: %s", rt.cfg.name, one_line(scrub(str(exc))))
