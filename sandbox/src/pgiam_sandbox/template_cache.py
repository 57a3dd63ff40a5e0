"""The seeded template data directory, kept between runs: initdb + seed once, then every sandbox copies it.

initdb, a first start, seed.sql and a stop take several seconds (most of `sandbox up` and of `pgiam-tui
demo` before its first rows); copying the result takes a fraction of one. The copy is made once per
template *kind*: the PostgreSQL binaries (their directory and version), the account that runs them, and the
sources that decide what the data directory holds (pg_datadir.py, pg_host.py, seed.sql). Any change to one
of them is a different kind, built afresh; the three kinds used last are kept.

Where: ``$PGIAM_SANDBOX_TEMPLATE_CACHE``, else ``$XDG_CACHE_HOME/pgiam-sandbox/templates``, else
``~/.cache/pgiam-sandbox/templates``; ``PGIAM_SANDBOX_TEMPLATE_CACHE=off`` turns the cache off. A cache that
cannot be read or written is no error: the template is then built as without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.pg_datadir import copy_stopped
from pgiam_sandbox.pg_host import RunAs, server_version

__all__ = ["CACHE_ENV", "cache_root", "lookup", "store", "template_kind"]

log = logging.getLogger(__name__)

CACHE_ENV = "PGIAM_SANDBOX_TEMPLATE_CACHE"
_DATA = "data"
_STALE_TMP_S = 3600.0  # a half-written copy older than this belongs to a run that died
_KINDS_KEPT = 3  # e.g. the system's PostgreSQL and the pgserver wheel's, used by turns
# What decides the template's content besides the binaries: how it is made and what is loaded into it.
_SOURCES = ("pg_datadir.py", "pg_host.py", "seed.sql")


def cache_root() -> Path | None:
    """The cache directory, or None when the cache is turned off."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() in ("off", "0", "no", "false"):
        return None
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory to be found: no cache
            return None
    return Path(base) / "pgiam-sandbox" / "templates"


def template_kind(bindir: Path, user: RunAs | None) -> str:
    """A name for the template these binaries, this account and these sources make."""
    digest = hashlib.sha256()
    major, minor = server_version(bindir)
    digest.update(f"{bindir.resolve()}\0{major}.{minor}\0{user.uid if user else os.geteuid()}\0".encode())
    for name in _SOURCES:
        digest.update(_read_source(name))
    return f"pg{major}-{digest.hexdigest()[:16]}"


def _read_source(name: str) -> bytes:
    return resources.files("pgiam_sandbox").joinpath(name).read_bytes()


def lookup(bindir: Path, user: RunAs | None) -> Path | None:
    """The cached template data directory for these binaries and this account, if there is a whole one."""
    root = cache_root()
    if root is None:
        return None
    try:
        data = root / template_kind(bindir, user) / _DATA
        if not (data / "PG_VERSION").is_file():
            return None
        with contextlib.suppress(OSError):
            os.utime(data.parent)  # used now: pruning keeps the kinds used last
        return data
    except OSError:
        return None


def store(data_dir: Path, bindir: Path, user: RunAs | None) -> None:
    """Keep a copy of the stopped, seeded template DATA_DIR for later runs (never raises)."""
    root = cache_root()
    if root is None:
        return
    try:
        kind = template_kind(bindir, user)
        if (root / kind / _DATA / "PG_VERSION").is_file():
            return
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            copy_stopped(data_dir, staging / _DATA)  # keeps the server account's ownership, as copies need
        except SandboxError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            log.debug("template cache not written: %s", exc)
            return
        try:
            staging.rename(root / kind)  # atomic: a reader sees a whole template or none
        except OSError:  # another run stored the same kind first
            shutil.rmtree(staging, ignore_errors=True)
        _prune(root, keep=kind)
    except OSError as exc:
        log.debug("template cache not written: %s", exc)


def _prune(root: Path, *, keep: str) -> None:
    """Remove all but the kinds used last (KEEP among them), and half-written copies of runs that died."""
    now = time.time()
    kinds: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        with contextlib.suppress(OSError):
            age = now - entry.stat().st_mtime
            if entry.name.startswith(".tmp-"):
                if age >= _STALE_TMP_S:  # younger: another run is writing it now
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.name != keep:
                kinds.append((age, entry))
    for _age, entry in sorted(kinds)[_KINDS_KEPT - 1 :]:
        shutil.rmtree(entry, ignore_errors=True)
