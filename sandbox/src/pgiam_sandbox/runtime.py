"""The sandbox's running parts: PostgreSQL servers per DB instance, the local CA, one front door per endpoint.

Core (core.py) drives this: start_postgres() can run while moto is being seeded; start_front_doors() needs
the endpoint names and resource ids moto reported.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pgiam_sandbox.errors import SandboxError
from pgiam_sandbox.fake_aws import DB_ACCOUNT, ClusterSpec, SeededCluster, SeedResult, StaticKey, client_for
from pgiam_sandbox.idle_sessions import IdleSessions, headroom
from pgiam_sandbox.server_plan import DEFAULT_MAX_SERVERS, ServerSlot, plan_servers
from pgiam_sandbox.topology import SandboxCluster, SandboxInstance, Switches

log = logging.getLogger(__name__)

LISTEN_HOST = "127.0.0.1"
REAP_INTERVAL = 0.5  # seconds between looks for PostgreSQL servers that died


def instance_ids(spec: ClusterSpec) -> list[tuple[str, bool]]:
    """(DB instance id, read_only) per server of a cluster spec, as fake_aws names them."""
    if spec.kind == "aurora":
        return [(f"{spec.name}-writer", False), (f"{spec.name}-reader", True)]
    return [(spec.name, False)]


class Runtime:
    """Owns every PostgreSQL server and front door of one sandbox; stop() releases all of them."""

    def __init__(
        self,
        root: Path,
        bindir: Path,
        switches: Switches,
        diagnostic_log: Path,
        *,
        sessions: int = 0,
        max_servers: int = DEFAULT_MAX_SERVERS,
    ) -> None:
        self.root = root
        self.sessions = sessions
        self.max_servers = max_servers
        self._idle: Any = None  # idle_sessions.IdleSessions
        self.bindir = bindir
        self.switches = switches
        self.diagnostic_log = diagnostic_log
        self.servers: dict[str, Any] = {}  # instance id -> LocalPostgres
        self._template: Any = None
        self._front_doors: list[Any] = []
        self._log_sinks: list[Any] = []
        self._verifier: Any = None
        self._diagnostics: Any = None
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()

    # -- PostgreSQL ------------------------------------------------------------------------------------------

    def start_postgres(self, specs: tuple[ClusterSpec, ...]) -> None:
        """initdb + seed a template once, clone it per server, start all clones (concurrently).

        Instances share servers beyond ``max_servers`` (server_plan.py); ``sessions`` idle sessions are then
        opened on every server.
        """
        from pgiam_sandbox.postgres import LocalPostgres

        pg_root = self.root / "pg"
        pg_root.mkdir(parents=True, exist_ok=True)
        self._template = LocalPostgres.init_template(pg_root / "_template", bindir=self.bindir)
        wanted = [pair for spec in specs for pair in instance_ids(spec)]
        plan = plan_servers(wanted, self.max_servers)
        instances_of: dict[ServerSlot, list[str]] = {}  # server slot -> the instance ids it serves
        for instance_id, _read_only in wanted:
            instances_of.setdefault(plan[instance_id], []).append(instance_id)

        def clone_and_start(slot: ServerSlot) -> None:
            server = LocalPostgres.clone(self._template, pg_root / slot.name, read_only=slot.read_only)
            if self.sessions:
                server.max_connections = headroom(self.sessions)
            with self._lock:  # known before it starts: stop() stops it even if a sibling fails
                for instance_id in instances_of[slot]:
                    self.servers[instance_id] = server
            server.start()

        # Copies (cp) and starts (waiting for "ready to accept connections") of every server overlap.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-pg") as pool:
            for future in [pool.submit(clone_and_start, slot) for slot in instances_of]:
                future.result()
        if self.sessions:
            self._idle = IdleSessions()
            for server in self.unique_servers():
                self._idle.open(f"{server.socket_dir}/.s.PGSQL.{server.port}", self.sessions)
        self._reaper = threading.Thread(target=self._reap_forever, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def unique_servers(self) -> list[Any]:
        """Each LocalPostgres once (instances may share one)."""
        return list({id(s): s for s in self.servers.values()}.values())

    def _reap_forever(self) -> None:
        # A server killed from outside (a fault test, the OOM killer) must not linger as a zombie, nor leave
        # a pid file and shared memory that stop anyone from starting it again.
        while not self._reaper_stop.wait(REAP_INTERVAL):
            for instance_id, server in list({id(s): (i, s) for i, s in self.servers.items()}.values()):
                try:
                    if server.reap():
                        log.warning(
                            "PostgreSQL of %s died; collected (restart_instance starts it)", instance_id
                        )
                except Exception:  # keep watching the others
                    log.debug("reaping %s failed", instance_id, exc_info=True)

    def restart_instance(self, instance_id: str) -> None:
        """Stop (or collect, if it died) then start one instance's PostgreSQL: same port, same data."""
        server = self.server(instance_id)
        server.stop()
        server.start()

    def instance_processes(self, instance_id: str) -> list[int]:
        """The pids serving one instance: the postmaster first (while running), then its children."""
        return list(self.server(instance_id).processes())

    def server(self, instance_id: str) -> Any:
        """The LocalPostgres serving INSTANCE_ID (SandboxError otherwise)."""
        try:
            return self.servers[instance_id]
        except KeyError:
            raise SandboxError(f"no sandbox instance {instance_id!r}") from None

    def stop_cluster(self, cluster: SandboxCluster) -> None:
        """Stop the servers of one cluster (front doors keep listening)."""
        for inst in cluster.instances:
            self.servers[inst.id].stop()

    def start_cluster(self, cluster: SandboxCluster) -> None:
        """Start the servers of one cluster again (same port, same data)."""
        for inst in cluster.instances:
            self.servers[inst.id].start()

    # -- TLS + front doors -----------------------------------------------------------------------------------

    def start_front_doors(
        self, seeded: SeedResult, endpoint_url: str, ca_path: Path
    ) -> tuple[SandboxCluster, ...]:
        """Make the CA and certificate, start a front door per endpoint, return the public topology."""
        import ssl

        import trustme

        from pgiam_sandbox.rds_logs import DiagnosticLog
        from pgiam_sandbox.token_check import TokenVerifier

        names = sorted(
            {c.endpoint for c in seeded.clusters}
            | {c.reader_endpoint for c in seeded.clusters if c.reader_endpoint}
            | {i.endpoint for c in seeded.clusters for i in c.instances}
        )
        # The "RDS CA bundle": clients verify-full against ca.pem; one certificate names every endpoint.
        ca = trustme.CA(organization_name="pgiam-tui sandbox RDS CA")
        ca.cert_pem.write_to_path(str(ca_path))
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        if names:
            ca.issue_cert(*names).configure_cert(ssl_context)
        self._verifier = TokenVerifier(self.switches)
        self._diagnostics = DiagnosticLog(self.diagnostic_log)
        self.diagnostic_log.touch()
        admin = seeded.keys["sandbox-db-admin"]
        return tuple(self._start_cluster_doors(c, ssl_context, endpoint_url, admin) for c in seeded.clusters)

    def _start_cluster_doors(
        self, c: SeededCluster, ssl_context: Any, endpoint_url: str, admin: StaticKey
    ) -> SandboxCluster:

        from pgiam_sandbox.frontdoor import FrontDoor
        from pgiam_sandbox.rds_logs import RdsLogSink
        from pgiam_sandbox.token_check import TokenTarget

        log_file = self.root / "logs" / f"{c.spec.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.touch()

        def client_factory(service: str) -> Any:
            return client_for(admin, service, c.spec.region, endpoint_url)

        sink = RdsLogSink(
            log_file=log_file,
            log_group=c.log_group,
            iam_log_group=c.iam_log_group,
            client_factory=client_factory,
        )
        self._log_sinks.append(sink)
        ports: dict[str, int] = {}  # endpoint -> listen port

        def door(endpoint: str, instance_id: str) -> int:
            server = self.servers[instance_id]
            target = TokenTarget(
                account_id=DB_ACCOUNT,
                region=c.spec.region,
                cluster_id=c.cluster_id,
                instance_id=instance_id,
                hosts=(endpoint,),
                port=c.port,
            )
            fd = FrontDoor(
                endpoint,
                (endpoint,),
                instance_id=instance_id,
                backend_socket_dir=str(server.socket_dir),
                backend_port=int(server.port),
                verifier=self._verifier.for_target(target),
                ssl_context=ssl_context,
                log_sink=sink,
                switches=self.switches,
                diagnostics=self._diagnostics,
                listen_host=LISTEN_HOST,
            )
            fd.start()
            self._front_doors.append(fd)
            return int(fd.port)

        writer = next(i for i in c.instances if i.role in ("writer", "instance"))
        reader = next((i for i in c.instances if i.role == "reader"), None)
        for inst in c.instances:
            ports[inst.endpoint] = door(inst.endpoint, inst.id)
        if c.endpoint not in ports:  # Aurora: the cluster endpoint routes to the writer
            ports[c.endpoint] = door(c.endpoint, writer.id)
        reader_port = None
        if c.reader_endpoint and reader is not None:  # ... and the reader endpoint to the reader
            reader_port = door(c.reader_endpoint, reader.id)
        instances = tuple(
            SandboxInstance(
                id=i.id,
                role=i.role,
                endpoint=i.endpoint,
                port=i.port,
                listen_host=LISTEN_HOST,
                listen_port=ports[i.endpoint],
                resource_id=i.resource_id,
                pg_port=int(self.servers[i.id].port),
                pg_socket_dir=str(self.servers[i.id].socket_dir),
            )
            for i in c.instances
        )
        return SandboxCluster(
            name=c.spec.name,
            kind=c.spec.kind,
            cluster_id=c.cluster_id,
            instance_id=c.instance_id,
            account_id=DB_ACCOUNT,
            region=c.spec.region,
            endpoint=c.endpoint,
            port=c.port,
            listen_host=LISTEN_HOST,
            listen_port=ports[c.endpoint],
            reader_endpoint=c.reader_endpoint,
            reader_listen_port=reader_port,
            resource_id=c.resource_id,
            database="demo",
            log_group=c.log_group,
            iam_log_group=c.iam_log_group,
            log_file=str(log_file),
            instances=instances,
        )

    def flush_logs(self, timeout: float) -> bool:
        """Flush every cluster's log sink to CloudWatch (moto)."""
        return all([sink.flush(timeout) for sink in self._log_sinks])

    # -- stop ------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop front doors (threads, sockets), log sinks, then every PostgreSQL by the pid it holds."""
        errors: list[str] = []
        self._reaper_stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None
        for fd in self._front_doors:
            try:
                fd.stop()
            except Exception as exc:
                errors.append(f"front door: {exc}")
        self._front_doors.clear()
        for sink in self._log_sinks:
            try:
                sink.close()
            except Exception as exc:
                errors.append(f"log sink: {exc}")
        self._log_sinks.clear()
        if self._idle is not None:
            try:
                self._idle.close()
            except Exception as exc:
                errors.append(f"idle sessions: {exc}")
            self._idle = None
        servers = self.unique_servers()
        if self._template is not None:
            servers.append(self._template)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-pg-stop") as pool:
            for future in [pool.submit(s.cleanup) for s in servers]:
                try:
                    future.result()
                except Exception as exc:
                    errors.append(f"postgres: {exc}")
        self.servers.clear()
        self._template = None
        if errors:
            raise SandboxError("; ".join(errors))
