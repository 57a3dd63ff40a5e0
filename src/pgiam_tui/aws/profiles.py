"""List and classify the AWS profiles botocore sees, with their role chains, as botocore resolves them.

The profiles come from botocore's merged view of the AWS config and credentials files (so
AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE are honoured exactly as the AWS CLI does). Kind, chain
and refusal are what botocore's own credential resolver does with each profile (profile_dry_run),
with nothing contacted and no credential_process run. Secrets are never kept or printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import botocore.session

from pgiam_tui.aws.errors import AwsCredentialError, classify_aws_error
from pgiam_tui.aws.profile_dry_run import DryRun, dry_run, program_name

ProfileKind = Literal[
    "static",
    "sso",
    "login",
    "assume_role_source_profile",
    "assume_role_credential_source",
    "credential_process",
    "web_identity",
    "none",
]

KIND_LABELS: dict[str, str] = {
    "static": "static keys",
    "sso": "sso",
    "login": "login session",
    "assume_role_source_profile": "assume-role (source_profile)",
    "assume_role_credential_source": "assume-role (credential_source)",
    "credential_process": "credential_process",
    "web_identity": "web identity",
    "none": "default chain",  # no credential settings: container/instance role
}

# botocore provider METHOD -> the kind of credentials it stands for.
_METHOD_KINDS: dict[str, ProfileKind] = {
    "shared-credentials-file": "static",
    "config-file": "static",
    "sso": "sso",
    "login": "login",
    "custom-process": "credential_process",
    "assume-role-with-web-identity": "web_identity",
}

_SOURCE_LABELS: dict[str, str] = {
    "shared-credentials-file": "static keys",
    "config-file": "static keys",
    "sso": "sso",
    "login": "login session",
    "custom-process": "credential_process",
    "assume-role-with-web-identity": "web identity",
    "env": "environment",
    "iam-role": "instance metadata",
    "container-role": "container credentials",
}


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """One AWS profile as botocore resolves it. `chain` is the profile followed by its source profiles;
    `problem` is botocore's refusal, in botocore's words (None when botocore would go ahead)."""

    name: str
    kind: ProfileKind
    region: str | None
    role_arn: str | None = None
    source_profile: str | None = None
    credential_source: str | None = None
    mfa_serial: str | None = None
    sso_session: str | None = None
    sso_start_url: str | None = None
    sso_account_id: str | None = None
    sso_role_name: str | None = None
    login_session: str | None = None
    credential_program: str | None = None  # first word of credential_process (arguments may hold secrets)
    chain: tuple[str, ...] = ()
    chain_source: str | None = None  # where the chain's credentials come from, e.g. "static keys"
    problem: str | None = None
    problem_type: str | None = None  # botocore's exception class, e.g. "InvalidConfigError"

    @property
    def kind_label(self) -> str:
        """Human label of the kind."""
        return KIND_LABELS[self.kind]

    @property
    def usable(self) -> bool:
        """True when botocore would go ahead with this profile's own settings."""
        return self.problem is None and self.kind != "none"

    def chain_text(self) -> str:
        """`a -> b -> static keys` style description of the chain."""
        parts = list(self.chain)
        if self.chain_source:
            parts.append(self.chain_source)
        return " -> ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (no secrets: none are held)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "kind_label": self.kind_label,
            "region": self.region,
            "role_arn": self.role_arn,
            "source_profile": self.source_profile,
            "credential_source": self.credential_source,
            "mfa_serial": self.mfa_serial,
            "sso_session": self.sso_session,
            "sso_start_url": self.sso_start_url,
            "sso_account_id": self.sso_account_id,
            "sso_role_name": self.sso_role_name,
            "login_session": self.login_session,
            "credential_program": self.credential_program,
            "chain": list(self.chain),
            "chain_source": self.chain_source,
            "problem": self.problem,
            "problem_type": self.problem_type,
        }


def load_aws_config() -> dict[str, Any]:
    """botocore's merged config (config + credentials files), as the AWS CLI sees it."""
    config = botocore.session.Session().full_config
    return dict(config)


def list_profiles(resolve: Callable[[str], DryRun] = dry_run) -> list[ProfileInfo]:
    """Every profile, sorted by name, as botocore's resolver treats it (nothing contacted)."""
    full = load_aws_config()
    profiles: Mapping[str, Mapping[str, Any]] = full.get("profiles", {}) or {}
    sessions: Mapping[str, Mapping[str, Any]] = full.get("sso_sessions", {}) or {}
    return [describe(name, profiles, sessions, resolve(name)) for name in sorted(profiles)]


def describe(
    name: str,
    profiles: Mapping[str, Mapping[str, Any]],
    sso_sessions: Mapping[str, Mapping[str, Any]],
    run: DryRun,
) -> ProfileInfo:
    """ProfileInfo for NAME from its settings and botocore's dry run."""
    p = profiles[name]
    sso_session = _opt(p.get("sso_session"))
    start_url = _opt(p.get("sso_start_url"))
    if sso_session and not start_url:
        start_url = _opt(sso_sessions.get(sso_session, {}).get("sso_start_url"))
    process = _opt(p.get("credential_process"))
    kind = _kind(run, p)
    chain, source = _chain(name, profiles, run, kind)
    return ProfileInfo(
        name=name,
        kind=kind,
        region=_opt(p.get("region")),
        role_arn=_opt(p.get("role_arn")),
        source_profile=_opt(p.get("source_profile")),
        credential_source=_opt(p.get("credential_source")),
        mfa_serial=_opt(p.get("mfa_serial")),
        sso_session=sso_session,
        sso_start_url=start_url,
        sso_account_id=_opt(p.get("sso_account_id")),
        sso_role_name=_opt(p.get("sso_role_name")),
        login_session=_opt(p.get("login_session")),
        credential_program=program_name(process) if process else None,
        chain=chain,
        chain_source=source,
        problem=str(run.error) if run.error is not None else None,
        problem_type=type(run.error).__name__ if run.error is not None else None,
    )


def _kind(run: DryRun, profile: Mapping[str, Any]) -> ProfileKind:
    method = run.answered_by
    if method == "assume-role":
        if "credential_source" in profile and "source_profile" not in profile:
            return "assume_role_credential_source"
        return "assume_role_source_profile"
    return _METHOD_KINDS.get(method or "", "none")


def _chain(
    name: str, profiles: Mapping[str, Mapping[str, Any]], run: DryRun, kind: ProfileKind
) -> tuple[tuple[str, ...], str | None]:
    """(profiles botocore followed, where the credentials at the end come from)."""
    if not kind.startswith("assume_role"):
        if kind == "none":
            label = ", ".join(run.would_run) if run.would_run else None
            return (name,), label
        return (name,), None
    chain: list[str] = []
    for visited in run.visited or [name]:
        if not chain or chain[-1] != visited:  # a profile that is its own source appears once
            chain.append(visited)
    if run.error is not None:
        return tuple(chain), None
    last = profiles.get(chain[-1], {})
    if "credential_source" in last and "source_profile" not in last:
        return tuple(chain), f"credential_source {last['credential_source']}"
    answered = [method for profile, method in run.sources if profile == chain[-1]]
    if answered:
        return tuple(chain), _SOURCE_LABELS.get(answered[0], answered[0])
    return tuple(chain), None


def _opt(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class Resolution:
    """Identity of one profile, or the classified error."""

    profile: str
    arn: str | None
    error: AwsCredentialError | None


def resolve_identities(
    names: Iterable[str],
    identity: Callable[[str], str],
    *,
    max_workers: int = 8,
) -> list[Resolution]:
    """Call IDENTITY(profile) for every name concurrently; an error stays with its profile."""
    names = list(names)

    def one(name: str) -> Resolution:
        try:
            return Resolution(name, identity(name), None)
        except AwsCredentialError as exc:
            return Resolution(name, None, exc)
        except Exception as exc:  # anything botocore throws must not abort the other profiles
            return Resolution(name, None, classify_aws_error(exc, name))

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names)))) as pool:
        return list(pool.map(one, names))
