"""AWS errors turned into one-line, classified messages with a fix hint.

botocore raises a zoo of exceptions (ProfileNotFound, NoCredentialsError, CredentialRetrievalError,
ClientError with AccessDenied on AssumeRole, SSO token errors, ...). Callers want to know *which* of a few
situations they are in and what to tell the user; `classify_aws_error` does that mapping in one place.
None of the botocore messages used here carry secrets, and we never add request parameters to them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import botocore.exceptions as bx

from pgiam_tui.errors import PgiamError
from pgiam_tui.fixquote import shell_word

CredentialErrorKind = Literal[
    "unknown_profile",
    "sso_expired",
    "imds_unreachable",
    "assume_role_denied",
    "expired",
    "no_credentials",
    "other",
]

DiscoveryErrorKind = Literal[
    "not_found", "not_postgres", "access_denied", "no_region", "region_mismatch", "other"
]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def aws_error_code(exc: BaseException) -> str | None:
    """The service error code of an AWS error (a ClientError, or anything carrying botocore's `response`)."""
    resp = getattr(exc, "response", None)
    if not isinstance(resp, dict):
        return None
    code = (resp.get("Error") or {}).get("Code")
    return str(code) if code else None


_TIMEOUTS = (bx.ConnectTimeoutError, bx.ReadTimeoutError, TimeoutError)
#: The service error codes that mean the caller lacks a permission (IAM, RDS and STS say AccessDenied, the
#: JSON-protocol services AccessDeniedException, EC2 UnauthorizedOperation); the one list every reader uses.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
    }
)
_THROTTLED_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)
#: The fix of any AWS read that timed out: a timeout says nothing about permissions.
AWS_TIMEOUT_FIX = (
    "AWS did not answer in time (a timeout, not a missing permission): read again at the next refresh; "
    "if it keeps timing out, check the network path to AWS (proxy, VPC endpoint, firewall, AWS_ENDPOINT_URL)"
)
AWS_UNREACHABLE_FIX = (
    "AWS could not be reached (nothing says a permission is missing): check the network path to AWS "
    "(proxy, VPC endpoint, firewall, AWS_ENDPOINT_URL)"
)
AWS_THROTTLED_FIX = (
    "AWS throttled the request: read again at the next refresh (aws_requests_per_minute paces it)"
)


def is_timeout(exc: BaseException) -> bool:
    """True for a botocore connect/read timeout or a TimeoutError, also when wrapped (cause or context)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, _TIMEOUTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def aws_read_fix(exc: BaseException, permission_fix: str) -> str:
    """The fix to show for an AWS read that failed with EXC: PERMISSION_FIX only when AWS answered with a
    refusal (or another service error); a timeout, an unreachable endpoint or throttling get their own."""
    if is_timeout(exc):
        return AWS_TIMEOUT_FIX
    code = aws_error_code(exc)
    if code is None:
        unreachable = isinstance(exc, bx.EndpointConnectionError | bx.ConnectionError | bx.HTTPClientError)
        return AWS_UNREACHABLE_FIX if unreachable else permission_fix
    if code in _THROTTLED_CODES:
        return AWS_THROTTLED_FIX
    return permission_fix


def describe_aws_error(exc: BaseException) -> str:
    """One line naming an error: "Code: Message" for an AWS service error, else "ExceptionType: text".

    Callers that show it to a user still make control characters visible (the message is the server's).
    """
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        err = resp.get("Error") or {}
        text = f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _one_line(text)


class AwsCredentialError(PgiamError):
    """Credentials for a profile could not be obtained or were refused; str() is one line."""

    default_step: ClassVar[str] = "credentials"

    def __init__(
        self, message: str, kind: CredentialErrorKind, hint: str | None, profile: str | None
    ) -> None:
        super().__init__(_one_line(message), hint=hint)
        self.kind: CredentialErrorKind = kind
        self.profile: str | None = profile

    def __repr__(self) -> str:
        return f"AwsCredentialError(kind={self.kind!r}, profile={self.profile!r}, message={self.message!r})"


class DiscoveryError(PgiamError):
    """A cluster or instance could not be resolved (not found, not PostgreSQL, access denied, ...)."""

    default_step: ClassVar[str] = "discovery"

    def __init__(self, message: str, kind: DiscoveryErrorKind, hint: str | None = None) -> None:
        super().__init__(_one_line(message), hint=hint)
        self.kind: DiscoveryErrorKind = kind


def did_you_mean(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest of KNOWN to NAME, or ''."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_profiles() -> list[str]:
    try:
        import botocore.session

        return list(botocore.session.Session().available_profiles)
    except Exception:  # an unreadable AWS config: no suggestion, the error itself still stands
        return []


def _label(profile: str | None) -> str:
    return f"profile {profile!r}" if profile else "the default credential chain"


def _login_hint(profile: str | None) -> str:
    return f"aws sso login --profile {shell_word(profile)}" if profile else "aws sso login"


def classify_aws_error(exc: BaseException, profile: str | None) -> AwsCredentialError:
    """Map a botocore/boto3 exception to an AwsCredentialError with kind and hint."""
    if isinstance(exc, AwsCredentialError):
        return exc
    who = _label(profile)
    if isinstance(exc, bx.ProfileNotFound):
        # With profile None the name came from AWS_PROFILE; botocore's exception carries it.
        missing = profile or str(getattr(exc, "kwargs", {}).get("profile", "?"))
        return AwsCredentialError(
            f"AWS profile {missing!r} not found"
            + ("" if profile else " (from AWS_PROFILE)")
            + did_you_mean(missing, _known_profiles()),
            "unknown_profile",
            "list the profiles with `pgiam-tui profiles` (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE "
            "choose the files)",
            profile,
        )
    if isinstance(exc, bx.InvalidConfigError) and "does not exist" in str(exc):
        # e.g. 'The source_profile "x" referenced in the profile "y" does not exist.'
        return AwsCredentialError(
            f"{who}: {exc}", "unknown_profile", "fix source_profile in the AWS config file", profile
        )
    if isinstance(exc, bx.SSOError | bx.TokenRetrievalError):
        return AwsCredentialError(
            f"{who}: the SSO session has expired or was never started",
            "sso_expired",
            _login_hint(profile),
            profile,
        )
    if isinstance(exc, bx.CredentialRetrievalError):
        provider = str(getattr(exc, "kwargs", {}).get("provider", ""))
        text = str(exc)
        if provider in ("Ec2InstanceMetadata", "EcsContainer") or "credential_source" in text:
            return AwsCredentialError(
                f"{who}: no credentials from credential_source {provider or '?'} "
                "(instance metadata service unreachable or no role attached)",
                "imds_unreachable",
                "run this on the EC2 instance that has the role, check AWS_EC2_METADATA_SERVICE_ENDPOINT, "
                "or use a profile with its own credentials",
                profile,
            )
        if "sso" in provider.lower() or "sso" in text.lower():
            return AwsCredentialError(f"{who}: {text}", "sso_expired", _login_hint(profile), profile)
        return AwsCredentialError(
            f"{who}: {text}", "other", "check the credential_process / provider named in the profile", profile
        )
    if isinstance(exc, bx.MetadataRetrievalError | bx.InvalidIMDSEndpointError):
        return AwsCredentialError(
            f"{who}: instance metadata service unreachable: {exc}",
            "imds_unreachable",
            "check AWS_EC2_METADATA_SERVICE_ENDPOINT or run on an EC2 instance with a role",
            profile,
        )
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsCredentialError(
            f"{who}: no AWS credentials found ({exc})",
            "no_credentials",
            f"configure credentials (aws configure --profile {shell_word(profile)})"
            if profile
            else "choose a profile in the config (profile = ...) or set AWS credentials",
            profile,
        )
    if isinstance(exc, bx.NoRegionError):
        return AwsCredentialError(
            f"{who}: no AWS region configured",
            "other",
            "set region in the AWS profile or in profiles.toml",
            profile,
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionError):
        return AwsCredentialError(
            f"{who}: cannot reach the AWS endpoint: {exc}",
            "other",
            "check the network, proxy settings or AWS_ENDPOINT_URL",
            profile,
        )
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = str(error.get("Message", "")) or str(exc)
        operation = exc.operation_name
        if operation.startswith("AssumeRole") and code in ("AccessDenied", "AccessDeniedException"):
            return AwsCredentialError(
                f"{who}: AssumeRole refused: {text}",
                "assume_role_denied",
                "the source identity needs sts:AssumeRole on the role, "
                "and the role's trust policy must name it",
                profile,
            )
        if code in ("ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"):
            return AwsCredentialError(
                f"{who}: the credentials have expired ({code})",
                "expired",
                _login_hint(profile) + " (SSO) or renew the session token"
                if profile
                else "renew the credentials",
                profile,
            )
        if code in ("RequestExpired", "SignatureDoesNotMatch") and "expired" in text.lower():
            return AwsCredentialError(
                f"{who}: {operation} refused: {code}: {text}",
                "other",
                "check the local clock (requests signed at a skewed time are refused)",
                profile,
            )
        if code in ("InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure"):
            return AwsCredentialError(
                f"{who}: {operation} refused: {code}: {text}",
                "other",
                "the access key is not known to AWS (deleted, wrong account, or a stale session token)",
                profile,
            )
        return AwsCredentialError(f"{who}: {operation} failed: {code}: {text}", "other", None, profile)
    if isinstance(exc, bx.BotoCoreError):
        return AwsCredentialError(f"{who}: {exc}", "other", None, profile)
    return AwsCredentialError(f"{who}: {type(exc).__name__}: {exc}", "other", None, profile)
