"""Quoting for the commands a fix hint suggests, so pasting one never runs more than it says.

A role named `bob; DROP DATABASE demo; --` must appear in `REVOKE rds_iam FROM …` as one identifier, and a
profile named `it's prod` in `aws sso login --profile …` as one shell word. SQL identifiers are rendered by
psycopg.sql.Identifier (PostgreSQL's double-quote rules: embedded quotes doubled); shell words by
shlex.quote (POSIX single quotes, only when needed).
"""

from __future__ import annotations

import shlex

__all__ = ["shell_word", "sql_ident"]


def sql_ident(name: str) -> str:
    """NAME as a PostgreSQL identifier in a suggested SQL command: always double-quoted, as psycopg renders
    it (a plain name stays readable; a hostile one stays one identifier)."""
    from psycopg import sql  # imported on use: psycopg is slow to import and most runs print no fix

    return sql.Identifier(name).as_string(None)


def shell_word(value: str) -> str:
    """VALUE as one POSIX shell word in a suggested command line."""
    return shlex.quote(value)
