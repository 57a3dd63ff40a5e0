"""Monitor: per-cluster polling loops on one asyncio loop, each round ending in an immutable ClusterSnapshot.

Shape (dolphie's WorkerManager idea): one task per cluster; a round runs, then the next is armed `interval`
seconds after it *ended*, so rounds never overlap and a slow cluster only slows itself. Within a round, all
instances of the cluster (Aurora writer and readers each have their own pg_stat_activity) are queried
concurrently, each bounded by its connect and statement timeouts. A cluster in error keeps showing its last
good data, marked stale with its age, beside an ErrorInfo(step, message, hint).

boto3 (sessions, discovery, identity) runs in worker threads; psycopg is async on the caller's loop, so the
Monitor can run on Textual's own loop. No UI imports here (tests/test_import_hygiene.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pgiam_tui.collect.activity import ActivityCollector, ActivityResult
from pgiam_tui.config import ClusterConfig, Config, ConfigError
from pgiam_tui.db.connection import (
    Backoff,
    ConnectError,
    CredentialProvider,
    InstanceConnection,
    QueryError,
    iam_token_provider,
    keyring_password_provider,
    utcnow,
)
from pgiam_tui.db.conninfo import ConnTarget, one_line, scrub
from pgiam_tui.model import (
    ClusterSnapshot,
    ConnectionStatus,
    ConnEvent,
    ErrorInfo,
    FailureCount,
    Finding,
    IamSnapshot,
    InstanceInfo,
    SessionRow,
)

log = logging.getLogger(__name__)

SnapshotCallback = Callable[[ClusterSnapshot], None]
# hooks to the events and IAM collectors (engineer "events+iam"): (resolved, session, writer_fetch) -> part
EventsResult = tuple[tuple[ConnEvent, ...], tuple[FailureCount, ...], tuple[Finding, ...]]
EventsHook = Callable[[Any, Any, tuple[ConnEvent, ...]], Awaitable[EventsResult]]
IamHook = Callable[[Any, Any, Any, Any], Awaitable[IamSnapshot]]

DISCOVERY_REFRESH_S = 300.0  # members come and go (failover, scaling): rediscover now and then
# the IAM collector runs its roles query every round and paces its heavy AWS reads itself; this is an extra
# floor between its rounds (0 = every round)
IAM_REFRESH_S = 0.0
CLIENT_EVENTS_KEPT = 200
MIN_INTERVAL_S = 0.5


@dataclass(slots=True)
class _Watch:
    """Mutable per-cluster state, owned by the Monitor (snapshots handed out are immutable copies)."""

    cfg: ClusterConfig
    interval: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    refresh_requested: bool = False
    task: asyncio.Task[None] | None = None
    last_round_end: float = 0.0
    resolved: Any = None  # aws.discovery.ResolvedCluster
    resolved_at: float = 0.0
    identity_arn: str | None = None
    conns: dict[str, InstanceConnection] = field(default_factory=dict)
    # last good rows of each instance and when they were read (kept to show, marked stale, while it is down)
    rows: dict[str, tuple[tuple[SessionRow, ...], datetime]] = field(default_factory=dict)
    client_events: deque[ConnEvent] = field(default_factory=lambda: deque(maxlen=CLIENT_EVENTS_KEPT))
    events_hook: EventsHook | None = None
    iam_hook: IamHook | None = None
    events: tuple[ConnEvent, ...] = ()  # from the events collector (client events merged in by it)
    events_problems: tuple[Finding, ...] = ()
    events_merged_clients: bool = False
    iam_problems: tuple[Finding, ...] = ()
    failures: tuple[FailureCount, ...] = ()
    iam: IamSnapshot | None = None
    iam_at: float = 0.0
    latest: ClusterSnapshot | None = None


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
        self._watches: dict[str, _Watch] = {
            c.name: _Watch(cfg=c, interval=max(MIN_INTERVAL_S, c.refresh_s)) for c in config.clusters
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
        for w in self._watches.values():
            w.task = asyncio.create_task(self._loop(w), name=f"monitor:{w.cfg.name}")

    async def stop(self) -> None:
        """Stop every loop and close every connection."""
        self._running = False
        tasks = [w.task for w in self._watches.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in self._watches.values():
            w.task = None
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
        """One round of NAMES (default: all) concurrently; the snapshots, in config order."""
        watches = self._select(list(names) if names is not None else None)
        return list(await asyncio.gather(*(self._run_round(w) for w in watches)))

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
                kind="action",
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

    def _select(self, names: list[str] | None) -> list[_Watch]:
        if names is None:
            return list(self._watches.values())
        out = []
        for n in names:
            if n not in self._watches:
                known = ", ".join(self._watches) or "none"
                raise ConfigError(f"no cluster named {n!r} (known: {known})")
            out.append(self._watches[n])
        return out

    async def _loop(self, w: _Watch) -> None:
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

    async def _run_round(self, w: _Watch) -> ClusterSnapshot:
        async with w.lock:  # a refresh_now/collect_once never overlaps the loop's own round
            started = time.monotonic()
            try:
                snap = await self._round(w)
            except Exception as exc:  # a bug must not kill the loop: show it as this cluster's error
                log.exception("round of %s failed", w.cfg.name)
                snap = self._error_snapshot(w, ErrorInfo("internal", one_line(scrub(repr(exc)))))
            snap = replace(snap, round_ms=(time.monotonic() - started) * 1000.0)
            w.latest = snap
            w.last_round_end = time.monotonic()
        if self._on_snapshot is not None:
            try:
                self._on_snapshot(snap)
            except Exception:  # the listener's problem must not stop collection
                log.exception("on_snapshot callback failed for %s", w.cfg.name)
        return snap

    async def _round(self, w: _Watch) -> ClusterSnapshot:
        cfg = w.cfg
        try:
            session = await asyncio.to_thread(self._sessions.session, cfg.profile)
        except Exception as exc:
            return self._error_snapshot(w, _aws_error("credentials", exc, cfg))
        try:
            resolved = await self._resolve(w, session)
        except Exception as exc:
            return self._error_snapshot(w, _aws_error("discovery", exc, cfg))
        if w.identity_arn is None and cfg.auth == "iam":
            with contextlib.suppress(Exception):  # identity is informative; the token step reports failures
                w.identity_arn = await asyncio.to_thread(self._sessions.identity, cfg.profile)
        try:
            await self._sync_connections(w, resolved, session)
        except ConnectError as exc:
            return self._error_snapshot(w, ErrorInfo(exc.step, str(exc), exc.hint))

        conns = list(w.conns.values())
        activity = asyncio.gather(*(self._activity(w, c) for c in conns))
        results, _ = await asyncio.gather(activity, self._iam(w, resolved, session))
        # events after activity, so this round's own connection attempts are merged into this round's events
        await self._events(w, resolved, session)
        return self._build(w, resolved, conns, results)

    async def _resolve(self, w: _Watch, session: Any) -> Any:
        now = time.monotonic()
        if w.resolved is None or now - w.resolved_at >= self._discovery_refresh_s:
            from pgiam_tui.aws.discovery import resolve_cluster

            w.resolved = await asyncio.to_thread(resolve_cluster, w.cfg, session)
            w.resolved_at = now
            w.identity_arn = None  # ask again now and then too (expired SSO, changed role)
        return w.resolved

    async def _sync_connections(self, w: _Watch, resolved: Any, session: Any) -> None:
        """One InstanceConnection per watched instance; members that left the cluster are closed."""
        cfg = w.cfg
        wanted = [
            i for i in resolved.instances if cfg.watch_members or i.role in ("writer", "instance")
        ] or list(resolved.instances[:1])
        wanted_ids = {i.id for i in wanted}
        for iid in [iid for iid in w.conns if iid not in wanted_ids]:
            await w.conns.pop(iid).close()
            w.rows.pop(iid, None)
        for inst in wanted:
            if inst.id in w.conns:
                continue
            target = ConnTarget(
                cluster=cfg.name,
                instance_id=inst.id,
                role=inst.role,
                endpoint=inst.endpoint,
                port=inst.port,
                region=resolved.region,
                database=cfg.database,
                user=cfg.user,
                auth=cfg.auth,
                connect_host=inst.connect_host,
                connect_port=inst.connect_port,
                sslmode=cfg.sslmode,
                sslrootcert=cfg.sslrootcert,
                connect_timeout_s=cfg.connect_timeout_s,
                statement_timeout_ms=cfg.statement_timeout_ms,
                read_only=cfg.read_only,
            )
            provider: CredentialProvider = (
                iam_token_provider(session, target)
                if cfg.auth == "iam"
                else keyring_password_provider(cfg.name)
            )
            w.conns[inst.id] = InstanceConnection(
                target, provider, on_event=w.client_events.append, backoff=self._backoff
            )

    async def _activity(self, w: _Watch, conn: InstanceConnection) -> ActivityResult | BaseException:
        """The instance's sessions, or the exception that prevented them (bounded by the timeouts)."""
        cfg = w.cfg
        budget = cfg.connect_timeout_s + 10.0 + cfg.statement_timeout_ms / 1000.0 + 5.0
        try:
            async with asyncio.timeout(budget):
                return await ActivityCollector(conn.target.instance_id, cfg.user).collect(conn)
        except TimeoutError:
            message = f"{conn.target.instance_id}: no answer within {budget:.0f} s"
            await conn.discard(message)  # the session is in an unknown state mid-query: start afresh
            return ConnectError(message, step="timeout", hint="the instance or the network is slow or down")
        except (ConnectError, QueryError) as exc:
            return exc
        except Exception as exc:  # unexpected: keep the round going, report it
            log.exception("activity of %s failed", conn.target.instance_id)
            return exc

    async def _events(self, w: _Watch, resolved: Any, session: Any) -> None:
        if not self._collect_events:
            return
        if w.events_hook is None:
            w.events_hook = make_events_hook(w.cfg)
        if w.events_hook is None:
            return
        try:
            w.events, w.failures, w.events_problems = await w.events_hook(
                resolved, session, tuple(w.client_events)
            )
            w.events_merged_clients = True
        except Exception as exc:  # events are a side pane: keep the last ones, say why on the log
            log.warning("events of %s failed: %s", w.cfg.name, one_line(scrub(str(exc))))

    async def _iam(self, w: _Watch, resolved: Any, session: Any) -> None:
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
                    iam_session = await asyncio.to_thread(self._sessions.session, w.cfg.iam_profile)
                except Exception as exc:
                    w.iam_problems = (
                        Finding(
                            "warning",
                            "iam_unreadable",
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

    def _writer_fetch(self, w: _Watch) -> Any:
        for c in w.conns.values():
            if c.target.role in ("writer", "instance"):
                return c.fetch
        return next(iter(w.conns.values())).fetch if w.conns else None

    # -- snapshots ----------------------------------------------------------------------------------

    def _build(
        self,
        w: _Watch,
        resolved: Any,
        conns: list[InstanceConnection],
        results: list[ActivityResult | BaseException],
    ) -> ClusterSnapshot:
        now = utcnow()
        activity: list[SessionRow] = []
        findings: list[Finding] = []
        errors: list[tuple[InstanceConnection, BaseException]] = []
        oldest: datetime | None = None
        for conn, res in zip(conns, results, strict=True):
            iid = conn.target.instance_id
            if isinstance(res, ActivityResult):
                w.rows[iid] = (res.rows, now)
                activity.extend(res.rows)
                findings.extend(res.findings)
            else:
                errors.append((conn, res))
                if iid in w.rows:  # show the last good rows of a lost instance, marked stale
                    rows, at = w.rows[iid]
                    activity.extend(rows)
                    oldest = at if oldest is None or at < oldest else oldest
        instances = tuple(_instance_info(c) for c in conns)
        writer = next(
            (c for c in conns if c.target.role in ("writer", "instance")), conns[0] if conns else None
        )
        error: ErrorInfo | None = None
        if errors:
            # report the writer's problem first: it is the one the cluster endpoint reaches
            errors.sort(key=lambda e: e[0].target.role not in ("writer", "instance"))
            conn, exc = errors[0]
            more = f" (+{len(errors) - 1} more instances)" if len(errors) > 1 else ""
            error = ErrorInfo(
                getattr(exc, "step", "query"),
                f"{conn.target.instance_id}: {one_line(scrub(str(exc) or type(exc).__name__))}{more}",
                getattr(exc, "hint", "") or "",
            )
        snap = ClusterSnapshot(
            name=w.cfg.name,
            status="error" if error else "ok",
            collected_at=now,
            error=error,
            group=w.cfg.group,
            account_id=resolved.account_id,
            region=resolved.region,
            identity_arn=w.identity_arn,
            endpoint=resolved.endpoint,
            server_version=writer.server_version if writer else None,
            token_expires_at=writer.status.token_expires_at if writer else None,
            instances=instances,
            activity=tuple(activity),
            events=self._merged_events(w),
            failures=w.failures,
            iam=w.iam,
            findings=(*findings, *w.events_problems, *w.iam_problems),
            stale=oldest is not None,
            data_age_s=(now - oldest).total_seconds() if oldest is not None else None,
            actions_allowed=w.cfg.allow_actions,
        )
        return snap

    def _merged_events(self, w: _Watch) -> tuple[ConnEvent, ...]:
        """Log events plus the console's own attempts, newest first."""
        merged = list(w.events)
        if not w.events_merged_clients:  # no events collector: the console's own attempts alone
            merged.extend(w.client_events)
        merged.sort(key=lambda e: e.time.timestamp() if e.time else 0.0, reverse=True)
        return tuple(merged)

    def _error_snapshot(self, w: _Watch, error: ErrorInfo) -> ClusterSnapshot:
        """A whole-cluster failure (credentials, discovery, ...): the last good data, marked stale."""
        now = utcnow()
        last = w.latest
        ages = [at for _, at in w.rows.values()]
        oldest = min(ages) if ages else None
        activity = tuple(r for rows, _ in w.rows.values() for r in rows)
        return ClusterSnapshot(
            name=w.cfg.name,
            status="error",
            collected_at=now,
            error=error,
            group=w.cfg.group,
            account_id=last.account_id if last else w.cfg.account_id,
            region=last.region if last else w.cfg.region,
            identity_arn=w.identity_arn,
            endpoint=last.endpoint if last else w.cfg.endpoint,
            server_version=last.server_version if last else None,
            token_expires_at=last.token_expires_at if last else None,
            instances=tuple(_instance_info(c) for c in w.conns.values()),
            activity=activity,
            events=self._merged_events(w),
            failures=w.failures,
            iam=w.iam,
            findings=last.findings if last else (),
            stale=oldest is not None,
            data_age_s=(now - oldest).total_seconds() if oldest is not None else None,
            actions_allowed=w.cfg.allow_actions,
        )

    async def _close_all(self, w: _Watch) -> None:
        for conn in list(w.conns.values()):
            with contextlib.suppress(Exception):
                await conn.close()
        w.conns.clear()


def resolved_id(resolved: Any) -> str | None:
    """The resource id of a ResolvedCluster (None when unknown)."""
    value = getattr(resolved, "resource_id", None)
    return str(value) if value else None


def _instance_info(conn: InstanceConnection) -> InstanceInfo:
    st = conn.status
    t = conn.target
    return InstanceInfo(
        id=t.instance_id,
        role=t.role,
        endpoint=t.endpoint,
        port=t.port,
        status=st.state,
        server_version=conn.server_version,
        error=None if st.state == "connected" else _status_text(st),
    )


def _status_text(st: ConnectionStatus) -> str | None:
    """A one-line description of a non-connected state (attempt and next try included)."""
    if st.state == "connecting":
        return "connecting"
    parts: list[str] = [st.state]
    if st.attempt:
        parts.append(f"attempt {st.attempt}")
    if st.next_try_at is not None:
        parts.append(f"next try {st.next_try_at:%H:%M:%S}")
    text = ", ".join(parts)
    return f"{text}: {st.reason}" if st.reason else text


def _aws_error(step: str, exc: BaseException, cfg: ClusterConfig) -> ErrorInfo:
    """ErrorInfo for a boto3-side failure, with the hint of AwsCredentialError / DiscoveryError if any."""
    message = one_line(scrub(str(exc) or type(exc).__name__))
    hint = getattr(exc, "hint", None) or (
        f"run `pgiam-tui check {cfg.name}` for a step-by-step diagnosis" if step != "credentials" else ""
    )
    if step == "credentials" and not hint:
        hint = f"check the AWS profile {cfg.profile!r} (`pgiam-tui profiles --resolve`)"
    return ErrorInfo(step, message, hint)


def _optional_class(module: str, name: str) -> Any:
    """A collector class from a sibling module, or None while that module is not there (logged once)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.info("%s.%s not available: that pane stays empty", module, name)
        return None


def make_events_hook(cfg: ClusterConfig) -> EventsHook | None:
    """Bind collect/events.py's EventsCollector for one cluster (its cursors live in the object).

    It reads the log sources, joins AWS's IAM reasons and merges the console's own attempts (client events).
    """
    cls = _optional_class("pgiam_tui.collect.events", "EventsCollector")
    if cls is None:
        return None
    collector = cls(cfg)

    async def hook(resolved: Any, session: Any, client_events: tuple[ConnEvent, ...]) -> EventsResult:
        events, failures = await collector.collect(resolved, session, client_events=client_events)
        return tuple(events), tuple(failures), tuple(getattr(collector, "problems", ()))

    return hook


def make_iam_hook(cfg: ClusterConfig) -> IamHook | None:
    """Bind collect/iam_mapping.py's IamMappingCollector for one cluster (it caches its AWS reads)."""
    cls = _optional_class("pgiam_tui.collect.iam_mapping", "IamMappingCollector")
    if cls is None:
        return None
    collector = cls(cfg)

    async def hook(resolved: Any, session: Any, fetch: Any, iam_session: Any) -> IamSnapshot:
        result: IamSnapshot = await collector.collect(resolved, session, fetch, iam_session=iam_session)
        return result

    return hook
