"""Real PostgreSQL servers for the sandbox: find binaries, make a seeded template, clone it, start and stop.

The sandbox runs about seven servers (3 Aurora clusters x writer + reader, plus one RDS for PostgreSQL
instance). initdb + seed once into a template data directory, then copy it per server: a copy takes a
fraction of a second, initdb several seconds.

PostgreSQL refuses to run as root, so when this process is root every PostgreSQL program runs as an
unprivileged system user (``pgiam-sandbox``, created with useradd when missing, else ``nobody``), and data
directories are placed where that user can reach them. Data lives in memory (/dev/shm) when it can: it is
throw-away, and copies to a busy disk were the slowest part of sandbox start-up.

Typical use (what sandbox/core.py does)::

    bindir = find_pg_bindir(explicit)
    template = LocalPostgres.init_template(root / "pg" / "_template", bindir=bindir)
    writer = LocalPostgres.clone(template, root / "pg" / "pgdemo-1-writer")
    reader = LocalPostgres.clone(template, root / "pg" / "pgdemo-1-reader", read_only=True)
    writer.start(); reader.start()
    ... writer.admin_dsn, writer.socket_dir, writer.port, writer.pid ...
    writer.stop(); writer.start()          # same port, same data
    writer.cleanup(); reader.cleanup(); template.cleanup()   # stop + remove what was made outside root
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
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pgiam_tui.sandbox.errors import SandboxError

ADMIN_USER = "sandbox_admin"
ADMIN_PASSWORD = "sandbox-admin"  # public on purpose: a local sandbox; TCP loopback requires scram
DEMO_DATABASE = "demo"
SANDBOX_SYSTEM_USER = "pgiam-sandbox"

_NO_BINARIES = "no PostgreSQL binaries found: set PGIAM_PG_BINDIR or install postgresql"
_REQUIRED_PROGRAMS = ("initdb", "postgres")
_SYSTEM_PG_ROOT = Path("/usr/lib/postgresql")  # Debian/Ubuntu layout: <root>/<version>/bin
# Unix socket paths are limited to 107 bytes (sun_path); ".s.PGSQL.65535" needs 15 of them.
_MAX_SOCKET_DIR_LEN = 90


# --------------------------------------------------------------------------------------------- binaries


def _has_programs(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_PROGRAMS)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: newest version first, numerically (10 > 9.6).
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts)


def _pgserver_bindir() -> Path | None:
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
    candidates = sorted(_SYSTEM_PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_programs(candidate):
            return candidate
    wheel = _pgserver_bindir()
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


def _traversable_by(path: Path, user: RunAs) -> bool:
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


def _chown_tree(path: Path, user: RunAs) -> None:
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), user.uid, user.gid, follow_symlinks=False)


def _public_tmp_base() -> Path:
    """A world-searchable temp directory (sticky /tmp), for data the unprivileged user must reach."""
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
        path = Path(candidate)
        with contextlib.suppress(OSError):
            st = path.stat()
            if path.is_dir() and st.st_mode & stat.S_IXOTH and st.st_mode & stat.S_IWOTH:
                return path
    raise SandboxError("no world-writable temp directory for the unprivileged PostgreSQL user")


def _child_env() -> dict[str, str]:
    # A small, predictable environment: C locale, UTC, no PG* variables leaking in from the caller.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LC_ALL": "C",
        "TZ": "UTC",
        "HOME": "/",
    }


def _user_kwargs(user: RunAs | None) -> dict[str, object]:
    if user is None:
        return {}
    # Popen's user/group/extra_groups switch identity in the child without a preexec_fn (thread-safe).
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


# ------------------------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _last_meaningful_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if any(tag in line for tag in ("FATAL", "PANIC", "ERROR", "error", "could not")):
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


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


def _seed_sql() -> str:
    return resources.files("pgiam_tui.sandbox").joinpath("seed.sql").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------- server


class LocalPostgres:
    """One real PostgreSQL server with its data directory.

    Build with :meth:`init_template` (initdb + seed, left stopped) and :meth:`clone` (copy of a template);
    ``LocalPostgres(data_dir, bindir=...)`` wraps an existing data directory. :meth:`start` picks a free
    loopback port on first start and reuses it afterwards, so a restarted server has the same address.

    Attributes and properties: ``data_dir`` (the real directory, possibly outside the requested path, see
    below), ``requested_dir``, ``bindir``, ``read_only``, ``port`` (None before the first start), ``pid``
    (postmaster pid while running), ``socket_dir``, ``admin_dsn``, ``is_running``, ``log_file``.

    Where the data really lives: in a fresh ``/dev/shm/pgiam-pg-*`` directory when /dev/shm is a roomy
    tmpfs (set PGIAM_SANDBOX_PG_ON_DISK=1 to opt out); else at the requested path if the server's user can
    reach it (when root, PostgreSQL runs as an unprivileged user, which cannot enter /root/... or pytest's
    0700 temp root); else in a fresh ``/tmp/pgiam-pg-*``. Outside the requested path, the requested path
    becomes a symlink to the real directory and :meth:`cleanup` removes both.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        bindir: Path | None = None,
        read_only: bool = False,
        port: int | None = None,
        requested_dir: Path | None = None,
        owned_base: Path | None = None,
    ) -> None:
        """Wrap an existing (initialised) data directory; nothing runs until :meth:`start`.

        ``read_only`` sets ``default_transaction_read_only = on`` (Aurora reader instances: the sandbox
        clones rather than replicates, so a reader has the template's data, not the writer's later writes).
        ``port`` fixes the TCP port (else a free one is picked on first start).
        """
        self.bindir = bindir if bindir is not None else find_pg_bindir()
        self.data_dir = Path(data_dir)
        self.requested_dir = Path(requested_dir) if requested_dir is not None else self.data_dir
        self.read_only = read_only
        self.port: int | None = port
        self._auto_port = port is None
        self._owned_base = owned_base  # pgiam-pg-* dir (/dev/shm or /tmp) with the data; cleanup() removes it
        self._socket_tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._user = run_as()
        self.socket_dir = self._choose_socket_dir()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"LocalPostgres({str(self.data_dir)!r}, port={self.port}, {state})"

    # ---------------------------------------------------------------- construction

    @classmethod
    def init_template(cls, template_dir: Path, *, bindir: Path | None = None) -> LocalPostgres:
        """initdb into ``template_dir``, configure, start, load seed.sql, stop; return the stopped server.

        An existing ``template_dir`` is replaced. Takes a few seconds (initdb dominates).
        """
        bindir = bindir if bindir is not None else find_pg_bindir()
        user = run_as()
        _check_reachable(bindir, user)
        reap_orphans()
        real_dir, owned_base = _place_data_dir(Path(template_dir), user)
        cmd = [
            str(bindir / "initdb"),
            "-D",
            str(real_dir),
            "-U",
            ADMIN_USER,
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
                env=_child_env(),
                check=False,
                **_user_kwargs(user),  # type: ignore[call-overload]
            )
        except (OSError, subprocess.SubprocessError) as exc:
            _remove_dir(Path(template_dir), owned_base)
            raise SandboxError(f"initdb could not run: {exc}") from None
        if done.returncode != 0:
            _remove_dir(Path(template_dir), owned_base)
            raise SandboxError(f"initdb failed in {template_dir}: {_last_meaningful_line(done.stderr)}")
        _write_config(real_dir, bindir)
        server = cls(real_dir, bindir=bindir, requested_dir=Path(template_dir), owned_base=owned_base)
        try:
            server.start()
            server.run_sql_script(_seed_sql())
        except BaseException:
            server.cleanup()
            raise
        server.stop()
        # The template never serves: forget the port so clones (and a later start) pick their own.
        server.port = None
        server._auto_port = True
        return server

    @classmethod
    def clone(
        cls,
        template: LocalPostgres | Path,
        new_dir: Path,
        *,
        read_only: bool = False,
        port: int | None = None,
        bindir: Path | None = None,
    ) -> LocalPostgres:
        """Copy a stopped template data directory to ``new_dir`` (replacing it) and return it, stopped."""
        if isinstance(template, LocalPostgres):
            if template.is_running:
                raise SandboxError(f"template {template.data_dir} is running; stop it before cloning")
            source = template.data_dir
            bindir = bindir if bindir is not None else template.bindir
        else:
            source = Path(template).resolve()
            bindir = bindir if bindir is not None else find_pg_bindir()
        if not (source / "PG_VERSION").is_file():
            raise SandboxError(f"{source} is not a PostgreSQL data directory")
        user = run_as()
        new_dir = Path(new_dir)
        real_dir, owned_base = _place_data_dir(new_dir, user)
        real_dir.rmdir()  # cp -a creates it; _place_data_dir left it empty
        try:
            # cp -a keeps modes and (as root) ownership; it is also quicker than shutil.copytree.
            done = subprocess.run(
                ["cp", "-a", "--", str(source), str(real_dir)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            _remove_dir(new_dir, owned_base)
            raise SandboxError(f"cannot copy {source} to {real_dir}: {exc}") from None
        if done.returncode != 0:
            _remove_dir(new_dir, owned_base)
            raise SandboxError(f"cannot copy {source} to {real_dir}: {_last_meaningful_line(done.stderr)}")
        for stale in ("postmaster.pid", "postmaster.opts", "server.log"):
            with contextlib.suppress(FileNotFoundError):
                (real_dir / stale).unlink()
        return cls(
            real_dir,
            bindir=bindir,
            read_only=read_only,
            port=port,
            requested_dir=new_dir,
            owned_base=owned_base,
        )

    # ---------------------------------------------------------------- properties

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this object's server runs, else None."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None
        return proc.pid

    @property
    def is_running(self) -> bool:
        """True while the postmaster this object started is alive."""
        return self.pid is not None

    @property
    def log_file(self) -> Path:
        """The server's own log (stderr; log_connections etc. with the RDS line prefix)."""
        return self.data_dir / "server.log"

    @property
    def admin_dsn(self) -> str:
        """libpq conninfo for the superuser over the unix socket (trust), database demo.

        On a read-only (reader) server the DSN turns ``default_transaction_read_only`` off for the session:
        the sandbox emulates Aurora's shared catalog by running admin SQL on every instance.
        """
        return self.dsn(DEMO_DATABASE)

    def dsn(self, dbname: str = DEMO_DATABASE, user: str = ADMIN_USER) -> str:
        """Unix-socket conninfo for ``user`` on ``dbname`` (trust: no password)."""
        if self.port is None:
            raise SandboxError(f"PostgreSQL in {self.data_dir} has not been started")
        parts = {"host": str(self.socket_dir), "port": str(self.port), "dbname": dbname, "user": user}
        if self.read_only and user == ADMIN_USER:
            parts["options"] = "-c default_transaction_read_only=off"
        return _make_conninfo(parts)

    def tcp_dsn(
        self, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD, dbname: str = DEMO_DATABASE
    ) -> str:
        """Loopback TCP conninfo (scram-sha-256) — the "direct" path for benchmarks."""
        if self.port is None:
            raise SandboxError(f"PostgreSQL in {self.data_dir} has not been started")
        return _make_conninfo(
            {
                "host": "127.0.0.1",
                "port": str(self.port),
                "dbname": dbname,
                "user": user,
                "password": password,
            }
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once it accepts connections; SandboxError (one line) otherwise."""
        with self._lock:
            if self.is_running:
                return
            self._refuse_foreign_postmaster()
            attempts = 3 if self._auto_port else 1
            for attempt in range(attempts):
                if self.port is None or (self._auto_port and attempt > 0):
                    self.port = free_port()
                try:
                    self._start_once(timeout)
                    return
                except _PortTaken:
                    if attempt == attempts - 1:
                        raise SandboxError(
                            f"PostgreSQL in {self.data_dir} cannot listen on 127.0.0.1:{self.port}: "
                            "address already in use"
                        ) from None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT, like ``pg_ctl stop -m fast``) of the pid it holds; SIGKILL if it lingers."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    segments = _posix_shm_segments(proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(10)
                    # A killed postmaster cannot remove its dynamic shared memory (/dev/shm/PostgreSQL.*).
                    for segment in segments:
                        with contextlib.suppress(OSError):
                            segment.unlink()
            self._proc = None
            # After a SIGKILL postgres cannot remove these; a later start must not trip over them.
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / "postmaster.pid").unlink()
            if self.port is not None:
                for leftover in (f".s.PGSQL.{self.port}", f".s.PGSQL.{self.port}.lock"):
                    with contextlib.suppress(FileNotFoundError):
                        (self.socket_dir / leftover).unlink()

    def restart(self) -> None:
        """stop() then start() on the same port."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """stop(), then remove what was created outside the requested path (relocated data, socket dir).

        A data directory inside the requested path is left to its owner (the sandbox root).
        """
        self.stop()
        if self._socket_tmp is not None:
            shutil.rmtree(self._socket_tmp, ignore_errors=True)
            self._socket_tmp = None
        if self._owned_base is not None:
            _remove_dir(self.requested_dir, self._owned_base)
            self._owned_base = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- SQL

    def run_sql_script(self, script: str, dbname: str = "postgres") -> None:
        """Run a psql-style script (see :func:`seed_statements`) as the superuser, autocommit."""
        import psycopg  # heavy; only the sandbox needs it here

        current = dbname
        conn = psycopg.connect(self.dsn(current), autocommit=True)
        try:
            for database, statement in seed_statements(script):
                if database is not None and database != current:
                    conn.close()
                    current = database
                    conn = psycopg.connect(self.dsn(current), autocommit=True)
                try:
                    conn.execute(statement.encode())
                except psycopg.Error as exc:
                    first = statement.strip().splitlines()[0][:80]
                    raise SandboxError(
                        f"seed SQL failed at {first!r}: {str(exc).strip().splitlines()[0]}"
                    ) from None
        finally:
            conn.close()

    # ---------------------------------------------------------------- internals

    def _choose_socket_dir(self) -> Path:
        # The data dir itself is 0700 and owned by the server's user: a private socket dir for free.
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN:
            return self.data_dir
        self._socket_tmp = Path(tempfile.mkdtemp(prefix="pgiam-sock-", dir=_public_tmp_base()))
        if self._user is not None:
            os.chown(self._socket_tmp, self._user.uid, self._user.gid)
        return self._socket_tmp

    def _refuse_foreign_postmaster(self) -> None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0].strip()
        except (FileNotFoundError, IndexError):
            return
        if first.isdigit() and _pid_alive(int(first)):
            raise SandboxError(
                f"a PostgreSQL server is already running in {self.data_dir} (pid {first}): "
                "stop it or use another directory"
            )
        pidfile.unlink(missing_ok=True)

    def _start_once(self, timeout: float) -> None:
        assert self.port is not None
        _write_instance_config(self.data_dir, self.port, self.socket_dir, self.read_only, self._user)
        log = self.log_file
        # Opened here (as root if root) and handed over: the server appends its stderr to it.
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        if self._user is not None:
            os.fchown(log_fd, self._user.uid, self._user.gid)
        start_offset = os.fstat(log_fd).st_size
        try:
            self._proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd="/",
                env=_child_env(),
                start_new_session=True,  # a terminal's Ctrl-C goes to the sandbox, which stops us in order
                **_user_kwargs(self._user),
            )
        except OSError as exc:
            raise SandboxError(f"cannot run {self.bindir / 'postgres'}: {exc}") from None
        finally:
            os.close(log_fd)
        self._wait_ready(timeout, start_offset)

    def _wait_ready(self, timeout: float, log_offset: int) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        pidfile = self.data_dir / "postmaster.pid"
        delay = 0.01
        while True:
            if proc.poll() is not None:
                self._proc = None
                tail = _read_from(self.log_file, log_offset)
                if "could not bind" in tail or "Address already in use" in tail:
                    raise _PortTaken()
                raise SandboxError(
                    f"PostgreSQL in {self.data_dir} did not start: {_last_meaningful_line(tail)}"
                )
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                # Line 8 of postmaster.pid is the postmaster's status ("ready" once it accepts connections).
                if len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready":
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise SandboxError(
                    f"PostgreSQL in {self.data_dir} did not accept connections in {timeout:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)


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
    roots = {p for p in (_memory_base(), _public_tmp_base()) if p is not None}
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
    segments = _posix_shm_segments(pid)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    for _ in range(100):
        if not _pid_alive(pid):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        for segment in segments:
            with contextlib.suppress(OSError):
                segment.unlink()


def _check_reachable(bindir: Path, user: RunAs | None) -> None:
    """Fail clearly when the unprivileged server user cannot even reach the binaries (e.g. under /root)."""
    if user is not None and not _traversable_by(bindir, user):
        raise SandboxError(
            f"PostgreSQL binaries in {bindir} are not reachable by {user.name!r}, the unprivileged user the "
            "server must run as: set PGIAM_PG_BINDIR to binaries outside private directories"
        )


def _posix_shm_segments(pid: int) -> list[Path]:
    """The /dev/shm/PostgreSQL.* files a postmaster has mapped (its dynamic shared memory)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    found = {line.split()[-1] for line in maps.splitlines() if "/dev/shm/PostgreSQL." in line}
    return [Path(p) for p in sorted(found) if p.startswith("/dev/shm/PostgreSQL.")]


class _PortTaken(Exception):
    """The picked port was taken between choosing and binding (retry with another one)."""


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _make_conninfo(parts: dict[str, str]) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(**parts)


def _memory_base() -> Path | None:
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


def _place_data_dir(requested: Path, user: RunAs | None) -> tuple[Path, Path | None]:
    """Make an empty directory for a data dir; return (real path, temp base to remove later or None).

    The data goes to a fresh ``pgiam-pg-*`` directory in memory (see :func:`_memory_base`), or else at
    ``requested`` itself when the server's user can reach it, or else under a public temp dir; in the first
    and last case ``requested`` becomes a symlink to it. Replaces whatever was at ``requested`` (a previous
    run's data or symlink), refusing to touch a directory that a live postmaster still uses.
    """
    requested = Path(requested).absolute()
    _remove_previous(requested)
    requested.parent.mkdir(parents=True, exist_ok=True)
    base_dir = _memory_base()
    if base_dir is None:
        if user is None or _traversable_by(requested.parent, user):
            requested.mkdir(mode=0o700)
            if user is not None:
                os.chown(requested, user.uid, user.gid)
            return requested, None
        base_dir = _public_tmp_base()
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
        _refuse_live(target)
        requested.unlink()
        # Only ever delete a target we made ourselves (pgiam-pg-* under a temp dir).
        if target.parent.name.startswith("pgiam-pg-"):
            shutil.rmtree(target.parent, ignore_errors=True)
    elif requested.exists():
        _refuse_live(requested)
        shutil.rmtree(requested)


def _refuse_live(data_dir: Path) -> None:
    with contextlib.suppress(OSError, IndexError):
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0].strip()
        if first.isdigit() and _pid_alive(int(first)):
            raise SandboxError(
                f"a PostgreSQL server is still running in {data_dir} (pid {first}), left by an earlier "
                "sandbox in this directory: stop it or use another directory"
            )


def _remove_dir(requested: Path, owned_base: Path | None) -> None:
    with contextlib.suppress(OSError):
        if requested.is_symlink():
            requested.unlink()
        elif owned_base is None and requested.exists():
            shutil.rmtree(requested, ignore_errors=True)
    if owned_base is not None:
        shutil.rmtree(owned_base, ignore_errors=True)


def _write_config(data_dir: Path, bindir: Path) -> None:
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


def _write_instance_config(
    data_dir: Path, port: int, socket_dir: Path, read_only: bool, user: RunAs | None
) -> None:
    lines = [
        "# written by pgiam_tui.sandbox.postgres on every start",
        f"port = {int(port)}",
        "unix_socket_directories = '{}'".format(str(socket_dir).replace("'", "''")),
    ]
    if read_only:
        # An Aurora reader: the sandbox clones the writer's template instead of replicating, so the best
        # stand-in for "read-only replica" is a server where every transaction is read-only by default.
        lines.append("default_transaction_read_only = on")
    path = data_dir / "pgiam_instance.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if user is not None:
        os.chown(path, user.uid, user.gid)


__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "DEMO_DATABASE",
    "LocalPostgres",
    "RunAs",
    "find_pg_bindir",
    "free_port",
    "has_pg_stat_statements",
    "reap_orphans",
    "run_as",
    "seed_statements",
    "server_version",
]
