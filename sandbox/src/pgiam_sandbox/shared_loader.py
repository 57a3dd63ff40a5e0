"""One botocore data loader for the whole stand-in process.

botocore gives every new Session its own data loader, and every loader reads and parses endpoints.json
(1.2 MB) and each service model again. moto makes a fresh ``boto3.Session()`` wherever it needs a region
list or a partition (three at the import of its EC2 models alone, which moto's RDS imports), and the
sandbox makes its own per key: before this, a third of `sandbox up` (and of `pgiam-tui demo` before its
first rows) was parsing the same JSON files over again. With :func:`install`, sessions created afterwards
share one loader per ``data_path`` setting, so each file is parsed once per process; what a loader returns
is what botocore already shares between the clients of one session.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.loaders
import botocore.session

__all__ = ["install"]

_lock = threading.Lock()
_loaders: dict[str | None, Any] = {}
_original_create_loader = botocore.loaders.create_loader


class _PathsOnce(list[str]):
    """A loader's search paths: boto3.Session appends its own data directory once per session; kept once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(search_path_string: str | None = None) -> Any:
    with _lock:
        loader = _loaders.get(search_path_string)
        if loader is None:
            loader = _original_create_loader(search_path_string)
            loader._search_paths = _PathsOnce(loader.search_paths)  # type: ignore[attr-defined]  # no setter
            _loaders[search_path_string] = loader
        return loader


def install() -> None:
    """From now on, every botocore Session of this process gets the shared loader (idempotent)."""
    botocore.session.create_loader = _shared_loader
