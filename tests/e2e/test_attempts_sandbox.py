"""Connection attempts on the sandbox: every AWS reason right, checked against the stand-in's own record of
each refusal's true reason (`frontdoor-diagnostics.log`), round by round as the console reads and in one
read as `snapshot` does; `pgiam-tui events --cluster`; a forged log line from a user name with a line break
(the stand-in writes names unescaped, as PostgreSQL does) is never counted as a login."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from pgiam_tui.aws.discovery import ResolvedCluster, resolve_cluster
from pgiam_tui.aws.tokens import make_token
from pgiam_tui.collect.events import EventsCollector
from pgiam_tui.config import ClusterConfig, load_config
from pgiam_tui.model import Attempt
from pgiam_tui.vocabulary import LogSource

if TYPE_CHECKING:
    from pgiam_sandbox import Sandbox

NAME = "pgdemo-1"
USER = "oltp_rw_user"
pytestmark = pytest.mark.timeout(420)


def _cfg(sandbox: Sandbox) -> ClusterConfig:
    return load_config(sandbox.profiles_toml).cluster(NAME)


async def _resolve(sandbox: Sandbox) -> ResolvedCluster:
    return await asyncio.to_thread(
        resolve_cluster, _cfg(sandbox), sandbox.boto_session("instancecrossaccount")
    )


def _refused_logins(sandbox: Sandbox, count: int, turn: int, done: list[int]) -> None:
    """COUNT logins the front door refuses: a garbled token (InvalidToken) or a token of the read-only role
    for the read-write user (NotAuthorized), alternating by TURN so concurrent threads mix the reasons."""
    c = sandbox.cluster(NAME)
    ro = sandbox.boto_session("pgdemo-oltp-ro")
    for i in range(count):
        if (i + turn) % 2:
            password = "not-a-token"
        else:
            password = make_token(ro, c.endpoint, c.port, USER, c.region).value
        try:
            conn = psycopg.connect(
                host=c.endpoint, hostaddr=c.listen_host, port=c.listen_port, dbname=c.database, user=USER,
                password=password, sslmode="verify-full", sslrootcert=str(sandbox.ca_path),
                connect_timeout=10,
            )  # fmt: skip
        except psycopg.OperationalError:
            done[turn] += 1
        else:
            conn.close()


def _truth(sandbox: Sandbox) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    """(instance, client host:port) -> [(time, AWS code)], from the stand-in's record of every refusal's true
    reason (a list: the OS may reuse a client port)."""
    out: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for line in sandbox.diagnostic_log.read_text(encoding="utf-8").splitlines():
        stamp, _, rest = line.partition(" ")
        fields = dict(w.split("=", 1) for w in rest.split(" ")[:4] if "=" in w)
        if fields.get("code", "-") != "-":
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            out.setdefault((fields["instance"], fields["client"]), []).append((when, fields["code"]))
    return out


def _wrong(
    attempts: tuple[Attempt, ...], truth: dict[tuple[str, str], list[tuple[datetime, str]]]
) -> tuple[int, int]:
    """(refused IAM logins the record knows, of those: AWS reason wrong or missing)."""
    known = wrong = 0
    for a in attempts:
        recorded = truth.get((a.instance or "", f"{a.host}:{a.port}"), [])
        near = [(abs((at - a.time).total_seconds()), code) for at, code in recorded if a.time is not None]
        near = [x for x in near if x[0] <= 60]
        if not near or not a.failed:
            continue
        known += 1
        wrong += a.aws_code != min(near)[1]
    return known, wrong


async def test_every_aws_reason_right_round_by_round_and_in_one_read(sandbox: Sandbox) -> None:
    resolved = await _resolve(sandbox)
    session = sandbox.boto_session("instancecrossaccount")
    live = EventsCollector(_cfg(sandbox))
    await live.collect(resolved, session)  # the console is already running when the burst starts
    done = [0, 0, 0]
    threads = [threading.Thread(target=_refused_logins, args=(sandbox, 70, t, done)) for t in range(3)]
    for t in threads:
        t.start()
    # the console's rounds while the burst goes on (AWS's lines arrive in their own log group, in batches)
    while any(t.is_alive() for t in threads):
        await live.collect(resolved, session)
        await asyncio.sleep(0.3)
    for t in threads:
        t.join()
    assert sum(done) >= 200, done
    known = wrong = 0
    for _ in range(120):  # until every refusal and its AWS line reached CloudWatch (bounded)
        await live.collect(resolved, session)
        known, wrong = _wrong(live.attempts, _truth(sandbox))
        if known >= sum(done) and wrong == 0:
            break
        await asyncio.sleep(0.5)
    assert known >= sum(done), (known, sum(done))
    missing = sum(1 for a in live.attempts if a.failed and a.aws_code is None and a.user == USER)
    assert wrong == 0, f"{wrong} of {known} refused logins show a wrong or no AWS reason ({missing} none)"
    # one read of the same window, as `snapshot` does: the same attempts with the same reasons
    once = EventsCollector(_cfg(sandbox))
    await once.collect(resolved, session)
    live_codes = {a.key: a.aws_code for a in live.attempts if a.failed}
    once_codes = {a.key: a.aws_code for a in once.attempts if a.failed}
    assert {k: v for k, v in once_codes.items() if k in live_codes} == {
        k: v for k, v in live_codes.items() if k in once_codes
    }
    assert _wrong(once.attempts, _truth(sandbox))[1] == 0


def test_events_command_on_the_sandbox(sandbox: Sandbox, sandbox_env: dict[str, str]) -> None:
    # at least one refused login in the window, whatever ran before
    done = [0]
    _refused_logins(sandbox, 1, 0, done)
    doc: dict[str, list[dict[str, object]]] = {}
    for _ in range(60):
        run = subprocess.run(
            [sys.executable, "-m", "pgiam_tui.cli", "events", "--cluster", NAME, "--since", "10m", "--json"],
            capture_output=True, text=True, env=sandbox_env, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        doc = json.loads(run.stdout)
        if any(a["aws_code"] for a in doc["attempts"]):
            break
    assert set(doc) == {"attempts", "events"}
    failed = [a for a in doc["attempts"] if a["outcome"] == "failed" and a["aws_code"]]
    assert failed and all(a["method"] == "iam" and a["user"] for a in failed)
    bad = subprocess.run(
        [sys.executable, "-m", "pgiam_tui.cli", "events", "--cluster", NAME, "--until", "someday"],
        capture_output=True, text=True, env=sandbox_env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


FORGED = "x\n2026-12-03 18:00:00 UTC:6.6.6.6(4444):root"


async def test_forged_root_line_from_a_user_name_is_not_counted(sandbox: Sandbox) -> None:
    """A failed login whose user name holds a line break and a fake prefix: PostgreSQL (and the stand-in)
    write it unescaped, so the log holds a line that looks like `root` failing from 6.6.6.6."""
    c = sandbox.cluster(NAME)
    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(
            host=c.endpoint, hostaddr=c.listen_host, port=c.listen_port, dbname=c.database, user=FORGED,
            password="wrong", sslmode="verify-full", sslrootcert=str(sandbox.ca_path), connect_timeout=10,
        )  # fmt: skip
    # the line really is in the log, as PostgreSQL would write it
    text = Path(c.log_file).read_text(encoding="utf-8")
    assert "\n2026-12-03 18:00:00 UTC:6.6.6.6(4444):root@" in text
    file_cfg = ClusterConfig(name=NAME, log_source=LogSource.FILE, log_file=c.log_file, database=c.database)
    resolved = await _resolve(sandbox)
    session = sandbox.boto_session("instancecrossaccount")
    for cfg, res, sess in ((file_cfg, None, None), (_cfg(sandbox), resolved, session)):
        collector = EventsCollector(cfg)
        mine: list[Attempt] = []
        failures: tuple[object, ...] = ()
        for _ in range(60):
            _, failures = await collector.collect(res, sess)
            mine = [a for a in collector.attempts if a.user == FORGED]
            if mine:
                break
            await asyncio.sleep(0.5)
        assert mine, f"{cfg.log_source}: the forged name's own failed login was not read"
        assert all(a.failed and a.host != "6.6.6.6" for a in mine)
        assert not any(a.host == "6.6.6.6" or a.user == "root" for a in collector.attempts), cfg.log_source
        assert not any(getattr(f, "host", None) == "6.6.6.6" for f in failures)
