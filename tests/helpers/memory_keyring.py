"""An in-memory OS keyring (keyring's documented extension point), installed for a block, then put back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import keyring
import keyring.backend

_Backend = TypeVar("_Backend", bound=keyring.backend.KeyringBackend)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend keeping passwords in a dict keyed by (service, username)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@contextmanager
def installed_keyring(backend: _Backend) -> Iterator[_Backend]:
    """Make ``backend`` the process's keyring inside the block; the previous keyring is put back on exit."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
