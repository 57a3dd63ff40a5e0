"""List and classify the AWS profiles botocore sees, with their role chains.

The profiles come from botocore's merged view of the AWS config and credentials files (so
AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE are honoured exactly as the AWS CLI does).
Secrets (keys, session tokens) are read by botocore only; nothing here keeps or prints them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import botocore.session

from pgiam_tui.aws.errors import AwsCredentialError, classify_aws_error

ProfileKind = Literal[
    "static",
    "sso",
    "assume_role_source_profile",
    "assume_role_credential_source",
    "credential_process",
    "web_identity",
    "none",
]

KIND_LABELS: dict[str, str] = {
    "static": "static keys",
    "sso": "sso",
    "assume_role_source_profile": "assume-role (source_profile)",
    "assume_role_credential_source": "assume-role (credential_source)",
    "credential_process": "credential_process",
    "web_identity": "web identity",
    "none": "default chain",  # no credential settings: env vars, then container/instance role
}


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """One AWS profile, classified. `chain` is the profile followed by its source profiles."""

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
    credential_program: str | None = None  # first word of credential_process (arguments may hold secrets)
    chain: tuple[str, ...] = ()
    chain_source: str | None = (
        None  # where the chain's credentials come from, e.g. "credential_source Ec2..."
    )
    problem: str | None = None  # e.g. a source_profile that does not exist, a cycle

    @property
    def kind_label(self) -> str:
        """Human label of the kind."""
        return KIND_LABELS[self.kind]

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
            "credential_program": self.credential_program,
            "chain": list(self.chain),
            "chain_source": self.chain_source,
            "problem": self.problem,
        }


def load_aws_config() -> dict[str, Any]:
    """botocore's merged config (config + credentials files), as the AWS CLI sees it."""
    config = botocore.session.Session().full_config
    return dict(config)


def classify_profile(name: str, profile: Mapping[str, Any]) -> ProfileKind:
    """The credential kind of one profile's settings (same precedence as botocore's chain)."""
    if "web_identity_token_file" in profile:
        return "web_identity"
    if "role_arn" in profile:
        if "credential_source" in profile:
            return "assume_role_credential_source"
        return "assume_role_source_profile"
    if "sso_session" in profile or "sso_start_url" in profile:
        return "sso"
    if "credential_process" in profile:
        return "credential_process"
    if "aws_access_key_id" in profile:
        return "static"
    return "none"


def list_profiles(config: Mapping[str, Any] | None = None) -> list[ProfileInfo]:
    """Every profile, sorted by name, classified, with its role chain."""
    full = dict(config) if config is not None else load_aws_config()
    profiles: Mapping[str, Mapping[str, Any]] = full.get("profiles", {}) or {}
    sessions: Mapping[str, Mapping[str, Any]] = full.get("sso_sessions", {}) or {}
    return [_info(name, profiles, sessions) for name in sorted(profiles)]


def _info(
    name: str, profiles: Mapping[str, Mapping[str, Any]], sso_sessions: Mapping[str, Mapping[str, Any]]
) -> ProfileInfo:
    p = profiles[name]
    kind = classify_profile(name, p)
    sso_session = _opt(p.get("sso_session"))
    start_url = _opt(p.get("sso_start_url"))
    if sso_session and not start_url:
        start_url = _opt(sso_sessions.get(sso_session, {}).get("sso_start_url"))
    program = None
    if "credential_process" in p:
        try:
            words = shlex.split(str(p["credential_process"]))
        except ValueError:
            words = str(p["credential_process"]).split()
        program = words[0] if words else None
    chain, source, problem = _chain(name, profiles)
    if kind == "sso" and sso_session and sso_session not in sso_sessions and not problem:
        problem = f"sso_session {sso_session!r} has no [sso-session {sso_session}] section"
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
        credential_program=program,
        chain=chain,
        chain_source=source,
        problem=problem,
    )


def _chain(
    name: str, profiles: Mapping[str, Mapping[str, Any]]
) -> tuple[tuple[str, ...], str | None, str | None]:
    """Follow source_profile links: (profiles in order, final credential source, problem)."""
    chain = [name]
    current = name
    while True:
        p = profiles.get(current)
        if p is None:
            return tuple(chain), None, f"source_profile {current!r} does not exist"
        kind = classify_profile(current, p)
        if kind == "assume_role_source_profile" and "source_profile" in p:
            nxt = str(p["source_profile"])
            if nxt == current:
                # botocore allows a role profile to use its own static keys as the source.
                return tuple(chain), KIND_LABELS["static"], None
            if nxt in chain:
                return tuple(chain), None, f"source_profile cycle: {' -> '.join([*chain, nxt])}"
            chain.append(nxt)
            current = nxt
            continue
        if kind == "assume_role_source_profile":
            return tuple(chain), None, "role_arn without source_profile or credential_source"
        if kind == "assume_role_credential_source":
            return tuple(chain), f"credential_source {p['credential_source']}", None
        if len(chain) == 1:
            return (name,), None, None
        return tuple(chain), KIND_LABELS[kind], None


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
