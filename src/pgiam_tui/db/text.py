"""Text the server hands over unchecked, decoded per value so that one bad value never blanks a round.

pg_stat_activity is shared by every database of an instance, and a backend's query text (and application
name, role and database names) is stored as the bytes its own database's encoding allowed. A session of a
`SQL_ASCII` database may hold any bytes at all (`select pg_sleep(300) /* caf\\xe9 \\xff */`), and they reach
a monitor connected to a UTF8 database unconverted: psycopg's loaders then raise UnicodeDecodeError for the
whole result, so every session of that instance vanished. Monitoring a `SQL_ASCII` database itself, psycopg
returns such columns as bytes instead of str.

The loaders here decode per value: valid text in the connection's encoding stays exact (the fast path),
anything else becomes U+FFFD REPLACEMENT CHARACTER per undecodable byte, an unambiguous mark no escape
syntax can imitate. They are registered on the monitoring connections only.
"""

from __future__ import annotations

from psycopg import AsyncConnection, postgres
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format

__all__ = ["TEXT_TYPES", "TolerantTextBinaryLoader", "TolerantTextLoader", "use_tolerant_text"]

#: the string types whose values may carry undecodable bytes (pg_stat_activity uses text and name)
TEXT_TYPES = ("text", "name", "varchar", "bpchar")


class TolerantTextLoader(Loader):
    """Text-format loader: the connection's encoding (UTF-8 for SQL_ASCII), undecodable bytes replaced."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        encoding = self.connection.info.encoding if self.connection is not None else "utf-8"
        # SQL_ASCII promises nothing; UTF-8 is what such databases hold most often in practice
        self._encoding = "utf-8" if encoding == "ascii" else encoding

    def load(self, data: Buffer) -> str:
        """DATA decoded; each byte the encoding rejects becomes U+FFFD."""
        try:
            return str(data, self._encoding)
        except UnicodeDecodeError:
            return str(data, self._encoding, "replace")


class TolerantTextBinaryLoader(TolerantTextLoader):
    """The binary-format twin (a text value's binary form is its bytes too)."""

    format = Format.BINARY


def use_tolerant_text(conn: AsyncConnection[tuple[object, ...]]) -> None:
    """Make CONN load every string type with the tolerant loaders (its own adapters map only)."""
    for name in TEXT_TYPES:
        oid = postgres.types[name].oid
        conn.adapters.register_loader(oid, TolerantTextLoader)
        conn.adapters.register_loader(oid, TolerantTextBinaryLoader)
