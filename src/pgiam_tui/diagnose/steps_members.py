"""The member instances step: the console watches every Aurora member (writer and readers) on its own
connection, through its own tunnel, with a token signed for its own endpoint. The steps before checked the
cluster endpoint in depth; this one logs in to each member the way the console will, concurrently, and
says which one would fail and why.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgiam_tui.diagnose.causes import Diagnosis
from pgiam_tui.diagnose.context import CheckContext
from pgiam_tui.diagnose.probe import is_ip, resolve, tcp_connect, tls_probe
from pgiam_tui.diagnose.result import StepBuilder
from pgiam_tui.textsafe import clip
from pgiam_tui.vocabulary import CheckCause

if TYPE_CHECKING:
    from pgiam_tui.aws.discovery import ResolvedInstance


@dataclass(frozen=True)
class MemberOutcome:
    """How logging in to one member went."""

    instance: ResolvedInstance
    cause: CheckCause | None  # None: logged in
    message: str
    ms: float


async def _member(ctx: CheckContext, inst: ResolvedInstance) -> MemberOutcome:
    from pgiam_tui.aws.tokens import make_token
    from pgiam_tui.db.conninfo import ConnTarget, connect_kwargs, one_line, scrub

    cfg = ctx.cfg
    started = time.perf_counter()

    def done(cause: CheckCause | None, message: str) -> MemberOutcome:
        return MemberOutcome(inst, cause, message, (time.perf_counter() - started) * 1000.0)

    addr = inst.connect_host or inst.endpoint
    try:
        if not is_ip(addr):
            addr = (await asyncio.to_thread(resolve, addr, inst.connect_port))[0]
    except OSError as exc:
        return done(CheckCause.DNS_FAILURE, f"{addr} does not resolve: {clip(str(exc))}")
    try:
        sock = await asyncio.to_thread(tcp_connect, addr, inst.connect_port, cfg.connect_timeout_s)
    except ConnectionRefusedError:
        return done(CheckCause.TCP_REFUSED, f"{addr}:{inst.connect_port} refused the connection")
    except TimeoutError:
        return done(CheckCause.TCP_TIMEOUT, f"{addr}:{inst.connect_port} timed out")
    except OSError as exc:
        return done(CheckCause.TCP_UNREACHABLE, f"{addr}:{inst.connect_port}: {clip(str(exc))}")
    if cfg.sslmode != "disable":
        tls = await asyncio.to_thread(
            tls_probe, sock, addr=addr, port=inst.connect_port, server_name=inst.endpoint,
            sslmode=cfg.sslmode, sslrootcert=cfg.sslrootcert, timeout_s=cfg.connect_timeout_s,
        )  # fmt: skip
        if tls.failure is not None:
            return done(tls.failure, f"TLS: {clip(tls.message)}")
    else:
        sock.close()
    secret: str | None = ctx.password
    if cfg.auth == "iam":
        assert ctx.session is not None and ctx.region is not None
        token = await asyncio.to_thread(
            make_token, ctx.session, inst.endpoint, inst.port, cfg.user, ctx.region
        )
        secret = token.value
    target = ConnTarget(
        cluster=cfg.name, instance_id=inst.id, role=inst.role, endpoint=inst.endpoint, port=inst.port,
        region=ctx.region, database=cfg.database, user=cfg.user, auth=cfg.auth,
        connect_host=inst.connect_host, connect_port=inst.connect_port, sslmode=cfg.sslmode,
        sslrootcert=cfg.sslrootcert, connect_timeout_s=cfg.connect_timeout_s,
        statement_timeout_ms=cfg.statement_timeout_ms,
    )  # fmt: skip
    import psycopg

    from pgiam_tui.db.connection import open_session  # psycopg, imported late on purpose

    try:
        kwargs = await connect_kwargs(target, secret)
        kwargs["application_name"] = "pgiam-tui check"
        conn = await open_session(kwargs)
    except (psycopg.Error, OSError) as exc:
        message = clip(one_line(scrub(str(exc), secret)), 300)
        low = message.lower()
        cause = CheckCause.AUTH_FAILED if "authentication failed" in low else CheckCause.CONNECT_ERROR
        return done(cause, message)
    try:
        await conn.execute("select 1")
    except psycopg.Error as exc:
        return done(CheckCause.SESSION_ERROR, clip(one_line(scrub(str(exc), secret)), 300))
    finally:
        await conn.close()
    return done(None, "logged in")


async def _safe_member(ctx: CheckContext, inst: ResolvedInstance) -> MemberOutcome:
    """_member, with anything unexpected (a credential error for the token, say) as that member's outcome."""
    started = time.perf_counter()
    try:
        return await _member(ctx, inst)
    except Exception as exc:
        from pgiam_tui.aws.errors import AwsCredentialError

        message = exc.message if isinstance(exc, AwsCredentialError) else type(exc).__name__
        return MemberOutcome(
            inst, CheckCause.CONNECT_ERROR, clip(message), (time.perf_counter() - started) * 1000.0
        )


async def step_members(ctx: CheckContext, b: StepBuilder) -> bool:
    """Log in to every member instance the console will watch (concurrently)."""
    cluster = ctx.cluster
    if cluster is None:
        b.skip("not tried: no cluster")
        return True
    members = [i for i in cluster.instances if i.endpoint != ctx.endpoint]
    if not members:
        b.skip("no member instances apart from the endpoint checked above")
        return True
    outcomes = await asyncio.gather(*(_safe_member(ctx, inst) for inst in members))
    lines = [
        f"{o.instance.role} {o.instance.id} ({o.instance.endpoint} via "
        f"{o.instance.connect_host or o.instance.endpoint}:{o.instance.connect_port}): "
        + ("ok" if o.cause is None else f"FAILED [{o.cause}] {o.message}")
        + f", {o.ms:.0f} ms"
        for o in outcomes
    ]
    bad = [o for o in outcomes if o.cause is not None]
    if not bad:
        b.ok("; ".join(lines))
        return True
    first = bad[0]
    inst = first.instance
    if inst.connect_host is None and ctx.tunnel:
        # The endpoint goes through a tunnel but this member has none: it is reached by DNS, which is what
        # failed (hostaddr/local_port cover the config's own endpoint only).
        fix = (
            f'add a [clusters.tunnels] entry "{inst.endpoint}" = "127.0.0.1:PORT" for a tunnel to '
            f"{inst.id}, or set watch_members = false to watch the cluster endpoint only"
        )
    elif inst.connect_host is not None and (first.cause or "").startswith("tcp"):
        fix = f"member {inst.id}: check its tunnel ({inst.connect_host}:{inst.connect_port}): is it up?"
    else:
        fix = f"member {inst.id}: the cluster endpoint works, so compare this member's tunnel and endpoint"
    b.fail("; ".join(lines), fix, cause=first.cause)
    b.evidence.extend(lines)
    ctx.decide(
        Diagnosis(
            first.cause or CheckCause.CONNECT_ERROR,
            f"member {first.instance.role} {first.instance.id}: {first.message}",
            fix,
            lines,
        ),
        "inference",
    )
    return False
