"""One boto3 Session per AWS profile, shared by every part of the console.

boto3 does the credential chains (static, SSO, assume-role via source_profile or credential_source,
credential_process, web identity), SigV4 and retries. We only add:

* reuse: one Session per profile, created once under a lock (boto3 sessions are not thread-safe to
  create clients from concurrently, so clients are also made under a lock and cached);
* the AWS CLI's credential cache (~/.aws/cli/cache) for assumed roles, so `aws ...` and the console
  share one AssumeRole result instead of each calling STS (botocore's documented pattern, the one the
  AWS CLI itself uses: set `.cache` on the assume-role providers);
* one botocore data loader for every session of the process (per `data_path`): each new botocore session
  would otherwise read and parse endpoints.json and every service model again (a second profile's RDS
  client cost as much as the first: start-up time of `check`, `snapshot` and the console);
* `adaptive` retries unless the user chose a retry mode (the default of botocore's `retry_mode`);
* the MFA prompt: botocore's assume-role provider asks for an `mfa_serial` code through its
  `prompter`; we route that to the caller's callback (terminal for the CLI, a modal in the console)
  instead of a bare getpass.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
from botocore.utils import JSONFileCache

from pgiam_tui.aws.budget import install_budget
from pgiam_tui.aws.errors import AwsCredentialError, classify_aws_error
from pgiam_tui.aws.request_stats import install_request_stats

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sts import STSClient

__all__ = [
    "AWS_CLI_CACHE_DIR",
    "AwsCredentialError",
    "SessionFactory",
    "cached_client",
    "classify_aws_error",
    "rds_client",
    "sts_client",
]

MfaPrompt = Callable[[str], str]

#: The AWS CLI's cache of assumed-role credentials (same path and key scheme as `aws`).
AWS_CLI_CACHE_DIR = Path("~/.aws/cli/cache")
#: Overrides the cache directory. The sandbox sets it: its moto forgets every key when it stops, so
#: credentials cached from an earlier sandbox would be taken for real and fail (or land in moto's
#: default account) — a local AWS stand-in must not share the user's real cache either.
CACHE_DIR_ENV = "PGIAM_TUI_AWS_CLI_CACHE"

# Providers whose results the AWS CLI caches in ~/.aws/cli/cache.
_CACHED_PROVIDERS = ("assume-role", "assume-role-with-web-identity")

# botocore's defaults (60 s connect and read) would freeze a check or a pane for minutes when an endpoint
# is unreachable; retries stay as configured (AWS_MAX_ATTEMPTS / AWS_RETRY_MODE / the profile).
_CLIENT_CONFIG = botocore.config.Config(connect_timeout=5, read_timeout=20, user_agent_extra="pgiam-tui")

# botocore's `retry_mode` variable with `adaptive` as its default instead of `legacy` (adaptive backs off and
# slows its client-side rate after throttling): botocore's own lookup still lets AWS_RETRY_MODE and the
# profile's `retry_mode` win, so the user's choice stands.
_SESSION_VARS = {"retry_mode": ("retry_mode", "AWS_RETRY_MODE", "adaptive", None)}


class _SessionClients:
    """The clients made from one session, and the lock that serializes making them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: dict[tuple[str, str | None], Any] = {}


_registry_lock = threading.Lock()
_loaders: dict[Any, Any] = {}  # data_path -> the botocore Loader every session with that path shares
_clients: weakref.WeakKeyDictionary[boto3.Session, _SessionClients] = weakref.WeakKeyDictionary()


def cached_client(session: boto3.Session, service: str, region: str | None = None) -> Any:
    """A client of SERVICE in REGION for SESSION, created once and reused.

    boto3 clients are thread-safe once made; making them from one session in several threads at the
    same time is not, hence a lock per session (a slow credential_process of one profile does not hold
    up the others).
    """
    key = (service, region)
    with _registry_lock:
        entry = _clients.get(session)
        if entry is None:
            entry = _clients[session] = _SessionClients()
    with entry.lock:
        client = entry.clients.get(key)
        if client is None:
            client = session.client(  # type: ignore[call-overload]
                service, region_name=region, config=_CLIENT_CONFIG
            )
            # every request (each retry too) counts against its account's and region's budget
            install_budget(client, session, region)
            install_request_stats(client)  # what `serve` exports as AWS requests and throttles per API
            entry.clients[key] = client
        return client


def rds_client(session: boto3.Session, region: str | None = None) -> RDSClient:
    """The cached RDS client of SESSION in REGION."""
    client: RDSClient = cached_client(session, "rds", region)
    return client


def sts_client(session: boto3.Session, region: str | None = None) -> STSClient:
    """The cached STS client of SESSION in REGION."""
    client: STSClient = cached_client(session, "sts", region)
    return client


def _share_loader(core: botocore.session.Session) -> None:
    """Give CORE the process's data loader for its `data_path` (botocore caches what a loader read, per
    loader: models, endpoints.json, partitions), making it that loader when CORE is the first."""
    data_path = core.get_config_variable("data_path")
    with _registry_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            _loaders[data_path] = core.get_component("data_loader")
        else:
            core.register_component("data_loader", loader)


def _drop_repeated_search_paths(core: botocore.session.Session) -> None:
    """boto3.Session appends its own data directory to the loader's search paths, once per session: keep
    each path once on the shared loader."""
    paths = core.get_component("data_loader").search_paths
    with _registry_lock:
        paths[:] = list(dict.fromkeys(paths))


class SessionFactory:
    """Hands out one boto3.Session per profile (None = default chain), reused and thread-safe.

    `mfa_prompt(prompt) -> code` is called when an assumed role has `mfa_serial`; prompts are
    serialized so that concurrent resolutions never ask two questions at once.
    `cache_dir` defaults to $PGIAM_TUI_AWS_CLI_CACHE (set by the sandbox), else the AWS CLI's
    ~/.aws/cli/cache (tests pass a temporary directory).
    """

    def __init__(self, mfa_prompt: MfaPrompt | None = None, *, cache_dir: Path | str | None = None) -> None:
        self._mfa_prompt = mfa_prompt
        self._prompt_lock = threading.Lock()
        self._lock = threading.Lock()
        self._sessions: dict[str | None, boto3.Session] = {}
        self._identities: dict[str | None, str] = {}
        if cache_dir is None:
            cache_dir = os.environ.get(CACHE_DIR_ENV) or AWS_CLI_CACHE_DIR
        self._cache_dir = Path(cache_dir).expanduser()

    def session(self, profile: str | None) -> boto3.Session:
        """The Session of PROFILE; AwsCredentialError(kind="unknown_profile") when it does not exist."""
        with self._lock:
            found = self._sessions.get(profile)
            if found is not None:
                return found
            try:
                core = botocore.session.Session(session_vars=_SESSION_VARS, profile=profile)
                # Fail now, with a clear kind, rather than at the first API call.
                if profile is not None and profile not in core.available_profiles:
                    raise botocore.exceptions.ProfileNotFound(profile=profile)
                self._install_cache_and_prompter(core)
                _share_loader(core)
                session = boto3.Session(botocore_session=core)
                _drop_repeated_search_paths(core)
            except botocore.exceptions.BotoCoreError as exc:
                raise classify_aws_error(exc, profile) from None
            self._sessions[profile] = session
            return session

    def identity(self, profile: str | None, *, refresh: bool = False) -> str:
        """Caller ARN of PROFILE via sts get-caller-identity (cached; refresh=True asks again)."""
        if not refresh:
            with self._lock:
                known = self._identities.get(profile)
            if known is not None:
                return known
        session = self.session(profile)
        try:
            arn = str(sts_client(session, session.region_name).get_caller_identity()["Arn"])
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise classify_aws_error(exc, profile) from None
        with self._lock:
            self._identities[profile] = arn
        return arn

    def clear(self) -> None:
        """Forget every session (e.g. after `aws sso login` or an edited AWS config)."""
        with self._lock:
            self._sessions.clear()
            self._identities.clear()

    def _prompt(self, prompt: str) -> str:
        if self._mfa_prompt is None:
            # botocore would fall back to getpass on whatever terminal there is (or hang in the TUI).
            raise AwsCredentialError(
                f"an MFA code is needed ({prompt.strip().rstrip(':')}) but nothing can ask for it here",
                "other",
                "run `pgiam-tui profiles --resolve` in a terminal (or any `aws` command with the profile) "
                "once to fill the AWS CLI cache",
                None,
            )
        with self._prompt_lock:
            return self._mfa_prompt(prompt)

    def _install_cache_and_prompter(self, core: botocore.session.Session) -> None:
        resolver = core.get_component("credential_provider")
        cache = JSONFileCache(str(self._cache_dir))
        for method in _CACHED_PROVIDERS:
            try:
                provider = resolver.get_provider(method)
            except botocore.exceptions.UnknownCredentialError:
                continue  # a botocore without this provider: nothing to share
            provider.cache = cache
        # botocore keeps the prompter in a private attribute and passes it to the AssumeRole fetcher
        # at load time; there is no public setter.
        with contextlib.suppress(botocore.exceptions.UnknownCredentialError):
            resolver.get_provider("assume-role")._prompter = self._prompt
