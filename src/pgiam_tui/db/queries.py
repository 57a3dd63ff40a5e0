"""Monitoring SQL, one package file per query shape and server version family (pg_activity's layout).

Files are named `<query>_post_<server_version_num>.sql`; for a server we pick the file with the highest
version not above the server's. They ship inside the package (importlib.resources), so no string surgery.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import ClassVar, LiteralString

from pgiam_tui.errors import PgiamError

_NAME = re.compile(r"^(?P<query>[a-z_]+)_post_(?P<version>\d{6})\.sql$")

# pg_stat_activity as we read it needs backend_type (PostgreSQL 10+); RDS and Aurora support 12 and later
MIN_SERVER_VERSION_NUM = 100000


class UnsupportedServerError(PgiamError):
    """The server is older than any query file we have."""

    default_step: ClassVar[str] = "query"


@cache
def _variants(query: str) -> tuple[tuple[int, str], ...]:
    """(min_version, file name) pairs for QUERY, highest version first."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("pgiam_tui.db.sql").iterdir():
        m = _NAME.match(entry.name)
        if m and m.group("query") == query:
            found.append((int(m.group("version")), entry.name))
    if not found:
        raise KeyError(f"no SQL files for query {query!r}")
    return tuple(sorted(found, reverse=True))


@cache
def _read(name: str) -> str:
    return compact(resources.files("pgiam_tui.db.sql").joinpath(name).read_text(encoding="utf-8"))


def compact(sql: str) -> str:
    """SQL without whole-line comments and indentation.

    The files are written to be read; what the server gets should be short: the text of a running query
    shows in every other monitor's pg_stat_activity (ours included) and is clipped at
    track_activity_query_size. Only whole lines are dropped, so string literals are never touched.
    """
    lines = (line.strip() for line in sql.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("--"))


def query_file(query: str, server_version_num: int) -> str:
    """The file name of QUERY for a server of SERVER_VERSION_NUM (e.g. 150004)."""
    if server_version_num < MIN_SERVER_VERSION_NUM:
        raise UnsupportedServerError(f"PostgreSQL {server_version_num} is too old (10 or later is needed)")
    for version, name in _variants(query):
        if server_version_num >= version:
            return name
    # older than our oldest file but still >= MIN_SERVER_VERSION_NUM: the oldest shape works there
    return _variants(query)[-1][1]


def get_query(query: str, server_version_num: int) -> LiteralString:
    """The SQL text of QUERY for that server version (a package file, so a literal string for psycopg)."""
    # package files are part of the program, not user input: safe to treat as literal SQL
    return _read(query_file(query, server_version_num))
