"""Making PostgreSQL data directories for the sandbox: initdb a template, seed it, copy it per server.

LocalPostgres (postgres.py) runs servers; this module only makes the directories they run from. initdb runs
once per sandbox (several seconds); every server is then a copy of the seeded template (a fraction of a
second). Everything runs as the unprivileged user of pg_host.run_as() when this process is root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.pg_host import (
    RunAs,
    child_env,
    place_data_dir,
    remove_data_dir,
    server_version,
    user_kwargs,
    write_config,
)

__all__ = [
    "copy_data_dir",
    "copy_stopped",
    "initdb",
    "last_meaningful_line",
    "run_sql_script",
    "seed_sql",
    "seed_statements",
]


def last_meaningful_line(text: str) -> str:
    """The line of a program's output saying what went wrong (the last error-ish one), <= 300 chars."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if any(tag in line for tag in ("FATAL", "PANIC", "ERROR", "error", "could not")):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def initdb(template_dir: Path, bindir: Path, user: RunAs | None, admin_user: str) -> tuple[Path, Path | None]:
    """initdb into a fresh directory for ``template_dir`` and write the sandbox's configuration.

    Returns (the real data directory, the owned base directory to remove on cleanup, or None); see
    pg_host.place_data_dir for where the data really lives. On failure nothing is left behind.
    """
    real_dir, owned_base = place_data_dir(template_dir, user)
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(real_dir),
        "-U",
        admin_user,
        "-E",
        "UTF8",
        "--locale=C",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
        # 1 MB WAL segments instead of 16: every clone copies pg_wal, so this halves the copy.
        "--wal-segsize=1",
    ]
    if server_version(bindir)[0] >= 14:
        cmd.append("--no-instructions")
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=300,
            cwd="/",
            env=child_env(),
            check=False,
            **user_kwargs(user),  # type: ignore[call-overload]
        )
    except (OSError, subprocess.SubprocessError) as exc:
        remove_data_dir(template_dir, owned_base)
        raise SandboxError(f"initdb could not run: {exc}") from None
    if done.returncode != 0:
        remove_data_dir(template_dir, owned_base)
        raise SandboxError(f"initdb failed in {template_dir}: {last_meaningful_line(done.stderr)}")
    write_config(real_dir, bindir)
    return real_dir, owned_base


def copy_data_dir(source: Path, new_dir: Path, user: RunAs | None) -> tuple[Path, Path | None]:
    """Copy a stopped server's data directory ``source`` to a fresh directory for ``new_dir``.

    Returns (real data directory, owned base or None) like :func:`initdb`; the copy has no postmaster.pid,
    postmaster.opts or server.log of the source. On failure nothing is left behind.
    """
    real_dir, owned_base = place_data_dir(new_dir, user)
    real_dir.rmdir()  # cp -a creates it; place_data_dir left it empty
    try:
        copy_stopped(source, real_dir)
    except SandboxError:
        remove_data_dir(new_dir, owned_base)
        raise
    return real_dir, owned_base


def copy_stopped(source: Path, dest: Path) -> None:
    """Copy the stopped server's data directory SOURCE to DEST (which must not exist yet), without the
    source's postmaster.pid, postmaster.opts and server.log; SandboxError (one line) when it cannot."""
    try:
        # cp -a keeps modes and (as root) ownership; it is also quicker than shutil.copytree.
        done = subprocess.run(
            ["cp", "-a", "--", str(source), str(dest)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"cannot copy {source} to {dest}: {exc}") from None
    if done.returncode != 0:
        raise SandboxError(f"cannot copy {source} to {dest}: {last_meaningful_line(done.stderr)}")
    for stale in ("postmaster.pid", "postmaster.opts", "server.log"):
        (dest / stale).unlink(missing_ok=True)


def seed_statements(text: str) -> list[tuple[str | None, str]]:
    """Split seed.sql into (database or None for the current one, statement) pairs.

    A statement ends with ``;`` at the end of a line outside a ``$$`` block; a ``\\connect DB`` line switches
    the database for the statements after it.
    """
    result: list[tuple[str | None, str]] = []
    database: str | None = None
    buffer: list[str] = []
    in_dollar = False
    for line in text.splitlines():
        stripped = line.strip()
        if not in_dollar and not buffer and stripped.startswith("\\connect"):
            database = stripped.split()[1]
            continue
        if not buffer and (not stripped or stripped.startswith("--")):
            continue
        buffer.append(line)
        if stripped.count("$$") % 2 == 1:
            in_dollar = not in_dollar
        if not in_dollar and stripped.endswith(";"):
            result.append((database, "\n".join(buffer)))
            buffer = []
    if buffer:
        result.append((database, "\n".join(buffer)))
    return result


def seed_sql() -> str:
    """The scenario's seed script (package data: sandbox/seed.sql)."""
    return resources.files("pgiam_sandbox").joinpath("seed.sql").read_text(encoding="utf-8")


def run_sql_script(dsn: Callable[[str], str], script: str, dbname: str = "postgres") -> None:
    """Run a psql-style script (see :func:`seed_statements`), autocommit, connecting with ``dsn(database)``.

    The script is the sandbox's own (trusted) SQL; a failing statement is a one-line SandboxError.
    """
    import psycopg  # heavy; only the sandbox needs it here

    current = dbname
    conn = psycopg.connect(dsn(current), autocommit=True)
    try:
        for database, statement in seed_statements(script):
            if database is not None and database != current:
                conn.close()
                current = database
                conn = psycopg.connect(dsn(current), autocommit=True)
            try:
                conn.execute(statement.encode())
            except psycopg.Error as exc:
                first = statement.strip().splitlines()[0][:80]
                raise SandboxError(
                    f"seed SQL failed at {first!r}: {str(exc).strip().splitlines()[0]}"
                ) from None
    finally:
        conn.close()
