"""Run botocore's own credential resolver for one profile without calling AWS or running anything.

botocore decides which provider answers a profile, follows `source_profile` links, validates
`credential_source`, SSO and web-identity settings and raises its own exceptions while it *loads*;
the network (STS, SSO, IMDS, container endpoint) is only touched later, when credentials are first
used, except for three leaves that load eagerly: a `credential_process` program, the instance
metadata service and the container credentials endpoint. This module builds the resolver exactly
as `botocore.credentials.create_credential_resolver` does and swaps those three leaves for
stand-ins that answer with placeholder (non-secret) credentials and record what would have run.
Everything else (order, validation, refusal messages) is botocore's.

The swap touches a few private attributes of botocore's provider objects; `check_botocore_layout`
fails loudly (and a unit test calls it) if a botocore release moves them.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.credentials
import botocore.exceptions
import botocore.session

PLACEHOLDER = "pgiam-tui-dry-run"  # stands in for keys that were never fetched


@dataclass(slots=True)
class DryRun:
    """What botocore did for one profile.

    `answered_by` is the METHOD of the top-level provider that returned credentials or raised;
    `visited` the profiles the assume-role provider followed (botocore's own list);
    `sources` the (profile, METHOD) pairs that answered for source profiles, innermost first;
    `would_run` the leaves that would have contacted something (never contacted here).
    """

    answered_by: str | None = None
    error: Exception | None = None
    visited: list[str] = field(default_factory=list)
    sources: list[tuple[str, str]] = field(default_factory=list)
    would_run: list[str] = field(default_factory=list)


class _RecordingProvider(botocore.credentials.CredentialProvider):
    """Wraps one provider; notes which one answered (or raised) under which profile."""

    def __init__(self, inner: Any, profile: str, log: list[tuple[str, str]]) -> None:
        super().__init__()
        self._inner = inner
        self._profile = profile
        self._log = log
        self.METHOD = inner.METHOD
        self.CANONICAL_NAME = inner.CANONICAL_NAME

    def load(self) -> Any:
        creds = self._inner.load()
        if creds is not None:
            self._log.append((self._profile, str(self.METHOD)))
        return creds


class _NoProcessPopen:
    """`subprocess.Popen` for botocore's ProcessProvider that runs nothing."""

    def __init__(self, run: DryRun) -> None:
        self._run = run

    def __call__(self, args: Sequence[str], **_: Any) -> _PlaceholderProcess:
        program = args[0] if args else "?"
        self._run.would_run.append(f"credential_process {program}")
        return _PlaceholderProcess()


class _PlaceholderProcess:
    returncode = 0

    def communicate(self) -> tuple[bytes, bytes]:
        body = {"Version": 1, "AccessKeyId": PLACEHOLDER, "SecretAccessKey": PLACEHOLDER}
        return json.dumps(body).encode(), b""


def _placeholder_metadata(role_name: str) -> dict[str, str]:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return {
        "role_name": role_name,
        "access_key": PLACEHOLDER,
        "secret_key": PLACEHOLDER,
        "token": PLACEHOLDER,
        "expiry_time": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class _NoImdsFetcher:
    """Instance-metadata fetcher that never connects (honours AWS_EC2_METADATA_DISABLED like botocore)."""

    def __init__(self, original: Any, run: DryRun) -> None:
        self._disabled = bool(getattr(original, "_disabled", False))
        self._run = run

    def retrieve_iam_role_credentials(self) -> dict[str, str]:
        if self._disabled:
            return {}
        self._run.would_run.append("instance metadata")
        return _placeholder_metadata("instance-role")


class _NoContainerFetcher:
    """Container-credentials fetcher that never connects."""

    def __init__(self, run: DryRun) -> None:
        self._run = run

    def full_url(self, relative_uri: str) -> str:
        return f"container:{relative_uri}"

    def retrieve_full_uri(self, full_url: str, headers: Any = None) -> dict[str, str]:
        self._run.would_run.append("container credentials endpoint")
        meta = _placeholder_metadata("container")
        return {
            "AccessKeyId": meta["access_key"],
            "SecretAccessKey": meta["secret_key"],
            "Token": meta["token"],
            "Expiration": meta["expiry_time"],
        }


class _DryRunProviderBuilder(botocore.credentials.ProfileProviderBuilder):
    """botocore's builder of per-profile providers, for source profiles of an assume-role chain."""

    def __init__(self, session: botocore.session.Session, run: DryRun) -> None:
        super().__init__(session, cache={})
        self._run = run

    def providers(self, profile_name: str, disable_env_vars: bool = False) -> list[Any]:
        built = super().providers(profile_name=profile_name, disable_env_vars=disable_env_vars)
        _disarm(built, self._run)
        return [_RecordingProvider(p, profile_name, self._run.sources) for p in built]


def _disarm(providers: Sequence[Any], run: DryRun) -> None:
    for provider in providers:
        target: Any = provider  # botocore's stubs do not declare the private attributes replaced here
        if isinstance(provider, botocore.credentials.ProcessProvider):
            target._popen = _NoProcessPopen(run)
        elif isinstance(provider, botocore.credentials.InstanceMetadataProvider):
            target._role_fetcher = _NoImdsFetcher(target._role_fetcher, run)
        elif isinstance(provider, botocore.credentials.ContainerProvider):
            target._fetcher = _NoContainerFetcher(run)


def check_botocore_layout() -> None:
    """Raise RuntimeError when botocore no longer has the attributes the dry run replaces."""
    resolver = botocore.credentials.create_credential_resolver(botocore.session.Session())
    expected = {
        botocore.credentials.ProcessProvider: "_popen",
        botocore.credentials.InstanceMetadataProvider: "_role_fetcher",
        botocore.credentials.ContainerProvider: "_fetcher",
        botocore.credentials.AssumeRoleProvider: "_profile_provider_builder",
    }
    for cls, attribute in expected.items():
        found = [p for p in resolver.providers if isinstance(p, cls)]
        if not found or not hasattr(found[0], attribute):
            raise RuntimeError(f"botocore {botocore.__version__}: {cls.__name__}.{attribute} has moved")
    assume = next(p for p in resolver.providers if isinstance(p, botocore.credentials.AssumeRoleProvider))
    if not isinstance(getattr(assume, "_visited_profiles", None), list):
        raise RuntimeError(f"botocore {botocore.__version__}: AssumeRoleProvider._visited_profiles has moved")


def dry_run(profile: str | None) -> DryRun:
    """Load PROFILE's credentials (None: the default chain) the way botocore does, contacting nothing;
    never raises for bad config."""
    run = DryRun()
    session = botocore.session.Session(profile=profile)
    resolver = botocore.credentials.create_credential_resolver(session)
    _disarm(resolver.providers, run)
    assume_role: Any = None
    for provider in resolver.providers:
        if isinstance(provider, botocore.credentials.AssumeRoleProvider):
            assume_role = provider
            assume_role._profile_provider_builder = _DryRunProviderBuilder(session, run)
    top: list[tuple[str, str]] = []
    raised: list[str] = []
    resolver.providers = [_ErrorNoting(p, raised) for p in resolver.providers]
    resolver.providers = [_RecordingProvider(p, profile or "default", top) for p in resolver.providers]
    try:
        if resolver.load_credentials() is None:
            # What a client made from this session would raise on its first call.
            run.error = botocore.exceptions.NoCredentialsError()
    except Exception as exc:  # whatever botocore raises is its refusal, in its own words
        run.error = exc
    if assume_role is not None:
        run.visited = list(assume_role._visited_profiles)
    run.answered_by = top[0][1] if top else (raised[0] if raised else None)
    return run


class _ErrorNoting(botocore.credentials.CredentialProvider):
    """Notes the METHOD of a provider that raised, then lets the exception go on."""

    def __init__(self, inner: Any, raised: list[str]) -> None:
        super().__init__()
        self._inner = inner
        self._raised = raised
        self.METHOD = inner.METHOD
        self.CANONICAL_NAME = inner.CANONICAL_NAME

    def load(self) -> Any:
        try:
            return self._inner.load()
        except Exception:
            self._raised.append(str(self.METHOD))
            raise


def program_name(command: str) -> str | None:
    """First word of a credential_process command (its arguments may hold secrets)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return words[0] if words else None
