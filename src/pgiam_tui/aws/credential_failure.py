"""Why credentials could not be had, in words that name the real reason.

botocore's instance-metadata provider swallows every failure (refused, timed out, no role attached) and the
chain ends with "Unable to locate credentials" or "No credentials found in credential_source": true, but
not a reason anyone can act on. When a profile's chain goes through the instance metadata service (as
botocore's own resolver says, see profile_dry_run), `credential_failure` asks that service once more, the
way botocore does (IMDSv2 token, then the role list), and says what happened. Blocking: run in a thread.
"""

from __future__ import annotations

import botocore.awsrequest
import botocore.credentials
import botocore.exceptions as bx
import botocore.httpsession
import botocore.session

from pgiam_tui.aws.errors import AwsCredentialError, classify_aws_error
from pgiam_tui.aws.profile_dry_run import dry_run

__all__ = ["credential_failure", "imds_reason"]

_CREDENTIAL_KINDS = frozenset({"unknown_profile", "sso_expired", "imds_unreachable", "no_credentials"})
_BOTOCORE_CREDENTIAL_ERRORS = (
    bx.NoCredentialsError,
    bx.CredentialRetrievalError,
    bx.PartialCredentialsError,
    bx.ProfileNotFound,
    bx.SSOError,
    bx.TokenRetrievalError,
    bx.InvalidConfigError,
)


def _imds_settings(profile: str | None) -> tuple[str, float]:
    """(base URL, timeout) of the instance metadata service exactly as botocore configures it."""
    session = botocore.session.Session(profile=profile)
    resolver = botocore.credentials.create_credential_resolver(session)
    provider = resolver.get_provider("iam-role")
    fetcher = getattr(provider, "_role_fetcher", None)
    base = fetcher.get_base_url() if fetcher is not None else "http://169.254.169.254/"
    timeout = float(session.get_config_variable("metadata_service_timeout") or 1)
    return base if base.endswith("/") else base + "/", timeout


def imds_reason(profile: str | None) -> str:
    """One line: what the instance metadata service answers (or not) to the calls botocore makes."""
    base, timeout = _imds_settings(profile)
    http = botocore.httpsession.URLLib3Session(timeout=timeout)  # type: ignore[arg-type]  # urllib3 takes floats
    where = f"instance metadata service at {base}"
    token_request = botocore.awsrequest.AWSRequest(
        method="PUT", url=base + "latest/api/token", headers={"x-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    try:
        answer = http.send(token_request.prepare())
        headers = {}
        if answer.status_code == 200:
            headers["x-aws-ec2-metadata-token"] = answer.text
        elif answer.status_code not in (403, 404, 405):  # these mean "IMDSv1 only": botocore goes on
            return f"{where} answered HTTP {answer.status_code} to the IMDSv2 token request"
        roles_request = botocore.awsrequest.AWSRequest(
            method="GET", url=base + "latest/meta-data/iam/security-credentials/", headers=headers
        )
        roles = http.send(roles_request.prepare())
    except bx.ConnectTimeoutError:
        return f"{where} did not accept a connection within {timeout:g} s (not on EC2, or blocked)"
    except bx.ReadTimeoutError:
        return f"{where} accepted the connection but did not answer within {timeout:g} s"
    except bx.EndpointConnectionError as exc:
        return f"{where} cannot be reached: {exc}"
    except bx.HTTPClientError as exc:
        return f"{where} failed: {exc}"
    if roles.status_code == 404 or (roles.status_code == 200 and not roles.text.strip()):
        return f"{where} answers, but no IAM role is attached to this instance"
    if roles.status_code != 200:
        return f"{where} answered HTTP {roles.status_code} to the role list request"
    return f"{where} answers and lists role {roles.text.split()[0]!r}; its credentials could not be read"


def _uses_imds(profile: str | None) -> bool:
    try:
        run = dry_run(profile)
    except Exception:  # an unreadable config: not an instance-metadata question
        return False
    return "instance metadata" in run.would_run


def credential_failure(exc: BaseException, profile: str | None) -> AwsCredentialError | None:
    """EXC as a credentials failure with its real reason, or None when it is not about credentials."""
    if isinstance(exc, AwsCredentialError):
        err = exc
    elif isinstance(exc, _BOTOCORE_CREDENTIAL_ERRORS):
        err = classify_aws_error(exc, profile)
    else:
        return None
    if err.kind not in _CREDENTIAL_KINDS:
        return None
    if err.kind in ("no_credentials", "imds_unreachable") and _uses_imds(profile):
        who = f"profile {profile!r}" if profile else "the default credential chain"
        return AwsCredentialError(
            f"{who}: no credentials: {imds_reason(profile)}",
            "imds_unreachable",
            "run on the EC2 instance that has the role, check AWS_EC2_METADATA_SERVICE_ENDPOINT, "
            "or use a profile with its own credentials",
            profile,
        )
    return err
