"""A seeded, running LocalPostgres for a test module, always cleaned up (server and template)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgiam_sandbox.postgres import LocalPostgres


@contextmanager
def running_postgres(root: Path, *, bindir: Path | None = None) -> Iterator[LocalPostgres]:
    """Seed a template under ``root``, clone it, start the clone; stop and remove both on exit."""
    template = LocalPostgres.init_template(root / "template", bindir=bindir)
    try:
        server = LocalPostgres.clone(template, root / "server")
        try:
            server.start()
            yield server
        finally:
            server.cleanup()
    finally:
        template.cleanup()
