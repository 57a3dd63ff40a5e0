"""Monitor: per-cluster polling loops on one asyncio loop, each round ending in an immutable ClusterSnapshot.

Shape (dolphie's WorkerManager idea): one task per cluster; a round runs, then the next is armed `interval`
seconds after it *ended*, so rounds never overlap and a slow cluster only slows itself. Within a round, all
instances of the cluster (Aurora writer and readers each have their own pg_stat_activity) are queried
concurrently, each bounded by its connect and statement timeouts. A cluster in error keeps showing its last
good data, marked stale with its age, beside an ErrorInfo(step, message, hint).

A round is discovery + connections + the activity query, and its snapshot goes out as soon as that is in.
The side parts (connection events, IAM mapping, caller identity) are slow AWS reads: each round starts them
in the background (at most one of each in flight per cluster, in a thread pool of their own), and when one
finishes, an updated snapshot (the last one with the new part merged in) goes out; a round that runs while
they are busy merges their latest results. So activity never waits for IAM or CloudWatch, on the first
round (first paint) or any later one. `collect_once` (the `snapshot` command) waits for the side parts too.

boto3 (sessions, discovery, identity) runs in worker threads; psycopg is async on the caller's loop, so the
Monitor can run on Textual's own loop. No UI imports here (an import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from typing import Any

from pgiam_tui.aws.credential_failure import credential_failure
from pgiam_tui.aws.db_credentials import iam_token_provider
from pgiam_tui.collect.activity import ActivityCollector, ActivityResult
from pgiam_tui.collect.aws_threads import run_side_thread
from pgiam_tui.collect.server_health import collect_health
from pgiam_tui.config import Config, ConfigError
from pgiam_tui.db.connection import (
    Backoff,
    ConnectError,
    CredentialProvider,
    InstanceConnection,
    QueryError,
    keyring_password_provider,
    utcnow,
)
from pgiam_tui.db.conninfo import one_line, scrub
from pgiam_tui.model import (
    ClusterSnapshot,
    ConnectionStatus,
    ConnEvent,
    ErrorInfo,
    EventKind,
    Finding,
    IamSnapshot,
)
from pgiam_tui.monitor_state import (
    ClusterWatch,
    aws_error,
    build_snapshot,
    error_snapshot,
    make_events_hook,
    make_iam_hook,
    resolved_id,
    target_for,
    with_side_parts,
)
from pgiam_tui.vocabulary import FindingCode

__all__ = ["Monitor", "SnapshotCallback"]

log = logging.getLogger(__name__)

SnapshotCallback = Callable[[ClusterSnapshot], None]

DISCOVERY_REFRESH_S = 300.0  # members come and go (failover, scaling): rediscover now and then
# the IAM collector runs its roles query every round and paces its heavy AWS reads itself; this is an extra
# floor between its rounds (0 = every round)
IAM_REFRESH_S = 0.0
MIN_INTERVAL_S = 0.5


class Monitor:
    """Polls every configured cluster and hands each round's ClusterSnapshot to `on_snapshot`.

    `sessions` is an aws.session.SessionFactory (one boto3 session per profile). `on_snapshot` is called on
    the Monitor's loop after every round (the UI posts a message from it; it must not block).
    """

    def __init__(
        self,
        config: Config,
        sessions: Any,
        on_snapshot: SnapshotCallback | None = None,
        *,
        backoff: Backoff | None = None,
        collect_events: bool = True,
        collect_iam: bool = True,
        discovery_refresh_s: float = DISCOVERY_REFRESH_S,
        iam_refresh_s: float = IAM_REFRESH_S,
    ) -> None:
        self.config = config
        self._sessions = sessions
        self._on_snapshot = on_snapshot
        self._backoff = backoff
        self._collect_events = collect_events
        self._collect_iam = collect_iam
        self._discovery_refresh_s = discovery_refresh_s
        self._iam_refresh_s = iam_refresh_s
        self._watches: dict[str, ClusterWatch] = {
            c.name: ClusterWatch(cfg=c, interval=max(MIN_INTERVAL_S, c.refresh_s)) for c in config.clusters
        }
        self._running = False
        self._not_paused = asyncio.Event()
        self._not_paused.set()

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Cluster names in config order."""
        return tuple(self._watches)

    async def start(self) -> None:
        """Start one polling task per cluster on the running loop (the first rounds begin at once)."""
        if self._running:
            return
        self._running = True
        loop = asyncio.get_running_loop()
        for w in self._watches.values():
            # the first round's slow blocking part (credentials, discovery) starts in a thread right now,
            # not when the loop first runs the task: the UI composing its screen meanwhile is not waited for
            w.warmup = loop.run_in_executor(None, self._warm, w.cfg)
            w.task = asyncio.create_task(self._loop(w), name=f"monitor:{w.cfg.name}")

    async def stop(self) -> None:
        """Stop every loop and side task and close every connection."""
        self._running = False
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        tasks += [t for w in self._watches.values() for t in w.side_tasks.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in self._watches.values():
            if w.warmup is not None:
                w.warmup.cancel()  # its thread finishes on its own; the result is dropped
                w.warmup = None
            w.task = None
            w.side_tasks.clear()
            await self._close_all(w)

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- controls -----------------------------------------------------------------------------------

    async def refresh_now(self, name: str | None = None) -> None:
        """Collect NAME (or every cluster) now: wakes running loops, or runs one round when not polling."""
        watches = self._select([name] if name else None)
        if self._running and self._not_paused.is_set():
            for w in watches:
                w.refresh_requested = True
                w.wake.set()
        else:
            await asyncio.gather(*(self._run_round(w) for w in watches))

    def set_interval(self, name: str, seconds: float) -> None:
        """Poll NAME every SECONDS (measured from the end of a round); takes effect at once."""
        w = self._select([name])[0]
        w.interval = max(MIN_INTERVAL_S, float(seconds))
        w.wake.set()  # re-arm the wait with the new interval

    def interval(self, name: str) -> float:
        """The current polling interval of NAME in seconds."""
        return self._select([name])[0].interval

    def pause(self) -> None:
        """Stop starting rounds (a round in flight finishes); data stays as it is."""
        self._not_paused.clear()

    def resume(self) -> None:
        """Start rounds again."""
        self._not_paused.set()

    @property
    def paused(self) -> bool:
        """Whether polling is paused."""
        return not self._not_paused.is_set()

    def latest(self, name: str) -> ClusterSnapshot | None:
        """The newest snapshot of NAME, if any round finished yet."""
        return self._select([name])[0].latest

    def connection_status(self, name: str) -> dict[str, ConnectionStatus]:
        """Per-instance connection state of NAME (connected / reconnecting attempt n, next try / failed)."""
        return {iid: c.status for iid, c in self._select([name])[0].conns.items()}

    async def collect_once(self, names: Iterable[str] | None = None) -> list[ClusterSnapshot]:
        """One round of NAMES (default: all) concurrently, side parts (events, IAM) included; the snapshots,
        in config order."""
        watches = self._select(list(names) if names is not None else None)
        snaps = list(await asyncio.gather(*(self._run_round(w) for w in watches)))
        await asyncio.gather(*(self.side_settled(w.cfg.name) for w in watches))
        return [w.latest or snap for w, snap in zip(watches, snaps, strict=True)]

    async def side_settled(self, name: str) -> None:
        """Wait until the side parts (events, IAM, identity) of NAME in flight now are done and merged."""
        w = self._select([name])[0]
        pending = [t for t in w.side_tasks.values() if not t.done()]
        await asyncio.gather(*pending, return_exceptions=True)

    async def signal_backend(self, name: str, instance: str, pid: int, *, terminate: bool = False) -> str:
        """Cancel (or terminate) backend PID on INSTANCE of NAME; only where the config allows actions.

        Returns a one-line outcome; the action is recorded as an event (kind "action", source "client").
        Raises PermissionError when actions are not allowed for that cluster.
        """
        w = self._select([name])[0]
        if not w.cfg.allow_actions:
            raise PermissionError(
                f"{name}: actions are not allowed (set allow_actions = true in profiles.toml)"
            )
        conn = w.conns.get(instance)
        if conn is None:
            raise KeyError(f"{name}: no instance {instance!r}")
        verb = "terminate" if terminate else "cancel"
        sql: Any = (
            "SELECT pg_catalog.pg_terminate_backend(%s)"
            if terminate
            else "SELECT pg_catalog.pg_cancel_backend(%s)"
        )
        try:
            rows = await conn.fetch(sql, (pid,))
            ok = bool(rows and rows[0][0])
            outcome = f"{verb} backend {pid} on {instance}: {'done' if ok else 'no such backend'}"
        except (ConnectError, QueryError) as exc:
            outcome = f"{verb} backend {pid} on {instance} failed: {exc}"
        w.client_events.append(
            ConnEvent(
                time=utcnow(),
                kind=EventKind.ACTION,
                user=w.cfg.user,
                database=w.cfg.database,
                pid=pid,
                source="client",
                message=outcome,
                instance=instance,
            )
        )
        return outcome

    # -- loops and rounds ---------------------------------------------------------------------------

    def _select(self, names: list[str] | None) -> list[ClusterWatch]:
        if names is None:
            return list(self._watches.values())
        out = []
        for n in names:
            if n not in self._watches:
                known = ", ".join(self._watches) or "none"
                raise ConfigError(f"no cluster named {n!r} (known: {known})")
            out.append(self._watches[n])
        return out

    async def _loop(self, w: ClusterWatch) -> None:
        while self._running:
            await self._not_paused.wait()
            await self._run_round(w)
            # re-arm after the round ended: wait `interval`, or less when woken by refresh_now/set_interval
            while self._running:
                remaining = w.last_round_end + w.interval - time.monotonic()
                if w.refresh_requested or remaining <= 0:
                    break
                w.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(w.wake.wait(), remaining)
            w.refresh_requested = False

    async def _run_round(self, w: ClusterWatch) -> ClusterSnapshot:
        async with w.lock:  # a refresh_now/collect_once never overlaps the loop's own round
            started = time.monotonic()
            try:
                snap = await self._round(w)
            except Exception as exc:  # a bug must not kill the loop: show it as this cluster's error
                # no traceback in the log: exception text from drivers may echo connection parameters
                log.error("round of %s failed: %s", w.cfg.name, _describe(exc))
                snap = error_snapshot(w, ErrorInfo("internal", _describe(exc)))
            snap = replace(snap, round_ms=(time.monotonic() - started) * 1000.0)
            w.latest = snap
            w.last_round_end = time.monotonic()
        self._emit(w, snap)
        return snap

    def _emit(self, w: ClusterWatch, snap: ClusterSnapshot) -> None:
        if self._on_snapshot is not None:
            try:
                self._on_snapshot(snap)
            except Exception:  # the listener's problem must not stop collection
                log.exception("on_snapshot callback failed for %s", w.cfg.name)

    def _warm(self, cfg: Any) -> tuple[Any, Any]:
        """Session and discovery of CFG (blocking, in a worker thread): the start of a first round."""
        from pgiam_tui.aws.discovery import resolve_cluster

        session = self._sessions.session(cfg.profile)
        return session, resolve_cluster(cfg, session)

    async def _round(self, w: ClusterWatch) -> ClusterSnapshot:
        cfg = w.cfg
        if w.warmup is not None:
            warm, w.warmup = w.warmup, None
            with contextlib.suppress(Exception):  # on failure the steps below run again and report it
                w.session, w.resolved = await warm
                w.resolved_at = time.monotonic()
        session = w.session
        if session is None:
            # once per discovery period: the worker threads are shared (events and IAM reads use them too),
            # so a steady round must not wait for one just to look a cached session up
            try:
                session = w.session = await asyncio.to_thread(self._sessions.session, cfg.profile)
            except Exception as exc:
                return error_snapshot(w, aws_error("credentials", exc, cfg))
        w.discovery_problems = ()
        try:
            resolved = await self._resolve(w, session)
        except Exception as exc:
            # credentials are resolved lazily, at discovery's first call: a credentials failure (an IMDS
            # outage, an expired SSO session) belongs to the credentials step, with its real reason
            failure = await asyncio.to_thread(credential_failure, exc, cfg.profile)
            if w.resolved is None:
                if failure is not None:
                    return error_snapshot(w, aws_error("credentials", failure, cfg))
                return error_snapshot(w, aws_error("discovery", exc, cfg))
            # a failed *re*discovery: open sessions still work, so keep watching what we knew
            info = aws_error("discovery", exc, cfg)
            w.discovery_problems = (
                Finding(
                    "warning", FindingCode.DISCOVERY_FAILED, f"rediscovery failed: {info.message}", info.hint
                ),
            )
            w.resolved_at = time.monotonic()  # try again after the next refresh period, not every round
            resolved = w.resolved
        if w.identity_arn is None and cfg.auth == "iam":
            self._start_side(w, "identity", self._identity(w))
        try:
            await self._sync_connections(w, resolved, session)
        except ConnectError as exc:
            return error_snapshot(w, ErrorInfo(exc.step, str(exc), exc.hint))

        conns = list(w.conns.values())
        if not conns:
            message = f"{cfg.name}: discovery found no instance to watch"
            return error_snapshot(
                w, ErrorInfo("discovery", message, "is the cluster being created or deleted?")
            )
        results = await asyncio.gather(*(self._activity(w, c) for c in conns))
        snap = build_snapshot(w, resolved, conns, results)
        # the side parts start after activity: they never hold up this round's snapshot, they use the
        # connections this round opened (IAM's roles query), and the events merge this round's own attempts
        self._start_side(w, "iam", self._iam(w, resolved, session))
        self._start_side(w, "events", self._events(w, resolved, session))
        return snap

    def _start_side(self, w: ClusterWatch, part: str, work: Coroutine[Any, Any, None]) -> None:
        """Run WORK in the background unless that part of W is still busy from an earlier round."""
        busy = w.side_tasks.get(part)
        if busy is not None and not busy.done():
            work.close()  # never started: no "coroutine was never awaited" warning
            return
        w.side_tasks[part] = asyncio.create_task(
            self._side(w, part, work), name=f"monitor:{w.cfg.name}:{part}"
        )

    async def _side(self, w: ClusterWatch, part: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:  # a bug must not go unseen, nor stop later rounds from starting this part
            log.error("%s of %s failed: %s", part, w.cfg.name, _describe(exc))
        # one update for the parts that run together (fewer repaints): the last one to finish publishes;
        # a part still busy at the next round has its results merged by that round's snapshot anyway
        me = asyncio.current_task()
        if not any(t is not me and not t.done() for t in w.side_tasks.values()):
            self._publish_side(w)

    def _publish_side(self, w: ClusterWatch) -> None:
        """Send the last snapshot again with the side parts' latest results merged in.

        Not while a round is running: that round's snapshot merges them anyway (and the loop is
        single-threaded, so no round can be between building its snapshot and storing it as `latest`)."""
        if w.latest is None or w.lock.locked():
            return
        snap = with_side_parts(w.latest, w)
        if snap == w.latest:
            return
        w.latest = snap
        self._emit(w, snap)

    async def _identity(self, w: ClusterWatch) -> None:
        with contextlib.suppress(Exception):  # identity is informative; the token step reports failures
            w.identity_arn = await run_side_thread(self._sessions.identity, w.cfg.profile)

    async def _resolve(self, w: ClusterWatch, session: Any) -> Any:
        now = time.monotonic()
        if w.resolved is None or now - w.resolved_at >= self._discovery_refresh_s:
            from pgiam_tui.aws.discovery import resolve_cluster

            w.resolved = await asyncio.to_thread(resolve_cluster, w.cfg, session)
            w.resolved_at = now
            w.identity_arn = None  # ask again now and then too (expired SSO, changed role)
            w.session = None  # and pick up a SessionFactory.clear() (e.g. after `aws sso login`)
        return w.resolved

    async def _sync_connections(self, w: ClusterWatch, resolved: Any, session: Any) -> None:
        """One InstanceConnection per watched instance; members that left (or changed role, e.g. after a
        failover, or address) are closed and, if still wanted, reopened."""
        cfg = w.cfg
        wanted = [
            i for i in resolved.instances if cfg.watch_members or i.role in ("writer", "instance")
        ] or list(resolved.instances[:1])
        targets = {inst.id: target_for(cfg, resolved, inst) for inst in wanted}
        for iid in list(w.conns):
            if targets.get(iid) != w.conns[iid].target:
                await w.conns.pop(iid).close()
                if iid not in targets:
                    w.rows.pop(iid, None)
        for iid, target in targets.items():
            if iid in w.conns:
                continue
            provider: CredentialProvider = (
                iam_token_provider(session, target)
                if cfg.auth == "iam"
                else keyring_password_provider(cfg.name)
            )
            w.conns[iid] = InstanceConnection(
                target, provider, on_event=w.client_events.append, backoff=self._backoff
            )

    async def _activity(self, w: ClusterWatch, conn: InstanceConnection) -> ActivityResult | BaseException:
        """The instance's sessions, or the exception that prevented them (bounded by the timeouts)."""
        cfg = w.cfg
        budget = cfg.connect_timeout_s + 10.0 + cfg.statement_timeout_ms / 1000.0 + 5.0
        try:
            async with asyncio.timeout(budget):
                result = await ActivityCollector(conn.target.instance_id, cfg.user).collect(conn)
                # server-wide figures (connections, transactions, replica lag) on the same session
                return replace(result, health=await collect_health(conn, conn.target.instance_id))
        except TimeoutError:
            message = f"{conn.target.instance_id}: no answer within {budget:.0f} s"
            await conn.discard(message)  # the session is in an unknown state mid-query: start afresh
            return ConnectError(message, step="timeout", hint="the instance or the network is slow or down")
        except (ConnectError, QueryError) as exc:
            return exc
        except Exception as exc:  # unexpected: keep the round going, report it
            log.error("activity of %s failed: %s", conn.target.instance_id, _describe(exc))
            return exc

    async def _events(self, w: ClusterWatch, resolved: Any, session: Any) -> None:
        if not self._collect_events:
            return
        if w.events_hook is None:
            w.events_hook = make_events_hook(w.cfg)
        if w.events_hook is None:
            return
        try:
            w.events, w.failures, w.events_problems, w.attempts = await w.events_hook(
                resolved, session, tuple(w.client_events)
            )
            w.events_merged_clients = True
        except Exception as exc:  # events are a side pane: keep the last ones, say why on the log
            log.warning("events of %s failed: %s", w.cfg.name, one_line(scrub(str(exc))))

    async def _iam(self, w: ClusterWatch, resolved: Any, session: Any) -> None:
        if not self._collect_iam:
            return
        now = time.monotonic()
        if w.iam is not None and now - w.iam_at < self._iam_refresh_s:
            return
        if w.iam_hook is None:
            w.iam_hook = make_iam_hook(w.cfg)
        fetch = self._writer_fetch(w)
        if w.iam_hook is not None and fetch is not None:
            iam_session = None
            w.iam_problems = ()
            if w.cfg.iam_profile:
                try:
                    iam_session = await run_side_thread(self._sessions.session, w.cfg.iam_profile)
                except Exception as exc:
                    w.iam_problems = (
                        Finding(
                            "warning",
                            FindingCode.IAM_UNREADABLE,
                            f"IAM profile {w.cfg.iam_profile!r} unusable: {one_line(scrub(str(exc)))}",
                            getattr(exc, "hint", None) or "check iam_profile in profiles.toml",
                        ),
                    )
            try:
                w.iam = await w.iam_hook(resolved, session, fetch, iam_session)
                w.iam_at = now
                return
            except Exception as exc:
                log.warning("IAM mapping of %s failed: %s", w.cfg.name, one_line(scrub(str(exc))))
        if w.iam is None:
            # no IAM collector (or no session yet): what discovery knows (flag, resource id) is still true
            w.iam = IamSnapshot(iam_auth_enabled=resolved.iam_auth_enabled, resource_id=resolved_id(resolved))

    def _writer_fetch(self, w: ClusterWatch) -> Any:
        for c in w.conns.values():
            if c.target.role in ("writer", "instance"):
                return c.fetch
        return next(iter(w.conns.values())).fetch if w.conns else None

    # -- snapshots ----------------------------------------------------------------------------------

    async def _close_all(self, w: ClusterWatch) -> None:
        for conn in list(w.conns.values()):
            with contextlib.suppress(Exception):
                await conn.close()
        w.conns.clear()


def _describe(exc: BaseException) -> str:
    """Type and scrubbed one-line message of an unexpected exception (for logs and ErrorInfo)."""
    return one_line(scrub(f"{type(exc).__name__}: {exc}"))
