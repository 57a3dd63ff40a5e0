"""Monitor: per-cluster activity rounds on one asyncio loop, AWS parts on their own cadences.

Shape (dolphie's WorkerManager idea): one activity task per cluster; a round reads every watched instance
(Aurora writer and readers each have their own pg_stat_activity) concurrently, each within its own budget
(instances.py), then the next round is armed `interval` seconds after it *ended*. Discovery, connection
events, the IAM mapping and the caller identity are AWS reads: each runs on its own Cadence (aws_parts.py),
so AWS being slow or stalled never holds up an activity round, on the first paint or any later one. Every
change of any part publishes a fresh snapshot, assembled by the one function `assemble_snapshot`.

boto3 runs in worker threads; psycopg is async on the caller's loop, so the Monitor can run on Textual's own
loop. No UI imports here (tests/integration/test_import_hygiene.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import LiteralString

import boto3

from pgiam_tui.aws.db_credentials import iam_token_provider
from pgiam_tui.aws.discovery import ResolvedCluster, ResolvedInstance
from pgiam_tui.collect.events import EventsCollector
from pgiam_tui.collect.iam_mapping import IamMappingCollector
from pgiam_tui.config import ClusterConfig, Config, ConfigError
from pgiam_tui.db.connection import (
    Backoff,
    ConnectError,
    CredentialProvider,
    InstanceConnection,
    QueryError,
    keyring_password_provider,
    utcnow,
)
from pgiam_tui.db.conninfo import ConnTarget, one_line, scrub
from pgiam_tui.model import ClusterSnapshot, ConnectionStatus, ErrorInfo, SessionRow
from pgiam_tui.monitor.assemble import AWS_READ_BUDGET_S, assemble_snapshot
from pgiam_tui.monitor.aws_parts import SessionSource, discover, read_events, read_iam, read_identity
from pgiam_tui.monitor.cadence import Cadence
from pgiam_tui.monitor.cluster import ClusterRuntime
from pgiam_tui.monitor.idle_tx import terminate_idle_transactions
from pgiam_tui.monitor.instances import InstanceWatch

__all__ = ["Monitor", "SnapshotCallback"]

log = logging.getLogger("pgiam_tui.monitor")

SnapshotCallback = Callable[[ClusterSnapshot], None]

MIN_INTERVAL_S = 0.5
DISCOVERY_REFRESH_S = 60.0  # members come and go, the IAM flag changes: one or two Describe calls a minute
EVENTS_REFRESH_S = 10.0  # log reads (FilterLogEvents has the tightest quota: 5 per second per account)
IAM_REFRESH_S = 30.0  # the roles query; the IAM collector paces its heavier AWS reads itself
IDENTITY_REFRESH_S = 300.0
# The AWS side parts (events, IAM, identity) let the first activity round go first, for at most this long:
# on a new console, their clients' creation (service models parsed: CPU) and their threads would otherwise
# compete with the round for the one interpreter and hold back the first rows; the IAM mapping also needs
# the writer's session, which that round opens. A round stuck on a dead instance holds them no longer.
FIRST_ROUND_HEAD_START_S = 2.0


class Monitor:
    """Polls every configured cluster and hands every new ClusterSnapshot to `on_snapshot`.

    `sessions` hands out one boto3 session per profile (aws.session.SessionFactory). `on_snapshot` is
    called on the Monitor's loop (the UI posts a message from it; it must not block).
    """

    def __init__(
        self,
        config: Config,
        sessions: SessionSource,
        on_snapshot: SnapshotCallback | None = None,
        *,
        backoff: Backoff | None = None,
        collect_events: bool = True,
        collect_iam: bool = True,
        discovery_refresh_s: float = DISCOVERY_REFRESH_S,
        events_refresh_s: float = EVENTS_REFRESH_S,
        iam_refresh_s: float = IAM_REFRESH_S,
        aws_read_budget_s: float = AWS_READ_BUDGET_S,
    ) -> None:
        self.config = config
        self._sessions = sessions
        self._on_snapshot = on_snapshot
        self._backoff = backoff
        self._collect_events = collect_events
        self._collect_iam = collect_iam
        self._aws_read_budget_s = aws_read_budget_s
        self._every = {
            "discovery": discovery_refresh_s,
            "events": events_refresh_s,
            "iam": iam_refresh_s,
            "identity": IDENTITY_REFRESH_S,
        }
        self._clusters: dict[str, ClusterRuntime] = {
            c.name: ClusterRuntime(
                cfg=c,
                interval=max(MIN_INTERVAL_S, c.refresh_s),
                events_collector=EventsCollector(c),
                iam_collector=IamMappingCollector(c),
            )
            for c in config.clusters
        }
        self._running = False
        self._not_paused = asyncio.Event()
        self._not_paused.set()

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Cluster names in config order."""
        return tuple(self._clusters)

    async def start(self) -> None:
        """Start every cluster's activity task and AWS cadences on the running loop."""
        if self._running:
            return
        self._running = True
        for rt in self._clusters.values():
            self._make_cadences(rt)
            rt.cadences["discovery"].start()
            for part in ("events", "iam", "identity"):
                if part in rt.cadences:
                    rt.cadences[part].start(delay_s=0.0)
            rt.task = asyncio.create_task(self._loop(rt), name=f"monitor:{rt.cfg.name}")

    async def stop(self) -> None:
        """Stop every task and cadence and close every connection."""
        self._running = False
        tasks = [rt.task for rt in self._clusters.values() if rt.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rt in self._clusters.values():
            rt.task = None
            await asyncio.gather(*(c.stop() for c in rt.cadences.values()), return_exceptions=True)
            watches, rt.instances = list(rt.instances.values()), {}
            await asyncio.gather(*(w.close() for w in watches), return_exceptions=True)
            await asyncio.gather(*rt.closing, return_exceptions=True)

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- controls -----------------------------------------------------------------------------------

    async def refresh(self, name: str | None = None) -> None:
        """`r`: NAME (or every cluster) now: rediscover, retry failed connections at once (no backoff
        wait), read events and IAM afresh, and run an activity round (one round when not polling)."""
        selected = self._select([name] if name else None)
        for rt in selected:
            rt.iam_collector.invalidate()
            for w in rt.instances.values():
                w.conn.retry_now()
        if self._running and self._not_paused.is_set():
            for rt in selected:
                for cadence in rt.cadences.values():
                    cadence.poke()
                rt.refresh_requested = True
                rt.wake.set()
        else:
            await asyncio.gather(*(self._run_round(rt) for rt in selected))

    refresh_now = refresh  # the name the console's source has always called

    def set_interval(self, name: str, seconds: float) -> None:
        """Poll NAME every SECONDS (measured from the end of a round); takes effect at once."""
        rt = self._select([name])[0]
        rt.interval = max(MIN_INTERVAL_S, float(seconds))
        rt.wake.set()

    def interval(self, name: str) -> float:
        """The current polling interval of NAME in seconds."""
        return self._select([name])[0].interval

    def pause(self) -> None:
        """Stop starting rounds and AWS reads (those in flight finish); data stays as it is."""
        self._not_paused.clear()

    def resume(self) -> None:
        """Start rounds again."""
        self._not_paused.set()

    @property
    def paused(self) -> bool:
        """Whether polling is paused."""
        return not self._not_paused.is_set()

    def latest(self, name: str) -> ClusterSnapshot | None:
        """The newest snapshot of NAME, if any was published yet."""
        return self._select([name])[0].latest

    def connection_status(self, name: str) -> dict[str, ConnectionStatus]:
        """Per-instance connection state of NAME (connected / reconnecting attempt n, next try / failed)."""
        return {iid: w.conn.status for iid, w in self._select([name])[0].instances.items()}

    async def collect_once(self, names: Iterable[str] | None = None) -> list[ClusterSnapshot]:
        """One activity round and one run of every AWS part of NAMES (default: all), concurrently, after a
        discovery when the last one is older than the discovery cadence; the snapshots, in config order."""
        selected = self._select(list(names) if names is not None else None)
        for rt in selected:
            if not rt.cadences:
                self._make_cadences(rt)
        await asyncio.gather(*(self._collect_one(rt) for rt in selected))
        return [self._publish(rt) for rt in selected]

    async def _collect_one(self, rt: ClusterRuntime) -> None:
        found = rt.discovery.found
        if found is None or (utcnow() - found.at).total_seconds() >= self._every["discovery"]:
            await rt.cadences["discovery"].run_once()
        await self._run_round(rt)
        others = [c.run_once() for part, c in rt.cadences.items() if part != "discovery"]
        await asyncio.gather(*others)

    async def signal_backend(self, name: str, instance: str, pid: int, *, terminate: bool = False) -> str:
        """Cancel (or terminate) backend PID on INSTANCE of NAME; only where the config allows actions.

        Returns a one-line outcome; the action is recorded as an event (kind "action", source "client").
        Raises PermissionError when actions are not allowed for that cluster.
        """
        rt = self._select([name])[0]
        rt.require_actions()
        watch = rt.instances.get(instance)
        if watch is None:
            raise KeyError(f"{name}: no instance {instance!r}")
        verb = "terminate" if terminate else "cancel"
        sql: LiteralString = (
            "SELECT pg_catalog.pg_terminate_backend(%s)"
            if terminate
            else "SELECT pg_catalog.pg_cancel_backend(%s)"
        )
        try:
            rows = await watch.conn.fetch(sql, (pid,))
            ok = bool(rows and rows[0][0])
            outcome = f"{verb} backend {pid} on {instance}: {'done' if ok else 'no such backend'}"
        except (ConnectError, QueryError) as exc:
            outcome = f"{verb} backend {pid} on {instance} failed: {exc}"
        rt.record_action(instance, pid, outcome)
        return outcome

    async def terminate_idle_transactions(self, name: str, sessions: Sequence[SessionRow]) -> tuple[str, ...]:
        """Terminate the confirmed idle-in-transaction SESSIONS of NAME still idle in the same transaction
        (monitor/idle_tx.py); one outcome line each, each recorded as an action event."""
        return await terminate_idle_transactions(self._select([name])[0], sessions)

    # -- cadences, loops and rounds -----------------------------------------------------------------

    def _select(self, names: list[str] | None) -> list[ClusterRuntime]:
        if names is None:
            return list(self._clusters.values())
        out = []
        for n in names:
            if n not in self._clusters:
                known = ", ".join(self._clusters) or "none"
                raise ConfigError(f"no cluster named {n!r} (known: {known})")
            out.append(self._clusters[n])
        return out

    def _make_cadences(self, rt: ClusterRuntime) -> None:
        name = rt.cfg.name
        sessions = self._sessions

        async def do_discovery() -> None:
            await discover(rt, sessions)
            self._publish_update(rt)

        async def after_first_round() -> None:
            await rt.discovered.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rt.first_round.wait(), FIRST_ROUND_HEAD_START_S)

        async def do_events() -> None:
            await after_first_round()
            await read_events(rt)
            self._publish_update(rt)

        async def do_iam() -> None:
            await after_first_round()
            await read_iam(rt, sessions)
            self._publish_update(rt)

        async def do_identity() -> None:
            await after_first_round()
            await read_identity(rt, sessions)
            self._publish_update(rt)

        gate = self._not_paused
        rt.cadences["discovery"] = Cadence(
            f"discovery:{name}", self._every["discovery"], do_discovery, gate=gate
        )
        if self._collect_events:
            rt.cadences["events"] = Cadence(f"events:{name}", self._every["events"], do_events, gate=gate)
        if self._collect_iam:
            rt.cadences["iam"] = Cadence(f"iam:{name}", self._every["iam"], do_iam, gate=gate)
        rt.cadences["identity"] = Cadence(f"identity:{name}", self._every["identity"], do_identity, gate=gate)

    async def _loop(self, rt: ClusterRuntime) -> None:
        await rt.discovered.wait()  # the first round needs endpoints; later ones use the latest discovery
        while self._running:
            await self._not_paused.wait()
            await self._run_round(rt)
            # re-arm after the round ended: wait `interval`, or less when woken by refresh/set_interval
            while self._running:
                remaining = rt.last_round_end + rt.interval - time.monotonic()
                if rt.refresh_requested or remaining <= 0:
                    break
                rt.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rt.wake.wait(), remaining)
            rt.refresh_requested = False

    async def _run_round(self, rt: ClusterRuntime) -> ClusterSnapshot:
        async with rt.lock:  # a refresh/collect_once never overlaps the loop's own round
            started = time.monotonic()
            try:
                await self._round(rt)
            except Exception as exc:  # a bug must not kill the loop: show it as this cluster's error
                # no traceback in the log: exception text from drivers may echo connection parameters
                log.error("round of %s failed: %s", rt.cfg.name, _describe(exc))
                rt.error = ErrorInfo("internal", _describe(exc))
            rt.round_ms = (time.monotonic() - started) * 1000.0
            rt.last_round_end = time.monotonic()
        snapshot = self._publish(rt)
        rt.first_round.set()
        return snapshot

    async def _round(self, rt: ClusterRuntime) -> None:
        found = rt.discovery.found
        if found is None:
            rt.error = rt.discovery.error or ErrorInfo("discovery", f"{rt.cfg.name}: not discovered yet")
            return
        try:
            self._sync_instances(rt, found.resolved, found.session)
        except ConnectError as exc:
            rt.error = ErrorInfo(exc.step, str(exc), exc.hint)
            return
        if not rt.instances:
            message = f"{rt.cfg.name}: discovery found no instance to watch"
            rt.error = ErrorInfo("discovery", message, "is the cluster being created or deleted?")
            return
        rt.error = None
        await asyncio.gather(*(w.read() for w in rt.instances.values()))

    def _sync_instances(self, rt: ClusterRuntime, resolved: ResolvedCluster, session: boto3.Session) -> None:
        """One InstanceWatch per watched instance; members that left (or changed role or address, e.g.
        after a failover) are closed in the background and, if still wanted, reopened."""
        cfg = rt.cfg
        wanted = [
            i for i in resolved.instances if cfg.watch_members or i.role in ("writer", "instance")
        ] or list(resolved.instances[:1])
        targets = {inst.id: target_for(cfg, resolved, inst) for inst in wanted}
        for iid in list(rt.instances):
            if targets.get(iid) != rt.instances[iid].conn.target:
                old = rt.instances.pop(iid)
                closing = asyncio.create_task(old.close(), name=f"close:{iid}")
                rt.closing.add(closing)
                closing.add_done_callback(rt.closing.discard)
        for iid, target in targets.items():
            if iid in rt.instances:
                continue
            provider: CredentialProvider = (
                iam_token_provider(session, target)
                if cfg.auth == "iam"
                else keyring_password_provider(cfg.name)
            )
            conn = InstanceConnection(
                target, provider, on_event=rt.client_events.append, backoff=self._backoff
            )
            rt.instances[iid] = InstanceWatch(conn, cfg.user)

    # -- publishing ---------------------------------------------------------------------------------

    def _publish(self, rt: ClusterRuntime) -> ClusterSnapshot:
        snap = assemble_snapshot(rt.parts(), utcnow(), aws_read_budget_s=self._aws_read_budget_s)
        rt.latest = snap
        if self._on_snapshot is not None:
            try:
                self._on_snapshot(snap)
            except Exception:  # the listener's problem must not stop collection
                log.exception("on_snapshot callback failed for %s", rt.cfg.name)
        return snap

    def _publish_update(self, rt: ClusterRuntime) -> None:
        """A side part changed: publish, once the first round has (no snapshot without instances before)."""
        if rt.latest is not None and not rt.lock.locked():
            self._publish(rt)


def target_for(cfg: ClusterConfig, resolved: ResolvedCluster, inst: ResolvedInstance) -> ConnTarget:
    """Connection parameters of one discovered instance (token host = its endpoint, TCP = its tunnel)."""
    return ConnTarget(
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


def _describe(exc: BaseException) -> str:
    """Type and scrubbed one-line message of an unexpected exception (for logs and ErrorInfo)."""
    return one_line(scrub(f"{type(exc).__name__}: {exc}"))
