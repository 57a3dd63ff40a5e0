"""The sandbox's AWS: moto's server on loopback, seeded with the scenario's two accounts.

moto chooses the account of a request from its access key (``moto.iam.models.get_account_id_from``: the
account whose IAM backend holds the key, STS session keys included; unknown keys fall to moto's default
account). So we create one admin IAM user with static keys directly in each account's in-process IAM backend,
then seed everything else over HTTP with plain boto3 signed by those keys, as a user would.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from pgiam_sandbox import quiet_server
from pgiam_sandbox.errors import SandboxError

DB_ACCOUNT = "111111111111"
MGMT_ACCOUNT = "222222222222"
CANONICAL_PORT = 5432
DATABASE = "demo"

log = logging.getLogger(__name__)


def credential_scope(authorization: str) -> tuple[str, str, str] | None:
    """(access key id, region, service) of a SigV4 Authorization header, or None for an unsigned request."""
    # "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/rds/aws4_request, SignedHeaders=..., ..."
    _, found, rest = authorization.partition("Credential=")
    parts = rest.split(",", 1)[0].split("/") if found else []
    return (parts[0], parts[2], parts[3]) if len(parts) >= 4 else None


class RequestCounter:
    """Counts the AWS requests moto's server answered, by (access key id, region, service) of their SigV4
    credential scope: what per-account, per-region API quotas count. Unsigned requests are not counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def count(self, scope: tuple[str, str, str] | None) -> None:
        """Count one request by its credential scope (see :func:`credential_scope`); None is not counted."""
        if scope is None:
            return
        with self._lock:
            self._counts[scope] = self._counts.get(scope, 0) + 1

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


class MotoServer:
    """moto's WSGI app served by werkzeug on 127.0.0.1 in a thread of this process.

    Not moto's ThreadedMotoServer: that binds inside its thread, so a busy port makes start() wait forever.
    Here the socket is bound in the caller's thread and errors surface as SandboxError.

    What werkzeug would print (a traceback on stderr for every action moto lacks, e.g. Access Advisor or
    CloudTrail lookups, which the product asks for and handles) goes to `log_file` instead (the sandbox dir's
    moto.log), or to this module's logger at debug level without one: `sandbox up`, the demo and the TUI on
    top of it stay readable, and real errors are still there to read. `errors` counts them.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_file: Path | None = None,
        stalled: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.host = host
        # the AWS stall switch: services ("rds", "logs", "*" for all) whose requests get no answer meanwhile
        self.stalled = stalled
        self.requested_port = port
        self.port = 0
        self.log_file = log_file
        self.errors = 0
        self.requests = RequestCounter()  # AWS requests per signing key, region and service (benchmarks)
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()  # set by stop(): requests held by the stall switch let go
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind and serve; SandboxError if the port is taken."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        record = self._record

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """Requests are not logged (the sandbox is chatty enough)."""

            def log(self, type: str, message: str, *args: Any) -> None:
                """werkzeug's per-request messages go to moto.log, not stderr."""
                record(type, message % args if args else message)

        # werkzeug's own bind prints to stderr and sys.exit(1)s on a busy port: bind here, hand it the fd.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise SandboxError(
                f"fake AWS: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from None
        moto_app = DomainDispatcherApplication(create_backend_app)
        counter = self.requests

        stalled, stopping = self.stalled, self._stopping

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
            if stalled is not None:
                _hold_while_stalled(stalled, scope[2] if scope else None, stopping)
            counter.count(scope)
            return moto_app(environ, start_response)

        try:
            self._server = make_server(
                self.host,
                self.requested_port,
                app,
                threaded=True,
                request_handler=QuietHandler,
                fd=sock.fileno(),
            )
        finally:
            sock.close()  # werkzeug holds its own duplicate of the descriptor
        # "Error on request:\n<traceback>" is logged by the server object, not the handler: route it too
        self._server.log = lambda type, message, *args: record(type, message % args if args else message)
        # a client that went away mid-request: no traceback on the terminal (socketserver prints one)
        self._server.handle_error = quiet_server.handle_error
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-moto", daemon=True)
        self._thread.start()

    def _record(self, level: str, message: str) -> None:
        """Keep one werkzeug message (errors with their traceback) in the log file, or at debug level."""
        if level == "error":
            self.errors += 1
        if self.log_file is None:
            log.debug("moto %s: %s", level, message.rstrip())
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            with self._log_lock, self.log_file.open("a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {level.upper()} {message.rstrip()}\n")
        except OSError:  # the sandbox dir went away under us: nothing better to do than stay quiet
            log.debug("cannot write %s", self.log_file, exc_info=True)

    def stop(self) -> None:
        """Stop serving, close the socket, join the thread (idempotent)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _hold_while_stalled(
    stalled: Callable[[], Collection[str]], service: str | None, stopping: threading.Event
) -> None:
    """Hold a request (its werkzeug thread) while the switch stalls its service: the client sees AWS
    accept the request and not answer, until its read timeout or the end of the stall. A server that stops
    lets its held requests go (their threads would otherwise wait as long as the switch stays on)."""
    while (services := stalled()) and ("*" in services or service in services):
        if stopping.wait(0.05):
            return


@dataclass(frozen=True)
class ClusterSpec:
    """What to create: an Aurora cluster (writer + reader) or an RDS for PostgreSQL instance."""

    name: str
    kind: str  # "aurora" | "instance"
    region: str


@dataclass(frozen=True)
class SeededInstance:
    """A DB instance as moto reports it (resource id made unique by the sandbox)."""

    id: str
    role: str  # "writer" | "reader" | "instance"
    endpoint: str
    port: int
    resource_id: str


@dataclass(frozen=True)
class SeededCluster:
    """A cluster (or standalone instance) created in moto's RDS, with its log groups."""

    spec: ClusterSpec
    cluster_id: str | None
    instance_id: str | None
    endpoint: str
    port: int
    reader_endpoint: str | None
    resource_id: str
    log_group: str
    iam_log_group: str
    instances: tuple[SeededInstance, ...]


@dataclass(frozen=True)
class StaticKey:
    """Static access keys of a seeded IAM user (the secret is not shown by repr)."""

    profile: str
    account_id: str
    user_name: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"StaticKey(profile={self.profile!r}, user={self.user_name!r}, key={self.access_key_id!r})"


@dataclass(frozen=True)
class SeedResult:
    """Everything later steps need: keys per profile and the clusters."""

    keys: dict[str, StaticKey]
    clusters: tuple[SeededCluster, ...]


def default_specs(clusters: int) -> tuple[ClusterSpec, ...]:
    """N Aurora clusters alternating us-east-1 / us-east-2, plus one RDS for PostgreSQL instance."""
    regions = ("us-east-1", "us-east-2")
    specs = [ClusterSpec(f"pgdemo-{i}", "aurora", regions[(i - 1) % 2]) for i in range(1, clusters + 1)]
    specs.append(ClusterSpec("pgdemo-rds", "instance", "us-east-2"))
    return tuple(specs)


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _bootstrap_admin(account: str, user_name: str, profile: str) -> StaticKey:
    """Create an IAM user + keys straight in moto's backend: nothing is signed for this account yet."""
    from moto.iam.models import iam_backends

    iam = iam_backends[account]["aws"]
    iam.create_user(region_name="us-east-1", user_name=user_name)
    key = iam.create_access_key(user_name)
    return StaticKey(profile, account, user_name, key.access_key_id, key.secret_access_key)


def _session(key: StaticKey, region: str = "us-east-1") -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key, region_name=region
    )


_clients_lock = threading.Lock()
_sessions: dict[str, boto3.Session] = {}
_clients: dict[tuple[str, str, str, str], Any] = {}


def client_for(key: StaticKey, service: str, region: str, endpoint_url: str) -> Any:
    """A boto3 client signed with ``key``, shared by every caller asking for the same one.

    One session per key, one client per service and region: a session loads each service model once, and a
    fleet sandbox (50 clusters, a log sink each) spent most of its start-up loading them again per cluster.
    Clients are thread-safe; creating them is not, hence the lock.
    """
    wanted = (key.access_key_id, service, region, endpoint_url)
    with _clients_lock:
        client = _clients.get(wanted)
        if client is None:
            session = _sessions.get(key.access_key_id)
            if session is None:
                session = _sessions[key.access_key_id] = _session(key)
            client = session.client(service, region_name=region, endpoint_url=endpoint_url)  # type: ignore[call-overload]
            _clients[wanted] = client
        return client


ADMIN_POLICY = _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})

# What a monitor needs besides rds-db:connect (scenario's pg-db-monitor-policy, extended with reads).
MONITOR_READS = [
    "rds:Describe*",
    "rds:ListTagsForResource",
    "rds:DownloadDBLogFilePortion",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:DescribeLogStreams",
    "logs:DescribeLogGroups",
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
]

IAM_READER_POLICY = _doc(
    {
        "Effect": "Allow",
        "Action": [
            "iam:Get*",
            "iam:List*",
            "iam:GenerateServiceLastAccessedDetails",
            "iam:SimulatePrincipalPolicy",
            "cloudtrail:LookupEvents",
            *MONITOR_READS,
        ],
        "Resource": "*",
    }
)


def _unique_resource_id(prefix: str) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(26))


def _patch_instance(region: str, instance_id: str, *, iam_auth: bool) -> str:
    """Work around two moto 5.2 quirks on the in-process model object; returns the new DbiResourceId.

    moto gives every DB instance the same DbiResourceId ("db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U"), and Aurora member
    instances report IAMDatabaseAuthenticationEnabled false while their cluster has it on. Real RDS has a
    unique id per instance and members mirror the cluster's flag.
    """
    from moto.rds.models import rds_backends

    db = rds_backends[DB_ACCOUNT][region].databases[instance_id]
    db.dbi_resource_id = _unique_resource_id("db-")
    if iam_auth:
        db.enable_iam_database_authentication = True
    return str(db.dbi_resource_id)


def seed(endpoint_url: str, specs: tuple[ClusterSpec, ...]) -> SeedResult:
    """Create users, roles, policies, RDS clusters/instances and log groups in both accounts."""
    try:
        return _seed(endpoint_url, specs)
    except SandboxError:
        raise
    except Exception as exc:  # botocore / moto failure: one line for the user, details in the log
        log.debug("seeding failed", exc_info=True)
        raise SandboxError(f"fake AWS: seeding failed: {type(exc).__name__}: {exc}") from None


def _seed(endpoint_url: str, specs: tuple[ClusterSpec, ...]) -> SeedResult:
    db_admin = _bootstrap_admin(DB_ACCOUNT, "sandbox-db-admin", "sandbox-db-admin")
    mgmt_admin = _bootstrap_admin(MGMT_ACCOUNT, "sandbox-mgmt-admin", "sandbox-mgmt-admin")
    db_iam = _session(db_admin).client("iam", endpoint_url=endpoint_url)
    mgmt_iam = _session(mgmt_admin).client("iam", endpoint_url=endpoint_url)
    db_iam.put_user_policy(
        UserName="sandbox-db-admin", PolicyName="AdministratorAccess", PolicyDocument=ADMIN_POLICY
    )
    mgmt_iam.put_user_policy(
        UserName="sandbox-mgmt-admin", PolicyName="AdministratorAccess", PolicyDocument=ADMIN_POLICY
    )

    # IAM reader in the DB account (for the console's IAM pane and the check).
    db_iam.create_user(UserName="iam-reader")
    db_iam.put_user_policy(UserName="iam-reader", PolicyName="iam-read", PolicyDocument=IAM_READER_POLICY)
    key = db_iam.create_access_key(UserName="iam-reader")["AccessKey"]
    reader = StaticKey("iam-reader", DB_ACCOUNT, "iam-reader", key["AccessKeyId"], key["SecretAccessKey"])

    # Management account: the EC2 instance role allowed to assume the DB account's monitor role.
    mgmt_iam.create_role(
        RoleName="pg-mgmt-role",
        AssumeRolePolicyDocument=_doc(
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ),
    )
    mgmt_iam.put_role_policy(
        RoleName="pg-mgmt-role",
        PolicyName="pg-mgmt-assume-monitor",
        PolicyDocument=_doc(
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::{DB_ACCOUNT}:role/pg-monitor-role",
            }
        ),
    )
    mgmt_iam.create_instance_profile(InstanceProfileName="pg-mgmt-role")
    mgmt_iam.add_role_to_instance_profile(InstanceProfileName="pg-mgmt-role", RoleName="pg-mgmt-role")

    # DB account: the monitor role, trusted by the management role only.
    db_iam.create_role(
        RoleName="pg-monitor-role",
        AssumeRolePolicyDocument=_doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{MGMT_ACCOUNT}:role/pg-mgmt-role"},
                "Action": "sts:AssumeRole",
            }
        ),
    )
    monitor_policy = db_iam.create_policy(
        PolicyName="pg-db-monitor-policy",
        PolicyDocument=_doc(
            {
                "Sid": "ConnectAsPgmonitor",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:*:{DB_ACCOUNT}:dbuser:*/pgmonitor",
            },
            {"Sid": "MonitorReads", "Effect": "Allow", "Action": MONITOR_READS, "Resource": "*"},
        ),
    )["Policy"]
    db_iam.attach_role_policy(RoleName="pg-monitor-role", PolicyArn=monitor_policy["Arn"])

    # Independent per cluster: create them concurrently (moto's server is threaded); order kept.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-seed") as pool:
        clusters = tuple(pool.map(lambda spec: _create_rds(db_admin, endpoint_url, spec), specs))

    # Application roles: one rds-db:connect statement per cluster, naming its real resource id.
    for suffix, user in (("rw", "oltp_rw_user"), ("ro", "oltp_ro_user")):
        role_name = f"pgdemo-oltp-{suffix}-role"
        db_iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=_doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{DB_ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                },
            ),
        )
        resources = [
            f"arn:aws:rds-db:{c.spec.region}:{DB_ACCOUNT}:dbuser:{c.resource_id}/{user}" for c in clusters
        ]
        policy = db_iam.create_policy(
            PolicyName=f"pgdemo-oltp-{suffix}-user-policy",
            PolicyDocument=_doc({"Effect": "Allow", "Action": "rds-db:connect", "Resource": resources}),
        )["Policy"]
        db_iam.attach_role_policy(RoleName=role_name, PolicyArn=policy["Arn"])

    keys = {k.profile: k for k in (db_admin, mgmt_admin, reader)}
    return SeedResult(keys=keys, clusters=clusters)


def _create_rds(admin: StaticKey, endpoint_url: str, spec: ClusterSpec) -> SeededCluster:
    rds = client_for(admin, "rds", spec.region, endpoint_url)
    logs = client_for(admin, "logs", spec.region, endpoint_url)
    exports = ["postgresql", "iam-db-auth-error"]
    instances: list[SeededInstance] = []
    if spec.kind == "aurora":
        cluster = rds.create_db_cluster(
            DBClusterIdentifier=spec.name,
            Engine="aurora-postgresql",
            EngineVersion="15.4",
            MasterUsername="postgres",
            MasterUserPassword=secrets.token_urlsafe(18),
            DatabaseName=DATABASE,
            EnableIAMDatabaseAuthentication=True,
            EnableCloudwatchLogsExports=exports,
        )["DBCluster"]
        for role in ("writer", "reader"):
            instance_id = f"{spec.name}-{role}"
            # Order matters: moto makes the first member the writer.
            db = rds.create_db_instance(
                DBInstanceIdentifier=instance_id,
                DBClusterIdentifier=spec.name,
                Engine="aurora-postgresql",
                DBInstanceClass="db.r6g.large",
            )["DBInstance"]
            resource_id = _patch_instance(spec.region, instance_id, iam_auth=True)
            instances.append(
                SeededInstance(instance_id, role, db["Endpoint"]["Address"], CANONICAL_PORT, resource_id)
            )
        kind_path = f"cluster/{spec.name}"
        result = SeededCluster(
            spec=spec,
            cluster_id=spec.name,
            instance_id=None,
            endpoint=cluster["Endpoint"],
            port=CANONICAL_PORT,
            reader_endpoint=cluster["ReaderEndpoint"],
            resource_id=cluster["DbClusterResourceId"],
            log_group=f"/aws/rds/{kind_path}/postgresql",
            iam_log_group=f"/aws/rds/{kind_path}/iam-db-auth-error",
            instances=tuple(instances),
        )
    else:
        db = rds.create_db_instance(
            DBInstanceIdentifier=spec.name,
            Engine="postgres",
            EngineVersion="15.4",
            DBInstanceClass="db.t3.micro",
            MasterUsername="postgres",
            MasterUserPassword=secrets.token_urlsafe(18),
            AllocatedStorage=20,
            DBName=DATABASE,
            EnableIAMDatabaseAuthentication=True,
            EnableCloudwatchLogsExports=exports,
        )["DBInstance"]
        resource_id = _patch_instance(spec.region, spec.name, iam_auth=False)
        endpoint = db["Endpoint"]["Address"]
        instances.append(SeededInstance(spec.name, "instance", endpoint, CANONICAL_PORT, resource_id))
        kind_path = f"instance/{spec.name}"
        result = SeededCluster(
            spec=spec,
            cluster_id=None,
            instance_id=spec.name,
            endpoint=endpoint,
            port=CANONICAL_PORT,
            reader_endpoint=None,
            resource_id=resource_id,
            log_group=f"/aws/rds/{kind_path}/postgresql",
            iam_log_group=f"/aws/rds/{kind_path}/iam-db-auth-error",
            instances=tuple(instances),
        )
    # RDS names one stream per instance in each exported group.
    for group in (result.log_group, result.iam_log_group):
        logs.create_log_group(logGroupName=group)
        for inst in result.instances:
            logs.create_log_stream(logGroupName=group, logStreamName=inst.id)
    return result


def reset_backends() -> None:
    """Forget every account's state in the moto backends the sandbox uses (a new Sandbox starts clean).

    Only modules already imported can hold state; importing the others just to reset them would cost
    seconds at start-up (moto imports a service's models on its first request).
    """
    import sys

    with _clients_lock:  # their keys die with the backends
        _clients.clear()
        _sessions.clear()
    for module, name in (
        ("moto.iam.models", "iam_backends"),
        ("moto.sts.models", "sts_backends"),
        ("moto.rds.models", "rds_backends"),
        ("moto.logs.models", "logs_backends"),
        ("moto.cloudwatch.models", "cloudwatch_backends"),
        ("moto.cloudtrail.models", "cloudtrail_backends"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None:
            getattr(loaded, name).reset()
