"""Passwords of auth = "password" clusters, kept in the OS keyring (never in profiles.toml).

Service name "pgiam-tui", username = the cluster's config name. The keyring library picks the
platform backend (macOS Keychain, Secret Service, Windows Credential Locker); errors become one-line
SecretStoreError messages that never contain the password.
"""

from __future__ import annotations

from typing import ClassVar

from pgiam_tui.errors import PgiamError

KEYRING_SERVICE = "pgiam-tui"


class SecretStoreError(PgiamError):
    """The OS keyring could not be used; str() is one line without any secret."""

    default_step: ClassVar[str] = "password"


def get_password(cluster: str) -> str | None:
    """The stored password of CLUSTER, or None when none is stored."""
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(KEYRING_SERVICE, cluster)
    except keyring.errors.KeyringError as exc:
        raise SecretStoreError(
            f"cannot read the password of {cluster!r} from the OS keyring: {_why(exc)}"
        ) from None
    return None if value is None else str(value)


def set_password(cluster: str, password: str) -> None:
    """Store PASSWORD for CLUSTER (replacing any previous one)."""
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, cluster, password)
    except keyring.errors.KeyringError as exc:
        raise SecretStoreError(
            f"cannot store the password of {cluster!r} in the OS keyring: {_why(exc)}"
        ) from None


def delete_password(cluster: str) -> bool:
    """Remove the password of CLUSTER; False when there was none."""
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(KEYRING_SERVICE, cluster)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise SecretStoreError(
            f"cannot delete the password of {cluster!r} from the OS keyring: {_why(exc)}"
        ) from None
    return True


#: What to do when the keyring library finds no backend at all (a server or container without a desktop).
NO_BACKEND = (
    "this machine has no OS keyring (no Secret Service, Keychain or Credential Locker found); "
    "run a Secret Service such as gnome-keyring, or choose a backend with PYTHON_KEYRING_BACKEND"
)


def _why(exc: BaseException) -> str:
    import keyring.errors

    if isinstance(exc, keyring.errors.NoKeyringError):
        return NO_BACKEND  # keyring's own text is a paragraph about third-party packages
    # Backend messages describe the backend (e.g. a locked collection), not the secret.
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{text} (see https://pypi.org/project/keyring/ for configuring a backend)"
