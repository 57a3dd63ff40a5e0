"""A loopback IMDSv2 endpoint: the management account's EC2 instance with role ``pg-mgmt-role``.

botocore's InstanceMetadataFetcher (``credential_source = Ec2InstanceMetadata``) finds it through
``AWS_EC2_METADATA_SERVICE_ENDPOINT``. Credentials come from moto's STS in this process, issued as the EC2
service would (the role trusts ec2.amazonaws.com, so no IAM user signs this call), hence real to moto, and
renewed before they expire as EC2 does.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pgiam_sandbox import quiet_server
from pgiam_sandbox.errors import SandboxError

INSTANCE_ID = "i-0sandbox0mgmt0001"


@dataclass(frozen=True)
class _Creds:
    access_key_id: str
    secret_access_key: str
    token: str
    expiration: dt.datetime

    def __repr__(self) -> str:
        return f"_Creds(access_key_id={self.access_key_id!r}, expiration={self.expiration.isoformat()})"


class ImdsServer:
    """IMDSv2 on 127.0.0.1: token PUT, then role credentials and the instance identity document."""

    def __init__(
        self,
        account_id: str,
        role_name: str = "pg-mgmt-role",
        region: str = "us-east-1",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        duration_s: int = 3600,
        renew_before_s: float = 900,
    ) -> None:
        self.account_id = account_id
        self.role_name = role_name
        self.region = region
        self.host = host
        self.requested_port = port
        self.port = 0
        self.duration_s = duration_s
        # EC2 rotates instance credentials well before they expire; SDKs refresh 5-15 min ahead.
        self.renew_before_s = renew_before_s
        self._tokens: dict[str, dt.datetime] = {}
        self._creds: _Creds | None = None
        self._lock = threading.Lock()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (value for AWS_EC2_METADATA_SERVICE_ENDPOINT)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a thread; SandboxError if the port is taken."""
        handler = _make_handler(self)
        try:
            self._server = _QuietServer((self.host, self.requested_port), handler)
        except OSError as exc:
            raise SandboxError(
                f"IMDS: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-imds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket, join the thread (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def renew(self) -> None:
        """Drop the current credentials: the next request gets fresh ones (as after an EC2 rotation)."""
        with self._lock:
            self._creds = None

    def current_access_key_id(self) -> str:
        """Access key id currently served (issued now if none yet)."""
        return self._credentials().access_key_id

    def _credentials(self) -> _Creds:
        with self._lock:
            now = dt.datetime.now(dt.UTC)
            if self._creds is None or (self._creds.expiration - now).total_seconds() < self.renew_before_s:
                self._creds = self._issue()
            return self._creds

    def _issue(self) -> _Creds:
        from moto.sts.models import sts_backends

        # The EC2 service assumes the instance role on the instance's behalf: straight into moto's backend,
        # so the STS trust-policy guard (which checks callers signing requests) is not involved.
        role = sts_backends[self.account_id]["aws"].assume_role(
            region_name=self.region,
            role_session_name=INSTANCE_ID,
            role_arn=f"arn:aws:iam::{self.account_id}:role/{self.role_name}",
            policy="",
            duration=self.duration_s,
            external_id="",
        )
        expiration = role.expiration
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=dt.UTC)
        return _Creds(role.access_key_id, role.secret_access_key, role.session_token, expiration)

    def _new_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = dt.datetime.now(dt.UTC)
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + dt.timedelta(seconds=ttl)
        return token

    def _token_ok(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            exp = self._tokens.get(token)
        return exp is not None and exp > dt.datetime.now(dt.UTC)

    def _document(self, path: str) -> tuple[int, str, str] | None:
        """(status, content type, body) for a GET path, or None for 404."""
        base = "/latest/meta-data/iam/security-credentials/"
        if path in (base, base.rstrip("/")):
            return 200, "text/plain", self.role_name
        if path in (base + self.role_name, base + self.role_name + "/"):
            creds = self._credentials()
            body = {
                "Code": "Success",
                "LastUpdated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC",
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "Token": creds.token,
                "Expiration": creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return 200, "application/json", json.dumps(body)
        if path == "/latest/meta-data/iam/info":
            body = {
                "Code": "Success",
                "InstanceProfileArn": f"arn:aws:iam::{self.account_id}:instance-profile/{self.role_name}",
                "InstanceProfileId": "AIPASANDBOX0000000001",
            }
            return 200, "application/json", json.dumps(body)
        if path == "/latest/meta-data/instance-id":
            return 200, "text/plain", INSTANCE_ID
        if path == "/latest/meta-data/placement/region":
            return 200, "text/plain", self.region
        if path == "/latest/dynamic/instance-identity/document":
            doc = {
                "accountId": self.account_id,
                "region": self.region,
                "availabilityZone": f"{self.region}a",
                "instanceId": INSTANCE_ID,
                "instanceType": "t3.micro",
                "imageId": "ami-0sandbox",
                "architecture": "x86_64",
                "privateIp": "127.0.0.1",
            }
            return 200, "application/json", json.dumps(doc)
        return None


class _QuietServer(ThreadingHTTPServer):
    """No traceback on the terminal for a client that went away (see quiet_server)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        quiet_server.handle_error(request, client_address)


def _make_handler(imds: ImdsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            """No access log (it would show nothing useful and clutter the terminal)."""

        def _reply(self, status: int, body: str = "", content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path != "/latest/api/token":
                self._reply(404)
                return
            ttl_header = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl_header or "")
            except ValueError:
                self._reply(400)
                return
            if not 1 <= ttl <= 21600:
                self._reply(400)
                return
            token = imds._new_token(ttl)
            self.send_response(200)
            self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(token)))
            self.end_headers()
            self.wfile.write(token.encode())

        def do_GET(self) -> None:
            # IMDSv2 only (HttpTokens=required): no token, or an expired one, is 401.
            if not imds._token_ok(self.headers.get("X-aws-ec2-metadata-token")):
                self._reply(401)
                return
            try:
                answer = imds._document(self.path.split("?", 1)[0])
            except Exception:  # moto failure: EC2 would answer 500 and the SDK retries
                self._reply(500)
                return
            if answer is None:
                self._reply(404)
                return
            status, ctype, body = answer
            self._reply(status, body, ctype)

    return Handler
