"""Test keyrings (keyring's documented extension point): one in memory, installed for a block and then put
back; one in a JSON file, for a `pgiam-tui` subprocess (selected there with PYTHON_KEYRING_BACKEND)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import keyring
import keyring.backend
import keyring.errors

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
        if self.store.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")  # as keyring's backends do


class FileKeyring(keyring.backend.KeyringBackend):
    """A keyring backend keeping passwords in the JSON file named by $PGIAM_TEST_KEYRING, so that a
    `pgiam-tui` subprocess (PYTHON_KEYRING_BACKEND=helpers.memory_keyring.FileKeyring, tests/ on its
    PYTHONPATH) and the test see the same store. Keys are "service\0username"."""

    priority = 1
    ENV = "PGIAM_TEST_KEYRING"

    def _path(self) -> Path:
        return Path(os.environ[self.ENV])

    def load(self) -> dict[str, str]:
        """The whole store (empty before the first password is set)."""
        path = self._path()
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    def _save(self, data: dict[str, str]) -> None:
        self._path().write_text(json.dumps(data), encoding="utf-8")

    def get_password(self, service: str, username: str) -> str | None:
        return self.load().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save({**self.load(), f"{service}\0{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        data = self.load()
        if data.pop(f"{service}\0{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("not found")
        self._save(data)


@contextmanager
def installed_keyring(backend: _Backend) -> Iterator[_Backend]:
    """Make ``backend`` the process's keyring inside the block; the previous keyring is put back on exit."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
