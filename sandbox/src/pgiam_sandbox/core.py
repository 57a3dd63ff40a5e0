"""The Sandbox: fake AWS (moto + IMDS), one PostgreSQL per DB instance, a TLS front door per endpoint.

start() brings everything up (moto and the PostgreSQL servers concurrently: they do not depend on each other),
writes the files users source (env.sh, profiles.toml, AWS config), and returns only when every part answers.
Any failure stops what was already started and raises SandboxError with a one-line message.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from pgiam_sandbox import aws_files, fake_aws, moto_guards
from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.imds import ImdsServer
from pgiam_sandbox.runtime import Runtime
from pgiam_sandbox.server_plan import DEFAULT_MAX_SERVERS
from pgiam_sandbox.topology import InstancePids, SandboxCluster, SandboxInstance, Switches

log = logging.getLogger(__name__)

LISTEN_HOST = "127.0.0.1"
MAX_CLUSTERS = 50
MAX_SESSIONS = 5000  # idle sessions per server (each is a backend process: ~2 MB)
WORKLOAD_CLUSTERS = 4  # Aurora clusters that get background sessions (all of the demo's 3)

# moto's backends are process-global: two live sandboxes in one process would share (and reset) one AWS.
_active_lock = threading.Lock()
_active: Sandbox | None = None


class Sandbox:
    """Local stand-in for AWS + RDS with IAM database authentication (see DESIGN.md, "The sandbox")."""

    def __init__(
        self,
        root: Path,
        *,
        clusters: int = 3,
        workload: bool = True,
        latency_ms: float = 0,
        clock_skew_seconds: float = 0,
        pg_bindir: str | None = None,
        aws_port: int = 0,
        imds_port: int = 0,
        sessions: int = 0,
        max_servers: int = DEFAULT_MAX_SERVERS,
    ) -> None:
        if not 0 <= clusters <= MAX_CLUSTERS:
            raise SandboxError(f"--clusters must be between 0 and {MAX_CLUSTERS}, not {clusters}")
        if not 0 <= sessions <= MAX_SESSIONS:
            raise SandboxError(f"--sessions must be between 0 and {MAX_SESSIONS}, not {sessions}")
        if max_servers < 1:
            raise SandboxError(f"--servers must be >= 1, not {max_servers}")
        self.sessions = sessions  # idle client sessions held open per PostgreSQL server
        self.max_servers = max_servers
        self.root = Path(root).absolute()
        self.cluster_count = clusters
        self.workload_enabled = workload
        self.pg_bindir = pg_bindir
        self.switches = Switches(latency_ms=latency_ms, clock_skew_seconds=clock_skew_seconds)
        self.db_account_id = fake_aws.DB_ACCOUNT
        self.mgmt_account_id = fake_aws.MGMT_ACCOUNT
        self.clusters: tuple[SandboxCluster, ...] = ()
        self.endpoint_url = ""
        self.imds_url = ""
        self.ca_path = self.root / "ca.pem"
        self.aws_config_file = self.root / "aws" / "config"
        self.aws_credentials_file = self.root / "aws" / "credentials"
        self.profiles_toml = self.root / "profiles.toml"
        self.diagnostic_log = self.root / "frontdoor-diagnostics.log"
        self.moto_log = self.root / "moto.log"  # moto's server errors (tracebacks of actions it lacks)
        self.env: dict[str, str] = {}
        self._aws_port = aws_port
        self._imds_port = imds_port
        self._moto: fake_aws.MotoServer | None = None
        self.imds: ImdsServer | None = None
        self._runtime: Runtime | None = None
        self._workload: Any = None
        self._own_keys: tuple[Any, ...] = ()
        self._control: Any = None  # control.ControlServer: `pgiam-tui sandbox restart|pids` talk to it
        self._started = False
        self._stopping = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start everything and wait until it answers; SandboxError (after cleanup) otherwise."""
        global _active
        self._check_root()
        with _active_lock:
            if _active is not None:
                raise SandboxError(
                    "another sandbox is already running in this process (moto's state is global)"
                )
            _active = self
        self._started = True
        # Safety net: an interpreter that exits without reaching our caller's cleanup still stops the servers
        # (a signal's default action skips this too: commands that run a sandbox turn signals into exits).
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException as exc:
            self.stop()
            if isinstance(exc, SandboxError):
                raise
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            log.debug("sandbox start failed", exc_info=True)
            raise SandboxError(f"sandbox: {type(exc).__name__}: {exc}") from None

    def _check_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise SandboxError(f"cannot write to {self.root}: {exc.strerror or exc}") from None

    def _start(self) -> None:
        from pgiam_sandbox import postgres, shared_loader

        shared_loader.install()  # before moto's imports: they make boto3 sessions of their own

        bindir = postgres.find_pg_bindir(self.pg_bindir)  # SandboxError when there is none
        specs = fake_aws.default_specs(self.cluster_count)
        self._runtime = Runtime(
            self.root,
            bindir,
            self.switches,
            self.diagnostic_log,
            sessions=self.sessions,
            max_servers=self.max_servers,
        )
        # Bind the fixed-port parts first: a busy port is reported before anything slow has started.
        switches = self.switches
        self._moto = fake_aws.MotoServer(
            LISTEN_HOST, self._aws_port, log_file=self.moto_log, stalled=lambda: switches.aws_stalled
        )
        self._moto.start()
        self.endpoint_url = self._moto.url
        self.imds = ImdsServer(self.mgmt_account_id, port=self._imds_port)
        self.imds.start()
        self.imds_url = self.imds.url
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-start") as pool:
            # PostgreSQL (initdb + seed + clones + starts) is the slow part and needs nothing from AWS.
            pg_future: Future[None] = pool.submit(self._runtime.start_postgres, specs)
            try:
                moto_guards.install()
                fake_aws.reset_backends()
                seeded = fake_aws.seed(self.endpoint_url, specs)
            finally:
                pg_future.result()  # re-raises PostgreSQL start errors (and waits before any cleanup)
        self._own_keys = (seeded.keys["sandbox-db-admin"], seeded.keys["sandbox-mgmt-admin"])
        self.clusters = self._runtime.start_front_doors(seeded, self.endpoint_url, self.ca_path)
        from pgiam_sandbox.control import ControlServer

        self._control = ControlServer(self, self.root)
        self._control.start()
        self._write_files(seeded)
        if self.workload_enabled:
            self._start_workload()

    def _start_workload(self) -> None:
        from pgiam_sandbox.workload import Workload
        from pgiam_sandbox.workload_targets import targets_from_sandbox

        # A fleet gets the workload on its first few clusters only: 2 cores, and the rest are for watching.
        targets = targets_from_sandbox(_FirstClusters(self, WORKLOAD_CLUSTERS))
        self._workload = Workload(targets, self.boto_session)
        self._workload.start()

    def stop(self) -> None:
        """Stop everything this sandbox started (by pid / thread / socket held); idempotent."""
        global _active
        with self._stopping:
            if not self._started:
                return
            errors: list[str] = []
            if self._control is not None:
                _collect(errors, self._control.stop)
                self._control = None
            if self._workload is not None:
                _collect(errors, self._workload.stop)
                self._workload = None
            if self._runtime is not None:
                _collect(errors, self._runtime.stop)
                self._runtime = None
            if self.imds is not None:
                _collect(errors, self.imds.stop)
                self.imds = None
            if self._moto is not None:
                _collect(errors, self._moto.stop)
                self._moto = None
            _collect(errors, fake_aws.reset_backends)
            self._started = False
            atexit.unregister(self.stop)
            with _active_lock:
                if _active is self:
                    _active = None
            if errors:
                log.warning("sandbox stop: %s", "; ".join(errors))

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- files -----------------------------------------------------------------------------------------------

    def _write_files(self, seeded: fake_aws.SeedResult) -> None:
        self.aws_config_file, self.aws_credentials_file = aws_files.write_aws_files(
            self.root / "aws", seeded.keys, endpoint_url=self.endpoint_url, imds_url=self.imds_url
        )
        aws_files.write_text(self.profiles_toml, aws_files.profiles_toml(self.clusters, self.ca_path))
        first = self.clusters[0].name if self.clusters else None
        self.env = {
            "AWS_CONFIG_FILE": str(self.aws_config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_credentials_file),
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds_url,
            "PGIAM_TUI_CONFIG": str(self.profiles_toml),
            "PGIAM_SANDBOX_ADMIN_DSN": self.admin_dsn(first) if first else "",
            "PGIAM_SANDBOX_CA": str(self.ca_path),
            # this moto forgets its keys when it stops: never mix its credentials into ~/.aws/cli/cache
            "PGIAM_TUI_AWS_CLI_CACHE": str(self.root / "aws" / "cli-cache"),
        }
        aws_files.write_text(self.root / "env.sh", aws_files.env_sh(self.env))
        extra = {
            "db_account_id": self.db_account_id,
            "mgmt_account_id": self.mgmt_account_id,
            "endpoint_url": self.endpoint_url,
            "imds_url": self.imds_url,
            "ca_path": str(self.ca_path),
            "profiles_toml": str(self.profiles_toml),
            "diagnostic_log": str(self.diagnostic_log),
            "pid": os.getpid(),
            "control_socket": str(self._control.path) if self._control is not None else None,
        }
        aws_files.write_text(self.root / "sandbox.json", aws_files.sandbox_json(self.clusters, extra))

    # -- queries ---------------------------------------------------------------------------------------------

    def cluster(self, name: str) -> SandboxCluster:
        """The cluster called NAME (SandboxError listing the names otherwise)."""
        for c in self.clusters:
            if c.name == name:
                return c
        raise SandboxError(f"no sandbox cluster {name!r} (known: {', '.join(c.name for c in self.clusters)})")

    def _instance(self, name: str, instance: str | None) -> SandboxInstance:
        c = self.cluster(name)
        if instance is None:
            return c.writer
        for i in c.instances:
            if instance in (i.id, i.role):
                return i
        raise SandboxError(f"cluster {name!r} has no instance {instance!r}")

    def admin_dsn(self, name: str, instance: str | None = None) -> str:
        """Superuser DSN (unix socket) of an instance of NAME (default: the writer)."""
        i = self._instance(name, instance)
        # LocalPostgres's DSN also turns default_transaction_read_only off for the admin on readers.
        return str(self._require_runtime().servers[i.id].admin_dsn)

    def admin_sql(self, name: str, sql: str) -> None:
        """Run SQL as superuser on EVERY instance of the cluster (Aurora members share one catalog on RDS)."""
        import psycopg

        for i in self.cluster(name).instances:
            with psycopg.connect(self.admin_dsn(name, i.id), autocommit=True) as conn:
                conn.execute(sql.encode())

    def boto_session(self, profile: str | None = None) -> boto3.Session:
        """A boto3 session on the sandbox's config files (which name its endpoints), ignoring os.environ."""
        import botocore.session

        core = botocore.session.Session(profile=profile)
        core.set_config_variable("config_file", str(self.aws_config_file))
        core.set_config_variable("credentials_file", str(self.aws_credentials_file))
        return boto3.Session(botocore_session=core)

    # -- faults ----------------------------------------------------------------------------------------------

    def stop_cluster(self, name: str) -> None:
        """Stop NAME's PostgreSQL servers; the front doors stay, so logins fail as with a stopped cluster."""
        self._require_runtime().stop_cluster(self.cluster(name))

    def start_cluster(self, name: str) -> None:
        """Start NAME's PostgreSQL servers again (same ports, same data)."""
        self._require_runtime().start_cluster(self.cluster(name))

    def restart_cluster(self, name: str) -> None:
        """Stop then start NAME's PostgreSQL servers."""
        self.stop_cluster(name)
        self.start_cluster(name)

    def aws_requests(self) -> list[dict[str, Any]]:
        """AWS requests moto answered so far, per account, region and service (the sandbox's own excluded).

        Each entry: {"account", "region", "service", "requests"}. The account is the signing key's (moto's
        IAM users and assumed roles); the sandbox's own keys (log sinks, seeding) are left out.
        """
        if self._moto is None:
            raise SandboxError("the sandbox is not running")
        from moto.iam.models import get_account_id_from

        own = {k.access_key_id for k in self._own_keys}
        totals: dict[tuple[str, str, str], int] = {}
        for (key_id, region, service), n in self._moto.requests.snapshot().items():
            if key_id in own:
                continue
            try:
                account = str(get_account_id_from(key_id))
            except Exception:  # a key moto no longer knows (expired session)
                account = "unknown"
            wanted = (account, region, service)
            totals[wanted] = totals.get(wanted, 0) + n
        rows = sorted(totals.items())
        return [{"account": a, "region": r, "service": s, "requests": n} for (a, r, s), n in rows]

    def instance_pids(self, instance_id: str) -> InstancePids:
        """The postmaster and the other processes serving INSTANCE_ID (a DB instance id: "pgdemo-1-writer").

        For fault tests: SIGSTOP/SIGCONT all of them to stall the instance, SIGKILL the postmaster to crash
        it. The sandbox collects a server that died within a second and clears what it left (orphaned
        children, pid file, shared memory); `restart_instance` starts it again.
        """
        runtime = self._require_runtime()
        self._instance_by_id(instance_id)
        server = runtime.server(instance_id)
        pids = runtime.instance_processes(instance_id)
        postmaster = server.pid
        return InstancePids(postmaster, tuple(p for p in pids if p != postmaster))

    def restart_instance(self, instance_id: str) -> None:
        """Start INSTANCE_ID's PostgreSQL again (same port, same data), whether it runs, was stopped or died.

        A running server gets a fast shutdown first; a killed one is collected and its leftovers cleared.
        Front doors keep listening throughout (logins fail with 57P03 meanwhile, as on RDS during a reboot).
        `pgiam-tui sandbox restart --dir DIR INSTANCE` does the same from another process.
        """
        self._instance_by_id(instance_id)
        self._require_runtime().restart_instance(instance_id)

    def _instance_by_id(self, instance_id: str) -> SandboxInstance:
        for c in self.clusters:
            for i in c.instances:
                if i.id == instance_id:
                    return i
        known = ", ".join(i.id for c in self.clusters for i in c.instances)
        raise SandboxError(f"no sandbox instance {instance_id!r} (known: {known})")

    def expire_sessions(self, role_name: str | None = None, access_key_id: str | None = None) -> int:
        """Mark moto's STS sessions expired (of ROLE_NAME and/or ACCESS_KEY_ID, else all); returns how many.

        moto then answers ExpiredToken to requests signed with them (see moto_guards). The IMDS keeps serving
        its cached pg-mgmt-role credentials until `renew_credentials()`, as a stale credential cache would.
        """
        import datetime as dt

        from moto.sts.models import sts_backends

        count = 0
        past = dt.datetime(2000, 1, 1)
        for _account, partitions in list(sts_backends.items()):
            for role in partitions["aws"].assumed_roles:
                if role_name is not None and role.role_arn.rsplit("/", 1)[-1] != role_name:
                    continue
                if access_key_id is not None and role.access_key_id != access_key_id:
                    continue
                role.expiration = past
                count += 1
        return count

    def renew_credentials(self) -> None:
        """Make the IMDS hand out fresh pg-mgmt-role credentials on its next request."""
        if self.imds is not None:
            self.imds.renew()

    def flush_logs(self, timeout: float = 10.0) -> bool:
        """Wait until every log line / metric written so far reached moto's CloudWatch; False on timeout."""
        return self._require_runtime().flush_logs(timeout)

    def _require_runtime(self) -> Runtime:
        if self._runtime is None:
            raise SandboxError("the sandbox is not running")
        return self._runtime


class _FirstClusters:
    """A view of a sandbox with only its first N Aurora clusters and its RDS for PostgreSQL instances."""

    def __init__(self, sandbox: Sandbox, n: int) -> None:
        aurora = [c for c in sandbox.clusters if c.kind == "aurora"][:n]
        self.clusters = tuple(c for c in sandbox.clusters if c in aurora or c.kind != "aurora")
        self.ca_path = sandbox.ca_path
        self.boto_session = sandbox.boto_session


def _collect(errors: list[str], func: Any) -> None:
    try:
        func()
    except Exception as exc:  # keep stopping the rest; report at the end
        errors.append(f"{type(exc).__name__}: {exc}")


def remove_tree(path: Path) -> None:
    """Remove a sandbox root (data dirs may belong to the unprivileged PostgreSQL user)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
