"""The login (psycopg with the token as password) and a look at the session it opens."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pgiam_tui.diagnose.causes import Diagnosis
from pgiam_tui.diagnose.context import CheckContext
from pgiam_tui.diagnose.result import StepBuilder
from pgiam_tui.fixquote import shell_word, sql_ident
from pgiam_tui.textsafe import clip
from pgiam_tui.vocabulary import CheckCause

APPLICATION_NAME = "pgiam-tui check"

_SESSION_SQL = """
select current_user,
       current_setting('server_version'),
       current_setting('transaction_read_only'),
       pg_is_in_recovery(),
       exists (select 1 from pg_roles where rolname = 'rds_iam'),
       coalesce((select pg_has_role(current_user, oid, 'member') from pg_roles where rolname = 'rds_iam'),
                false),
       coalesce((select pg_has_role(current_user, oid, 'member') from pg_roles where rolname = 'pg_monitor'),
                false)
"""

# Other users' sessions whose query text we cannot see (what a missing pg_monitor looks like to a DBA).
_HIDDEN_SQL = """
select count(*) filter (where query = '<insufficient privilege>'), count(*)
from pg_stat_activity where usename is distinct from current_user
"""

_SQLSTATE_BY_TEXT = (
    (re.compile(r"PAM authentication failed", re.I), "28000"),
    (re.compile(r"password authentication failed", re.I), "28P01"),
    (re.compile(r'database ".*" does not exist', re.I), "3D000"),
    (re.compile(r'role ".*" does not exist', re.I), "28000"),
    (re.compile(r"too many connections|remaining connection slots", re.I), "53300"),
    (re.compile(r"the database system is (starting up|shutting down|in recovery)", re.I), "57P03"),
)


def _server_message(exc: BaseException, secrets: tuple[str | None, ...]) -> str:
    """The error as one plain line, with any secret scrubbed out."""
    from pgiam_tui.db.conninfo import one_line, scrub

    return clip(one_line(scrub(str(exc), *secrets)), 400)


def _sqlstate(exc: BaseException, message: str) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state:
        return state
    for pattern, code in _SQLSTATE_BY_TEXT:
        if pattern.search(message):
            return code
    return None


async def _connect_kwargs(ctx: CheckContext) -> dict[str, Any]:
    from pgiam_tui.db.conninfo import ConnTarget, connect_kwargs

    cfg = ctx.cfg
    target = ConnTarget(
        cluster=cfg.name,
        instance_id=ctx.endpoint.split(".", 1)[0],
        role="writer",
        endpoint=ctx.endpoint,
        port=ctx.port,
        region=ctx.region,
        database=cfg.database,
        user=cfg.user,
        auth=cfg.auth,
        connect_host=ctx.connect_addr if ctx.tunnel else None,
        connect_port=ctx.connect_port,
        sslmode=cfg.sslmode,
        sslrootcert=cfg.sslrootcert,
        connect_timeout_s=cfg.connect_timeout_s,
        statement_timeout_ms=cfg.statement_timeout_ms,
        read_only=True,
    )
    secret = ctx.token.value if ctx.token is not None else ctx.password
    kwargs = await connect_kwargs(target, secret)
    if not ctx.tunnel and ctx.connect_addr is not None:
        # The address the address step resolved: libpq then skips its own lookup (same answer, less time).
        kwargs["hostaddr"] = ctx.connect_addr
    kwargs["application_name"] = APPLICATION_NAME
    return kwargs


async def step_authentication(ctx: CheckContext, b: StepBuilder) -> bool:
    """Log in with the token (or keyring password); a refusal is explained from AWS's log or by inference."""
    cfg = ctx.cfg
    if cfg.auth == "password":
        from pgiam_tui.secrets import SecretStoreError, get_password

        try:
            ctx.password = await asyncio.to_thread(get_password, cfg.name)
        except SecretStoreError as exc:
            fix = f"pgiam-tui password set {shell_word(cfg.name)}"
            b.fail(clip(str(exc)), fix, cause=CheckCause.CONFIG_INVALID)
            ctx.decide(Diagnosis(CheckCause.CONFIG_INVALID, clip(str(exc)), fix))
            return False
        if ctx.password is None:
            fix = f"pgiam-tui password set {shell_word(cfg.name)}"
            b.fail(
                "no password stored in the OS keyring for this cluster", fix, cause=CheckCause.CONFIG_INVALID
            )
            ctx.decide(Diagnosis(CheckCause.CONFIG_INVALID, "no password stored for this cluster", fix))
            return False
    elif ctx.token is None:
        b.skip("not tried: no token")
        return False
    if ctx.prefetch is not None:
        await ctx.prefetch  # psycopg, imported in the background while the AWS steps waited on the network
    import psycopg

    from pgiam_tui.db.connection import open_session  # psycopg, imported late on purpose

    secrets = (ctx.token.value if ctx.token else None, ctx.password)
    attempt_local_s = ctx.clock().timestamp()
    try:
        kwargs = await _connect_kwargs(ctx)
        ctx.conn = await open_session(kwargs)
    except (psycopg.Error, OSError) as exc:
        message = _server_message(exc, secrets)
        state = _sqlstate(exc, message)
        await _explain_refusal(ctx, b, message, state, attempt_local_s)
        return False
    what = "an IAM token" if cfg.auth == "iam" else "the keyring password"
    via = f" over {ctx.tls_summary}" if ctx.tls_summary else ""
    b.ok(f"logged in as {cfg.user} to database {cfg.database} with {what}{via}")
    return True


async def _explain_refusal(
    ctx: CheckContext, b: StepBuilder, message: str, state: str | None, attempt_local_s: float
) -> None:
    cfg = ctx.cfg
    b.evidence.append(f"server: {message}" + (f" (SQLSTATE {state})" if state else ""))
    low = message.lower()
    if "pam authentication failed" in low:
        # Imported here: IAM evidence (logs, policies) is only needed when a login was refused.
        from pgiam_tui.diagnose.refusal import explain_iam_refusal

        diag = await explain_iam_refusal(ctx, b, attempt_local_s)
    elif state == "28P01" or "password authentication failed" in low:
        if cfg.auth == "iam":
            diag = Diagnosis(
                CheckCause.NOT_IN_RDS_IAM,
                f"{cfg.user} is not a member of rds_iam: the server asked for an ordinary password check "
                "(SQLSTATE 28P01) instead of IAM (PAM)",
                f"GRANT rds_iam TO {sql_ident(cfg.user)};  (as a user with the rds_superuser role)",
                ["a token fails as a password: 'password authentication failed', not a PAM failure"],
            )
        else:
            diag = Diagnosis(
                CheckCause.AUTH_FAILED,
                "the password was refused",
                f"pgiam-tui password set {shell_word(cfg.name)} (or check whether {cfg.user} is in rds_iam: "
                "members cannot log in with a password)",
            )
    elif state == "3D000":
        diag = Diagnosis(
            CheckCause.DATABASE_MISSING,
            f"database {cfg.database!r} does not exist on the server",
            f'set database = an existing one (e.g. "postgres") for {cfg.name} in the config, '
            f"or CREATE DATABASE {sql_ident(cfg.database)}",
        )
    elif 'role "' in low and "does not exist" in low:
        diag = Diagnosis(
            CheckCause.USER_MISSING,
            f"database user {cfg.user!r} does not exist",
            f"CREATE ROLE {sql_ident(cfg.user)} LOGIN; GRANT rds_iam TO {sql_ident(cfg.user)};"
            if cfg.auth == "iam"
            else f"CREATE ROLE {sql_ident(cfg.user)} LOGIN PASSWORD ...;",
        )
    elif "certificate" in low or "ssl" in low:
        diag = Diagnosis(
            CheckCause.TLS_ERROR,
            f"libpq's TLS setup failed: {message}",
            "check sslmode and sslrootcert (the RDS CA bundle)",
        )
    elif "server closed the connection" in low or state == "57P03" or "connection refused" in low:
        diag = Diagnosis(
            CheckCause.SERVER_UNAVAILABLE,
            fix="check the instance status (aws rds describe-db-instances) and its events; "
            "retry when available",
        )
    elif "timeout" in low:
        diag = Diagnosis(
            CheckCause.CONNECT_ERROR,
            f"the login timed out: {message}",
            "raise connect_timeout_s or check the network/tunnel latency",
        )
    else:
        diag = Diagnosis(
            CheckCause.AUTH_FAILED if (state or "").startswith("28") else CheckCause.CONNECT_ERROR,
            fix="read the server's message above",
        )
    diag.evidence.insert(0, f"server: {message}")
    b.fail(message, diag.fix, cause=diag.code)
    ctx.decide(diag, ctx.evidence_source or "inference")


async def step_session(ctx: CheckContext, b: StepBuilder) -> bool:
    """Who we are in the session, server version, read-only, and the roles monitoring needs."""
    conn = ctx.conn
    if conn is None:
        b.skip("not tried: not connected")
        return False
    import psycopg

    cfg = ctx.cfg
    try:
        async with conn.cursor() as cur:
            await cur.execute(_SESSION_SQL)
            row = await cur.fetchone()
            assert row is not None
            user, version, read_only, recovery, has_rds_iam_role, in_rds_iam, in_pg_monitor = row
            await cur.execute(_HIDDEN_SQL)
            hidden_row = await cur.fetchone()
    except psycopg.Error as exc:
        message = _server_message(exc, (ctx.token.value if ctx.token else None, ctx.password))
        b.fail(message, "check the user's privileges", cause=CheckCause.SESSION_ERROR)
        ctx.decide(Diagnosis(CheckCause.SESSION_ERROR, evidence=[message]), "inference")
        return False
    finally:
        ctx.conn = None
        await conn.close()
    hidden, others = (int(hidden_row[0]), int(hidden_row[1])) if hidden_row else (0, 0)
    roles = [name for name, member in (("rds_iam", in_rds_iam), ("pg_monitor", in_pg_monitor)) if member]
    where = "reader (in recovery)" if recovery else "writer"
    detail = (
        f"current_user {clip(str(user))}, member of [{', '.join(roles) or 'none'}], "
        f"server {clip(str(version))}, "
        f"{where}, read-only session: {read_only}"
    )
    if not in_pg_monitor:
        fix = f"GRANT pg_monitor TO {sql_ident(cfg.user)};"
        evidence = [
            "pg_has_role(current_user, 'pg_monitor', 'member') = false",
            f"{hidden} of {others} other sessions show query text '<insufficient privilege>'",
        ]
        b.fail(
            f"{detail}; not in pg_monitor: other users' query text is hidden",
            fix,
            cause=CheckCause.PG_MONITOR_MISSING,
        )
        b.evidence.extend(evidence)
        ctx.decide(Diagnosis(CheckCause.PG_MONITOR_MISSING, fix=fix, evidence=evidence), "inference")
        return False
    hint = None
    if cfg.auth == "iam" and has_rds_iam_role and not in_rds_iam:
        hint = f"{cfg.user} is not in rds_iam (yet logged in with a token?)"
    b.ok(detail, hint)
    return True
