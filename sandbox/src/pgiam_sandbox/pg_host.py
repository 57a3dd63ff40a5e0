"""Where and as whom the sandbox's PostgreSQL runs on this host.

Finding the binaries (PGIAM_PG_BINDIR, pg_config, /usr/lib/postgresql/*/bin, the pgserver wheel), the
unprivileged account PostgreSQL runs as when we are root, where data directories go (in memory when
possible, else somewhere that account can reach), the configuration files every sandbox server gets, and
reaping what a crashed sandbox left behind.
postgres.py (LocalPostgres) builds on these; other modules should use postgres.py's re-exports.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pgiam_sandbox.errors import SandboxError

SANDBOX_SYSTEM_USER = "pgiam-sandbox"
_NO_BINARIES = "no PostgreSQL binaries found: set PGIAM_PG_BINDIR or install postgresql"
_REQUIRED_PROGRAMS = ("initdb", "postgres")
SYSTEM_PG_ROOT = Path("/usr/lib/postgresql")  # Debian/Ubuntu layout: <root>/<version>/bin


# --------------------------------------------------------------------------------------------- binaries


def _has_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_PROGRAMS)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: newest version first, numerically (10 > 9.6).
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts)


def pgserver_bindir() -> Path | None:
    # find_spec does not import pgserver (importing it starts machinery we don't want).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def find_pg_bindir(explicit: str | None = None) -> Path:
    """Return the directory holding ``initdb`` and ``postgres``.

    Order: ``explicit`` (e.g. ``--pg-bindir``), ``$PGIAM_PG_BINDIR``, ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin``, the pgserver wheel's ``pginstall/bin``. An explicit or environment
    directory without the programs is an error (naming it) rather than silently falling through.
    Raises SandboxError when nothing is found.
    """
    for label, given in (("--pg-bindir", explicit), ("PGIAM_PG_BINDIR", os.environ.get("PGIAM_PG_BINDIR"))):
        if given:
            path = Path(given).expanduser()
            if not _has_programs(path):
                raise SandboxError(f"{label} {given!r} has no PostgreSQL server programs (initdb, postgres)")
            return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _has_programs(Path(out)):
                return Path(out)
    candidates = sorted(SYSTEM_PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_programs(candidate):
            return candidate
    wheel = pgserver_bindir()
    if wheel is not None and _has_programs(wheel):
        return wheel
    raise SandboxError(_NO_BINARIES)


@functools.cache
def server_version(bindir: Path) -> tuple[int, int]:
    """(major, minor) of ``bindir/postgres``, e.g. (15, 18)."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"cannot run {bindir / 'postgres'}: {exc}") from None
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if match is None:
        raise SandboxError(f"cannot read the version of {bindir / 'postgres'}: {out.strip()[:80]}")
    return int(match.group(1)), int(match.group(2) or 0)


def _pg_config_value(bindir: Path, option: str) -> Path | None:
    tool = bindir / "pg_config"
    if not os.access(tool, os.X_OK):
        return None
    try:
        out = subprocess.run([str(tool), option], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return Path(value) if value else None


@functools.cache
def has_pg_stat_statements(bindir: Path) -> bool:
    """True when the extension's control file and library both ship with these binaries."""
    major = server_version(bindir)[0]
    share_dirs = [
        _pg_config_value(bindir, "--sharedir"),
        bindir.parent / "share" / "postgresql",
        bindir.parent / "share",
        Path(f"/usr/share/postgresql/{major}"),
    ]
    lib_dirs = [
        _pg_config_value(bindir, "--pkglibdir"),
        bindir.parent / "lib" / "postgresql",
        bindir.parent / "lib",
    ]
    control = any(
        d is not None and (d / "extension" / "pg_stat_statements.control").is_file() for d in share_dirs
    )
    library = any(d is not None and (d / "pg_stat_statements.so").is_file() for d in lib_dirs)
    return control and library


# ------------------------------------------------------------------------------------ unprivileged user


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account PostgreSQL runs as when this process is root."""

    name: str
    uid: int
    gid: int


_user_lock = threading.Lock()


def _nologin_shell() -> str:
    for shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"):
        if os.path.exists(shell):
            return shell
    return "/bin/false"


@functools.cache
def _system_user() -> RunAs:
    with _user_lock:
        try:
            entry = pwd.getpwnam(SANDBOX_SYSTEM_USER)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [
                        useradd,
                        "--system",
                        "--user-group",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        _nologin_shell(),
                        SANDBOX_SYSTEM_USER,
                    ],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            try:
                # Another process may have won the race: look again either way.
                entry = pwd.getpwnam(SANDBOX_SYSTEM_USER)
            except KeyError:
                try:
                    entry = pwd.getpwnam("nobody")
                except KeyError:
                    raise SandboxError(
                        f"running as root and cannot create the unprivileged user {SANDBOX_SYSTEM_USER!r} "
                        "(and there is no 'nobody'): PostgreSQL refuses to run as root"
                    ) from None
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def run_as() -> RunAs | None:
    """The account PostgreSQL programs run as: None (this process's own) unless this process is root."""
    if os.geteuid() != 0:
        return None
    return _system_user()


def _supplementary_gids(user: RunAs) -> set[int]:
    gids = {user.gid}
    with contextlib.suppress(KeyError):
        gids.update(g.gr_gid for g in grp.getgrall() if user.name in g.gr_mem)
    return gids


def traversable_by(path: Path, user: RunAs) -> bool:
    """True when ``user`` can search every directory from / down to ``path`` (which must exist)."""
    gids = _supplementary_gids(user)
    current = path.resolve()
    for directory in (current, *current.parents):
        st = directory.stat()
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


def public_tmp_base() -> Path:
    """A world-searchable temp directory (sticky /tmp), for data the unprivileged user must reach."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate)
        with contextlib.suppress(OSError):
            st = path.stat()
            if path.is_dir() and st.st_mode & stat.S_IXOTH and st.st_mode & stat.S_IWOTH:
                return path
    raise SandboxError("no world-writable temp directory for the unprivileged PostgreSQL user")


def child_env() -> dict[str, str]:
    # A small, predictable environment: C locale, UTC, no PG* variables leaking in from the caller.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
        "TZ": "UTC",
        "HOME": "/",
    }


def user_kwargs(user: RunAs | None) -> dict[str, object]:
    if user is None:
        return {}
    # Popen's user/group/extra_groups switch identity in the child without a preexec_fn (thread-safe).
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_OWNER_FILE = "pgiam-owner"  # in each pgiam-pg-* dir: "<pid> <start time>" of the process that made it


def _owner_stamp(pid: int) -> str:
    """``pid`` plus its start time (clock ticks after boot): a pid alone may have been reused."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid} ?"
    return f"{pid} {stat_line.rsplit(')', 1)[1].split()[19]}"


def reap_orphans() -> list[Path]:
    """Stop the servers and remove the data of sandboxes whose process died without cleaning up.

    Only ``pgiam-pg-*`` directories (in /dev/shm or the public temp dir) whose owner file names a process
    that no longer exists are touched; a server in one is stopped by the pid in its postmaster.pid, after
    checking that this pid really is a postgres serving that directory. Returns the directories removed.
    Called before each new template, so a crashed run (kill -9, CI timeout) does not hold memory for long.
    """
    removed: list[Path] = []
    roots = {p for p in (memory_base(), public_tmp_base()) if p is not None}
    for root in roots:
        for base in root.glob("pgiam-pg-*"):
            try:
                owner = (base / _OWNER_FILE).read_text(encoding="ascii").strip()
            except OSError:
                continue  # not ours, or being made right now
            pid_text = owner.split()[0]
            if not pid_text.isdigit() or _owner_stamp(int(pid_text)) == owner:
                continue  # the owner is alive
            for data_dir in (d for d in base.iterdir() if d.is_dir()):
                _stop_orphan(data_dir)
            shutil.rmtree(base, ignore_errors=True)
            removed.append(base)
    return removed


def _stop_orphan(data_dir: Path) -> None:
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return
    if str(data_dir).encode() not in cmdline or not cmdline[0].endswith(b"postgres"):
        return  # the pid now belongs to something else
    segments = posix_shm_segments(pid)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    for _ in range(100):
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        for segment in segments:
            with contextlib.suppress(OSError):
                segment.unlink()


def check_reachable(bindir: Path, user: RunAs | None) -> None:
    """Fail clearly when the unprivileged server user cannot even reach the binaries (e.g. under /root)."""
    if user is not None and not traversable_by(bindir, user):
        raise SandboxError(
            f"PostgreSQL binaries in {bindir} are not reachable by {user.name!r}, the unprivileged user the "
            "server must run as: set PGIAM_PG_BINDIR to binaries outside private directories"
        )


def posix_shm_segments(pid: int) -> list[Path]:
    """The /dev/shm/PostgreSQL.* files a postmaster has mapped (its dynamic shared memory)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    found = {line.split()[-1] for line in maps.splitlines() if "/dev/shm/PostgreSQL." in line}
    return [Path(p) for p in sorted(found) if p.startswith("/dev/shm/PostgreSQL.")]


def memory_base() -> Path | None:
    """/dev/shm when it is a roomy, world-writable tmpfs, unless PGIAM_SANDBOX_PG_ON_DISK is set.

    Sandbox data is throw-away, and on a busy 2-core box copying seven ~40 MB data directories to disk took
    6-16 s (page-cache writeback contention) against ~1 s in memory; initdb gains too. About 40 MB per server.
    """
    if os.environ.get("PGIAM_SANDBOX_PG_ON_DISK"):
        return None
    shm = Path("/dev/shm")
    try:
        mounts = Path("/proc/self/mounts").read_text()
        st = shm.stat()
        vfs = os.statvfs(shm)
    except OSError:
        return None
    is_tmpfs = any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts.splitlines() if line.strip())
    public = bool(st.st_mode & stat.S_ISVTX and st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH)
    roomy = vfs.f_bavail * vfs.f_frsize >= 1 << 30
    return shm if is_tmpfs and public and roomy else None


def place_data_dir(requested: Path, user: RunAs | None) -> tuple[Path, Path | None]:
    """Make an empty directory for a data dir; return (real path, temp base to remove later or None).

    The data goes to a fresh ``pgiam-pg-*`` directory in memory (see :func:`memory_base`), or else at
    ``requested`` itself when the server's user can reach it, or else under a public temp dir; in the first
    and last case ``requested`` becomes a symlink to it. Replaces whatever was at ``requested`` (a previous
    run's data or symlink), refusing to touch a directory that a live postmaster still uses.
    """
    requested = Path(requested).absolute()
    _remove_previous(requested)
    requested.parent.mkdir(parents=True, exist_ok=True)
    base_dir = memory_base()
    if base_dir is None:
        if user is None or traversable_by(requested.parent, user):
            requested.mkdir(mode=0o700)
            if user is not None:
                os.chown(requested, user.uid, user.gid)
            return requested, None
        base_dir = public_tmp_base()
    base = Path(tempfile.mkdtemp(prefix="pgiam-pg-", dir=base_dir))
    (base / _OWNER_FILE).write_text(_owner_stamp(os.getpid()) + "\n", encoding="ascii")
    if user is not None:
        os.chown(base, user.uid, user.gid)
    os.chmod(base, 0o700)
    real = base / requested.name
    real.mkdir(mode=0o700)
    if user is not None:
        os.chown(real, user.uid, user.gid)
    requested.symlink_to(real, target_is_directory=True)
    return real, base


def _remove_previous(requested: Path) -> None:
    if requested.is_symlink():
        target = Path(os.readlink(requested))
        refuse_live(target)
        requested.unlink()
        # Only ever delete a target we made ourselves (pgiam-pg-* under a temp dir).
        if target.parent.name.startswith("pgiam-pg-"):
            shutil.rmtree(target.parent, ignore_errors=True)
    elif requested.exists():
        refuse_live(requested)
        shutil.rmtree(requested)


def refuse_live(data_dir: Path) -> None:
    with contextlib.suppress(OSError, IndexError):
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0].strip()
        if first.isdigit() and pid_alive(int(first)):
            raise SandboxError(
                f"a PostgreSQL server is still running in {data_dir} (pid {first}), left by an earlier "
                "sandbox in this directory: stop it or use another directory"
            )


def remove_data_dir(requested: Path, owned_base: Path | None) -> None:
    with contextlib.suppress(OSError):
        if requested.is_symlink():
            requested.unlink()
        elif owned_base is None and requested.exists():
            shutil.rmtree(requested, ignore_errors=True)
    if owned_base is not None:
        shutil.rmtree(owned_base, ignore_errors=True)


def write_config(data_dir: Path, bindir: Path) -> None:
    """Settings shared by every server cloned from this template (postgresql.conf + pg_hba.conf)."""
    major = server_version(bindir)[0]
    settings = [
        "# --- pgiam-tui sandbox ---",
        "listen_addresses = '127.0.0.1'",
        "max_connections = 60",
        "shared_buffers = 16MB",
        "password_encryption = 'scram-sha-256'",
        # Durability is pointless for throw-away sandbox data, and fsync on a shared 2-core box makes
        # start-up, seeding and checkpoints slow: a crash only loses data we would delete anyway.
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "wal_level = minimal",
        "max_wal_senders = 0",
        "min_wal_size = 4MB",
        "max_wal_size = 32MB",  # bounds the WAL each (possibly in-memory) server keeps
        "checkpoint_timeout = 30min",
        "jit = off",
        "huge_pages = off",
        # RDS-like logging: what the console's event pane parses.
        "logging_collector = off",
        "log_destination = 'stderr'",
        "log_connections = on",
        "log_disconnections = on",
        "log_line_prefix = '%t:%r:%u@%d:[%p]:'",
        "log_timezone = 'UTC'",
        "timezone = 'UTC'",
        "track_activity_query_size = 4096",
    ]
    if major >= 14:
        settings.append("compute_query_id = on")
    if has_pg_stat_statements(bindir):
        settings.append("shared_preload_libraries = 'pg_stat_statements'")
        settings.append("pg_stat_statements.track = 'all'")
    settings.append("include_if_exists = 'pgiam_instance.conf'")
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as fh:
        fh.write("\n" + "\n".join(settings) + "\n")
    hba = (
        "# pgiam-tui sandbox: the front doors come in over the 0700 unix socket directory (trust);\n"
        "# anything over TCP loopback must know a password (scram-sha-256).\n"
        "local   all   all                  trust\n"
        "host    all   all   127.0.0.1/32   scram-sha-256\n"
    )
    (data_dir / "pg_hba.conf").write_text(hba, encoding="utf-8")


def write_instance_config(
    data_dir: Path,
    port: int,
    socket_dir: Path,
    read_only: bool,
    user: RunAs | None,
    max_connections: int | None = None,
) -> None:
    lines = [
        "# written by pgiam_sandbox.postgres on every start",
        f"port = {int(port)}",
        "unix_socket_directories = '{}'".format(str(socket_dir).replace("'", "''")),
    ]
    if max_connections is not None:  # a fleet sandbox holding many idle sessions (--sessions)
        lines.append(f"max_connections = {int(max_connections)}")
    if read_only:
        # An Aurora reader: the sandbox clones the writer's template instead of replicating, so the best
        # stand-in for "read-only replica" is a server where every transaction is read-only by default.
        lines.append("default_transaction_read_only = on")
    path = data_dir / "pgiam_instance.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if user is not None:
        os.chown(path, user.uid, user.gid)
