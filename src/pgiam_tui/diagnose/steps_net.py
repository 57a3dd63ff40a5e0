"""Network steps: the connect address (DNS, or the tunnel's hostaddr), TCP, and PostgreSQL's TLS handshake."""

from __future__ import annotations

import asyncio
import errno

from pgiam_tui.aws.endpoints import RDS_CA_BUNDLE_URL
from pgiam_tui.diagnose.causes import Diagnosis
from pgiam_tui.diagnose.context import CheckContext
from pgiam_tui.diagnose.probe import is_ip, resolve, tcp_connect, tls_probe
from pgiam_tui.diagnose.result import StepBuilder
from pgiam_tui.textsafe import clip
from pgiam_tui.vocabulary import CheckCause


async def step_address(ctx: CheckContext, b: StepBuilder) -> bool:
    """Where TCP goes: the tunnel's hostaddr (DNS not needed), else the endpoint's addresses from DNS."""
    endpoint, port = ctx.endpoint, ctx.port
    tunnel = ctx.tunnel_target()
    if tunnel is not None:
        addr, tport = tunnel
        ctx.tunnel, ctx.connect_port = True, tport
        if not is_ip(addr):
            try:
                found = await asyncio.to_thread(resolve, addr, tport)
            except OSError as exc:
                text = f"tunnel address {addr} does not resolve: {clip(str(exc))}"
                fix = "set hostaddr to the tunnel's local address (e.g. 127.0.0.1)"
                b.fail(text, fix, cause=CheckCause.DNS_FAILURE)
                ctx.decide(Diagnosis(CheckCause.DNS_FAILURE, text, fix, [text]), "inference")
                return False
            addr = found[0]
        ctx.connect_addr = addr
        b.skip(
            f"DNS lookup of {endpoint} not needed: hostaddr {addr} given (tunnel); "
            f"TCP goes to {addr}:{tport}, "
            f"the TLS name and the token stay {endpoint}:{port}"
        )
        return True
    ctx.connect_port = port
    if is_ip(endpoint):
        ctx.connect_addr = endpoint
        b.ok(f"{endpoint} is an address: no DNS lookup")
        return True
    try:
        addresses = await asyncio.to_thread(resolve, endpoint, port)
    except OSError as exc:
        text = f"{endpoint} does not resolve: {clip(str(exc))}"
        fix = (
            "check the endpoint name and your DNS/VPN; private RDS endpoints resolve only inside their VPC: "
            'from outside, open a tunnel and set hostaddr = "127.0.0.1" and local_port in the config'
        )
        b.fail(text, fix, cause=CheckCause.DNS_FAILURE)
        b.evidence.append(text)
        ctx.decide(Diagnosis(CheckCause.DNS_FAILURE, fix=fix, evidence=[text]), "inference")
        return False
    ctx.connect_addr = addresses[0]
    b.ok(f"{endpoint} resolves to {', '.join(addresses)}")
    return True


async def step_tcp(ctx: CheckContext, b: StepBuilder) -> bool:
    """A TCP connection to the connect address (kept open for the TLS step)."""
    addr, port = ctx.connect_addr, ctx.connect_port
    if addr is None:
        b.skip("not tried: no address")
        return False
    where = f"{addr}:{port}" + (" (tunnel)" if ctx.tunnel else "")
    timeout = ctx.cfg.connect_timeout_s
    try:
        ctx.sock = await asyncio.to_thread(tcp_connect, addr, port, timeout)
    except ConnectionRefusedError:
        text = f"connection to {where} refused: nothing listens there"
        fix = (
            "start the tunnel (aws ssm start-session ... / ssh -L) or fix hostaddr/local_port"
            if ctx.tunnel
            else "check the port and that the instance is available (aws rds describe-db-instances)"
        )
        return _tcp_fail(ctx, b, CheckCause.TCP_REFUSED, text, fix)
    except TimeoutError:
        text = f"connection to {where} timed out after {timeout:g} s"
        fix = (
            "the tunnel does not answer: restart it"
            if ctx.tunnel
            else "allow this client in the DB security group (inbound TCP on the port) and check network "
            "ACLs/routes; a private cluster is reachable only from its VPC (use a tunnel)"
        )
        return _tcp_fail(ctx, b, CheckCause.TCP_TIMEOUT, text, fix)
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return _tcp_fail(
                ctx,
                b,
                CheckCause.TCP_UNREACHABLE,
                f"{where} is unreachable: {clip(exc.strerror or str(exc))}",
                "check routes/VPN to the cluster's VPC, or use a tunnel",
            )
        return _tcp_fail(
            ctx,
            b,
            CheckCause.TCP_UNREACHABLE,
            f"connection to {where} failed: {clip(str(exc))}",
            "check the address and the network path",
        )
    b.ok(f"connected to {where}")
    return True


def _tcp_fail(ctx: CheckContext, b: StepBuilder, code: CheckCause, text: str, fix: str) -> bool:
    b.fail(text, fix, cause=code)
    b.evidence.append(text)
    ctx.decide(Diagnosis(code, fix=fix, evidence=[text]), "inference")
    return False


def _endpoint_name(names: tuple[str, ...], ids: tuple[str, ...]) -> str | None:
    """The writer endpoint among a certificate's names: the one of this cluster (its id starts RDS names),
    else the only writer-like name. None when it cannot be told (wildcards, several candidates)."""
    from pgiam_tui.aws.endpoints import parse_rds_endpoint

    parsed = [(n, parse_rds_endpoint(n)) for n in names if not n.startswith("*")]
    rds = [n for n, p in parsed if p is not None]  # every partition (….amazonaws.com.cn too)
    writers = [n for n, p in parsed if p is not None and p.kind == "cluster"] or rds
    ours = [n for n in writers if any(n.startswith(f"{i}.") for i in ids)]
    if len(ours) == 1:
        return ours[0]
    return writers[0] if len(writers) == 1 else None


async def step_tls(ctx: CheckContext, b: StepBuilder) -> bool:
    """SSLRequest and a TLS handshake checked like libpq's sslmode, with the configured CA bundle."""
    cfg = ctx.cfg
    sock = ctx.sock
    ctx.sock = None
    if sock is None:
        b.skip("not tried: no TCP connection")
        return False
    if cfg.sslmode == "disable":
        sock.close()
        b.skip("sslmode = disable: no TLS (IAM authentication on RDS needs TLS: use verify-full)")
        return True
    outcome = await asyncio.to_thread(
        tls_probe,
        sock,
        addr=ctx.connect_addr or ctx.endpoint,
        port=ctx.connect_port,
        server_name=ctx.endpoint,
        sslmode=cfg.sslmode,
        sslrootcert=cfg.sslrootcert,
        timeout_s=cfg.connect_timeout_s,
    )
    if outcome.failure is None:
        ctx.tls_summary = f"{outcome.protocol}, {outcome.cipher}"
        hint = None
        if cfg.sslmode != "verify-full":
            hint = 'use sslmode = "verify-full" so the server\'s identity is checked'
        b.ok(f"{outcome.protocol}, cipher {outcome.cipher}; {outcome.verified}", hint)
        return True
    if outcome.failure == CheckCause.TLS_REFUSED and cfg.sslmode in ("allow", "prefer"):
        b.ok(
            f"server refused TLS; sslmode = {cfg.sslmode} goes on without it",
            "IAM authentication on RDS needs TLS",
        )
        return True
    message = clip(outcome.message)
    bundle = cfg.sslrootcert or "~/.postgresql/root.crt (libpq's default)"
    evidence = [f"TLS: {message}"]
    if outcome.ca_subjects:
        evidence.append(f"CA bundle {bundle} holds: " + "; ".join(outcome.ca_subjects[:5]))
    if outcome.failure == CheckCause.HOSTNAME_MISMATCH:
        covered = ", ".join(outcome.peer_names) or "(could not read)"
        evidence.append(f"the certificate covers: {covered}")
        text = f"the certificate does not cover {ctx.endpoint}"
        fix = (
            "connect with host = the RDS endpoint name the certificate covers; for a tunnel keep endpoint as "
            "the host and put the tunnel in hostaddr/local_port"
        )
        host_concern = ctx.suspected(CheckCause.TOKEN_HOST_MISMATCH)
        if host_concern is not None:
            # Connecting "to 127.0.0.1" breaks TLS first; the root cause is the same misconfigured tunnel.
            fix = host_concern.fix
            ids = tuple(i for i in (cfg.cluster_id, cfg.instance_id, cfg.name) if i)
            endpoint = _endpoint_name(outcome.peer_names, ids)
            if endpoint is not None and ctx.token is not None:
                # The certificate names the real endpoint: say exactly what to write.
                fix = (
                    f'set endpoint = "{endpoint}", port = 5432, hostaddr = "{ctx.token.host}", '
                    f"local_port = {ctx.token.port} (the certificate names {endpoint}; the token and the TLS "
                    "name must be the endpoint's, only TCP goes to the tunnel)"
                )
            diag = Diagnosis(host_concern.code, host_concern.text, fix, [*host_concern.evidence, *evidence])
            b.fail(f"{text} (certificate for {covered})", diag.fix, cause=diag.code)
        else:
            diag = Diagnosis(CheckCause.HOSTNAME_MISMATCH, text, fix, evidence)
            b.fail(f"{text} (certificate for {covered})", fix, cause=CheckCause.HOSTNAME_MISMATCH)
    elif outcome.failure in (CheckCause.UNTRUSTED_CA, CheckCause.CA_FILE):
        text = (
            f"the server's certificate is not signed by a CA in {bundle}"
            if outcome.failure == CheckCause.UNTRUSTED_CA
            else f"the CA bundle {bundle} cannot be used"
        )
        fix = f"download the RDS CA bundle ({RDS_CA_BUNDLE_URL}) and set sslrootcert to it"
        diag = Diagnosis(outcome.failure, text, fix, evidence)
        b.fail(f"{text}: {message}", fix, cause=outcome.failure)
    elif outcome.failure == CheckCause.CERT_EXPIRED:
        fix = (
            "the server certificate is outside its validity: rotate the instance's CA (aws rds modify-db-"
            "instance --ca-certificate-identifier ...) or fix the local clock"
        )
        diag = Diagnosis(CheckCause.CERT_EXPIRED, fix=fix, evidence=evidence)
        b.fail(message, fix, cause=CheckCause.CERT_EXPIRED)
    elif outcome.failure == CheckCause.TLS_REFUSED:
        fix = "the server does not offer TLS: check you reached PostgreSQL (not another service / tunnel)"
        diag = Diagnosis(CheckCause.TLS_REFUSED, fix=fix, evidence=evidence)
        b.fail(message, fix, cause=CheckCause.TLS_REFUSED)
    else:
        fix = "check that the address reaches PostgreSQL and the TLS settings (sslmode, sslrootcert)"
        diag = Diagnosis(CheckCause.TLS_ERROR, fix=fix, evidence=evidence)
        b.fail(message, fix, cause=CheckCause.TLS_ERROR)
    b.evidence.extend(diag.evidence)
    ctx.decide(diag, "inference")
    return False
