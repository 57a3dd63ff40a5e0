"""Real PostgreSQL servers for the sandbox: find binaries, make a seeded template, clone it, start and stop.

The sandbox runs about seven servers (3 Aurora clusters x writer + reader, plus one RDS for PostgreSQL
instance). initdb + seed once into a template data directory, then copy it per server: a copy takes a
fraction of a second, initdb several seconds.

PostgreSQL refuses to run as root, so when this process is root every PostgreSQL program runs as an
unprivileged system user (``pgiam-sandbox``, created with useradd when missing, else ``nobody``), and data
directories are placed where that user can reach them. Data lives in memory (/dev/shm) when it can: it is
throw-away, and copies to a busy disk were the slowest part of sandbox start-up. Those host matters (binaries,
account, placement, configuration files, reaping a crashed run's leftovers) live in pg_host.py, making data
directories (initdb, seed, copy) in pg_datadir.py; the names other modules need are re-exported here.

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
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from pgiam_sandbox import template_cache
from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.pg_datadir import (
    copy_data_dir,
    initdb,
    last_meaningful_line,
    run_sql_script,
    seed_sql,
    seed_statements,
)
from pgiam_sandbox.pg_host import (
    SANDBOX_SYSTEM_USER,
    RunAs,
    check_reachable,
    child_env,
    find_pg_bindir,
    has_pg_stat_statements,
    pgserver_bindir,
    pid_alive,
    posix_shm_segments,
    public_tmp_base,
    reap_orphans,
    remove_data_dir,
    run_as,
    server_version,
    user_kwargs,
    write_instance_config,
)
from pgiam_sandbox.pg_process import clear_leftovers, processes_in

ADMIN_USER = "sandbox_admin"
ADMIN_PASSWORD = "sandbox-admin"  # public on purpose: a local sandbox; TCP loopback requires scram
DEMO_DATABASE = "demo"

# Unix socket paths are limited to 107 bytes (sun_path); ".s.PGSQL.65535" needs 15 of them.
_MAX_SOCKET_DIR_LEN = 90


# ------------------------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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
        self.max_connections: int | None = None  # None: the template's 60; set before start() to change
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

        An existing ``template_dir`` is replaced. Takes a few seconds (initdb dominates), or a copy of the
        same template an earlier run made (template_cache.py).
        """
        bindir = bindir if bindir is not None else find_pg_bindir()
        user = run_as()
        check_reachable(bindir, user)
        reap_orphans()
        cached = template_cache.lookup(bindir, user)
        if cached is not None:  # this very template, made by an earlier run: a copy instead of seconds
            with contextlib.suppress(SandboxError):
                return cls.clone(cached, Path(template_dir), bindir=bindir)
        real_dir, owned_base = initdb(Path(template_dir), bindir, user, ADMIN_USER)
        server = cls(real_dir, bindir=bindir, requested_dir=Path(template_dir), owned_base=owned_base)
        try:
            server.start()
            server.run_sql_script(seed_sql())
        except BaseException:
            server.cleanup()
            raise
        server.stop()
        template_cache.store(real_dir, bindir, user)
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
        new_dir = Path(new_dir)
        real_dir, owned_base = copy_data_dir(source, new_dir, run_as())
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
            self.stop()  # a postmaster of ours that died: collect it, clear its leftovers
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
        """Fast shutdown (SIGINT, like ``pg_ctl stop -m fast``) of the pid it holds; SIGKILL if it lingers.

        A postmaster that had already died (killed, crashed) is collected, and what it left is cleared
        (see :meth:`reap`).
        """
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
                    segments = posix_shm_segments(proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(10)
                    # A killed postmaster cannot remove its dynamic shared memory (/dev/shm/PostgreSQL.*).
                    for segment in segments:
                        with contextlib.suppress(OSError):
                            segment.unlink()
            self._proc = None
            # After a SIGKILL (ours or anyone's) postgres cannot clean up: its children may still hold its
            # shared memory, and its pid file, sockets and /dev/shm segments stay. A later start needs none.
            clear_leftovers(self.data_dir, self.socket_dir, self.port)

    def reap(self) -> bool:
        """Collect a postmaster of ours that died (no zombie) and clear what it left; True when there was one.

        Then :meth:`start` works again at once (same port, same data). Never blocks on a start or stop that
        is under way (returns False then).
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            proc = self._proc
            if proc is None or proc.poll() is None:
                return False
            self.stop()
            return True
        finally:
            self._lock.release()

    def processes(self) -> list[int]:
        """Pids of this server's processes: the postmaster first (while running), then its children.

        Found by working directory (see pg_process), so children orphaned by a killed postmaster count too.
        """
        pids = processes_in(self.data_dir)
        postmaster = self.pid
        if postmaster is not None and postmaster in pids:
            pids.remove(postmaster)
            pids.insert(0, postmaster)
        return pids

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
            remove_data_dir(self.requested_dir, self._owned_base)
            self._owned_base = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- SQL

    def run_sql_script(self, script: str, dbname: str = "postgres") -> None:
        """Run a psql-style script (see :func:`seed_statements`) as the superuser, autocommit."""
        run_sql_script(self.dsn, script, dbname)

    # ---------------------------------------------------------------- internals

    def _choose_socket_dir(self) -> Path:
        # The data dir itself is 0700 and owned by the server's user: a private socket dir for free.
        if len(str(self.data_dir)) <= _MAX_SOCKET_DIR_LEN:
            return self.data_dir
        self._socket_tmp = Path(tempfile.mkdtemp(prefix="pgiam-sock-", dir=public_tmp_base()))
        if self._user is not None:
            os.chown(self._socket_tmp, self._user.uid, self._user.gid)
        return self._socket_tmp

    def _refuse_foreign_postmaster(self) -> None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0].strip()
        except (FileNotFoundError, IndexError):
            return
        if first.isdigit() and pid_alive(int(first)):
            raise SandboxError(
                f"a PostgreSQL server is already running in {self.data_dir} (pid {first}): "
                "stop it or use another directory"
            )
        pidfile.unlink(missing_ok=True)

    def _start_once(self, timeout: float) -> None:
        assert self.port is not None
        write_instance_config(
            self.data_dir, self.port, self.socket_dir, self.read_only, self._user, self.max_connections
        )
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
                env=child_env(),
                start_new_session=True,  # a terminal's Ctrl-C goes to the sandbox, which stops us in order
                **user_kwargs(self._user),
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
                    f"PostgreSQL in {self.data_dir} did not start: {last_meaningful_line(tail)}"
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


# Older name, still imported by tests/test_sandbox_cli.py: use pgserver_bindir.
_pgserver_bindir = pgserver_bindir

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "DEMO_DATABASE",
    "SANDBOX_SYSTEM_USER",
    "LocalPostgres",
    "RunAs",
    "find_pg_bindir",
    "free_port",
    "has_pg_stat_statements",
    "pgserver_bindir",
    "reap_orphans",
    "run_as",
    "seed_statements",
    "server_version",
]
