"""Log sources (CloudWatch over moto's server, RDS log files via Stubber, local file tail), the
iam-db-auth-error parser and join, and the EventsCollector end to end on moto's CloudWatch Logs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from helpers.moto_server import moto_session, running_moto
from pgiam_tui.collect.attempts import failure_counts, join_attempts
from pgiam_tui.collect.events import EventsCollector, choose_source
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.log_sources import (
    CONNECTION_FILTER_PATTERN,
    TRUNCATION_MARKER,
    CloudWatchLogSource,
    FileTailSource,
    RdsLogFileSource,
)
from pgiam_tui.collect.logparse import parse_line
from pgiam_tui.config import ClusterConfig
from pgiam_tui.model import ConnEvent, EventKind
from pgiam_tui.vocabulary import LogSource

REGION = "us-east-1"


# ---------------------------------------------------------------------------------------------------- moto


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server of this module's own (real HTTP), stopped at the end."""
    with running_moto() as url:
        yield url


@pytest.fixture()
def session(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    return moto_session(moto_url, monkeypatch, REGION)


@pytest.fixture()
def logs(session: boto3.Session) -> Any:
    return session.client("logs")


@pytest.fixture()
def group(logs: Any) -> Iterator[str]:
    name = f"/aws/rds/cluster/t-{uuid.uuid4().hex[:8]}/postgresql"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="pg-writer")
    logs.create_log_stream(logGroupName=name, logStreamName="pg-reader")
    yield name
    logs.delete_log_group(logGroupName=name)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _line(dt: datetime, body: str, user: str = "pgmonitor", pid: int = 100) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S} UTC:10.0.0.5(40000):{user}@demo:[{pid}]:{body}"


def _put(logs: Any, group: str, stream: str, items: list[tuple[datetime, str]]) -> None:
    events = [{"timestamp": _ms(t), "message": m} for t, m in sorted(items, key=lambda x: x[0])]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


# ---------------------------------------------------------------------------------------------- CloudWatch


def test_cloudwatch_incremental_no_duplicates_and_late_events(logs: Any, group: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FakeClock(now)
    t0 = now - timedelta(seconds=30)
    _put(
        logs,
        group,
        "pg-writer",
        [(t0 + timedelta(seconds=i), _line(t0, f"LOG:  connection received: n={i}")) for i in range(3)],
    )
    src = CloudWatchLogSource(group, filter_pattern=None, clock=clock, overlap_s=120)
    first = src.poll(logs)
    assert [r.text.rsplit("=", 1)[1] for r in first] == ["0", "1", "2"]
    assert {r.instance for r in first} == {"pg-writer"}
    assert first[0].time == t0
    assert src.poll(logs) == []  # nothing new: nothing returned again

    # a late event: its timestamp is older than the newest seen, but inside the overlap window (the source
    # catches events ingested up to overlap_s after their own timestamp)
    late = t0 + timedelta(seconds=1, milliseconds=500)
    _put(logs, group, "pg-reader", [(late, _line(late, "LOG:  connection received: n=late"))])
    clock.now = now + timedelta(seconds=30)
    again = src.poll(logs)
    assert [(r.text.rsplit("=", 1)[1], r.instance) for r in again] == [("late", "pg-reader")]
    assert src.poll(logs) == []


def test_cloudwatch_pagination_reads_every_page(logs: Any, group: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        (now - timedelta(seconds=100 - i), _line(now, f"LOG:  connection received: n={i}")) for i in range(25)
    ]
    _put(logs, group, "pg-writer", items)
    src = CloudWatchLogSource(group, filter_pattern=None, page_size=4, clock=FakeClock(now))
    got = src.poll(logs)
    assert [int(r.text.rsplit("=", 1)[1]) for r in got] == list(range(25))


def test_cloudwatch_failure_mid_read_leaves_no_gap(logs: Any, group: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        (now - timedelta(seconds=50 - i), _line(now, f"LOG:  connection received: n={i}")) for i in range(10)
    ]
    _put(logs, group, "pg-writer", items)

    class Flaky:
        """Fails on the second page, like a network error in the middle of a read."""

        def __init__(self) -> None:
            self.calls = 0

        def filter_log_events(self, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == 2:
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "FilterLogEvents"
                )
            return logs.filter_log_events(**kw)

    src = CloudWatchLogSource(group, filter_pattern=None, page_size=3, clock=FakeClock(now))
    with pytest.raises(ClientError):
        src.poll(Flaky())
    got = src.poll(logs)
    assert [int(r.text.rsplit("=", 1)[1]) for r in got] == list(range(10))


def test_cloudwatch_filter_pattern_is_sent(logs: Any, group: str) -> None:
    """Moto ignores `?"a" ?"b"` OR patterns (matches all), so check what we ask for, on the wire."""
    seen: list[dict[str, Any]] = []
    logs.meta.events.register(
        "provide-client-params.logs.FilterLogEvents", lambda params, **_: seen.append(params)
    )
    CloudWatchLogSource(group).poll(logs)
    assert seen[0]["filterPattern"] == CONNECTION_FILTER_PATTERN
    assert seen[0]["logGroupName"] == group


def test_cloudwatch_missing_group_raises_resource_not_found(logs: Any) -> None:
    src = CloudWatchLogSource("/aws/rds/cluster/none/postgresql")
    with pytest.raises(ClientError) as err:
        src.poll(logs)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --------------------------------------------------------------------------------------- RDS log files


def _rds() -> Any:
    return boto3.client("rds", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


def _files(*names: str) -> dict[str, Any]:
    return {
        "DescribeDBLogFiles": [
            {"LogFileName": n, "LastWritten": 1000 + i, "Size": 10} for i, n in enumerate(names)
        ]
    }


def test_rds_logfile_tail_then_marker_pages_truncation_and_rotation() -> None:
    client = _rds()
    clock = FakeClock(datetime(2025, 9, 22, 12, 0, tzinfo=UTC))
    src = RdsLogFileSource(["w1"], first_lines=50, clock=clock)
    old, cur, new = (
        "error/postgresql.log.2025-09-22-10",
        "error/postgresql.log.2025-09-22-11",
        "error/postgresql.log.2025-09-22-12",
    )
    since = int(clock() * 1000) - 3600 * 1000
    with Stubber(client) as stub:
        # round 1: only the newest file, only its tail
        stub.add_response(
            "describe_db_log_files",
            _files(old, cur, "error/upgrade.log"),
            {"DBInstanceIdentifier": "w1", "FileLastWritten": since},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "a1\na2\n", "Marker": "11:100", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": cur, "NumberOfLines": 50},
        )
        assert [r.text for r in src.poll(client)] == ["a1", "a2"]
        # round 2: continue from the marker; three pages, a line split across pages 1-2, a truncation marker
        stub.add_response(
            "describe_db_log_files",
            _files(old, cur),
            {"DBInstanceIdentifier": "w1", "FileLastWritten": since},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "a3\nsplit-", "Marker": "11:200", "AdditionalDataPending": True},
            {"DBInstanceIdentifier": "w1", "LogFileName": cur, "Marker": "11:100"},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {
                "LogFileData": f"line\ncut-at-1M\n {TRUNCATION_MARKER}\n",
                "Marker": "11:300",
                "AdditionalDataPending": True,
            },
            {"DBInstanceIdentifier": "w1", "LogFileName": cur, "Marker": "11:200"},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "-rest\na4\npartial", "Marker": "11:400", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": cur, "Marker": "11:300"},
        )
        assert [r.text for r in src.poll(client)] == ["a3", "split-line", "cut-at-1M-rest", "a4"]
        assert src.truncations == 1
        # round 3: the held-back partial line completes; a new file (rotation) is read from its start
        stub.add_response(
            "describe_db_log_files",
            _files(cur, new),
            {"DBInstanceIdentifier": "w1", "FileLastWritten": since},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "-done\n", "Marker": "11:500", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": cur, "Marker": "11:400"},
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "b1\n", "Marker": "12:10", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": new, "Marker": "0"},
        )
        rows = src.poll(client)
        assert [r.text for r in rows] == ["partial-done", "b1"]
        assert {(r.instance, r.source) for r in rows} == {("w1", "rds_logfile")}
        stub.assert_no_pending_responses()


def test_rds_logfile_error_keeps_cursor_and_other_instances() -> None:
    client = _rds()
    clock = FakeClock(datetime(2025, 9, 22, 12, 0, tzinfo=UTC))
    since = int(clock() * 1000) - 3600 * 1000
    f = "error/postgresql.log.2025-09-22-11"
    src = RdsLogFileSource(["w1", "r1"], first_lines=10, clock=clock)
    with Stubber(client) as stub:
        for inst in ("w1", "r1"):
            stub.add_response(
                "describe_db_log_files", _files(f), {"DBInstanceIdentifier": inst, "FileLastWritten": since}
            )
            stub.add_response(
                "download_db_log_file_portion",
                {"LogFileData": f"{inst}-1\n", "Marker": "m1", "AdditionalDataPending": False},
                {"DBInstanceIdentifier": inst, "LogFileName": f, "NumberOfLines": 10},
            )
        assert [r.text for r in src.poll(client)] == ["w1-1", "r1-1"]
        # w1's download fails (throttled); r1 still delivers; w1's cursor does not move
        stub.add_response(
            "describe_db_log_files", _files(f), {"DBInstanceIdentifier": "w1", "FileLastWritten": since}
        )
        stub.add_client_error(
            "download_db_log_file_portion",
            service_error_code="Throttling",
            expected_params={"DBInstanceIdentifier": "w1", "LogFileName": f, "Marker": "m1"},
        )
        stub.add_response(
            "describe_db_log_files", _files(f), {"DBInstanceIdentifier": "r1", "FileLastWritten": since}
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "r1-2\n", "Marker": "m2", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "r1", "LogFileName": f, "Marker": "m1"},
        )
        assert [r.text for r in src.poll(client)] == ["r1-2"]
        assert src.last_errors == ["w1: Throttling"]
        # w1 retried from the same marker: nothing lost
        stub.add_response(
            "describe_db_log_files", _files(f), {"DBInstanceIdentifier": "w1", "FileLastWritten": since}
        )
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": "w1-2\n", "Marker": "m2", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": f, "Marker": "m1"},
        )
        stub.add_response(
            "describe_db_log_files",
            {"DescribeDBLogFiles": []},
            {"DBInstanceIdentifier": "r1", "FileLastWritten": since},
        )
        assert [r.text for r in src.poll(client)] == ["w1-2"]
        stub.assert_no_pending_responses()


def test_rds_logfile_all_instances_failing_raises() -> None:
    client = _rds()
    src = RdsLogFileSource(["w1"])
    with Stubber(client) as stub:
        stub.add_client_error("describe_db_log_files", service_error_code="AccessDenied")
        with pytest.raises(ClientError):
            src.poll(client)


# ------------------------------------------------------------------------------------------- file tail


def test_file_tail_appends_partial_lines_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "pg.log"
    path.write_text("old1\nold2\n")
    src = FileTailSource(path, tail_bytes=6)  # first poll: from the next full line in the last 6 bytes
    try:
        assert [r.text for r in src.poll()] == ["old2"]
        with path.open("a") as f:
            f.write("n1\nhalf")
        assert [r.text for r in src.poll()] == ["n1"]
        with path.open("a") as f:
            f.write("-line\n")
        assert [r.text for r in src.poll()] == ["half-line"]
        # rotation: the old file gets a last line and is renamed, a new file starts
        with path.open("a") as f:
            f.write("last-of-old\n")
        os.rename(path, tmp_path / "pg.log.1")
        path.write_text("first-of-new\n")
        assert [r.text for r in src.poll()] == ["last-of-old", "first-of-new"]
        # truncation in place (copytruncate)
        path.write_text("t\n")
        assert [r.text for r in src.poll()] == ["t"]
        # gone for a while, then back
        path.unlink()
        assert src.poll() == []
        path.write_bytes(b"back \xff\n")
        assert [r.text for r in src.poll()] == ["back \ufffd"]
    finally:
        src.close()


# -------------------------------------------------------------------------------------------- iam log

_TS = "2025-09-22T12:02:51,954 [ERROR] "
_AUTHN = "Failed to authenticate the connection request for user "
IAM_LINES = {
    "iam_invalid_token": _TS
    + _AUTHN
    + "'user_2' because the provided token is malformed or otherwise invalid. "
    "(Status Code: 400, Error Code: InvalidToken)",
    "iam_expired_token": _TS + _AUTHN + "user_2 because the token age is longer than 15 minutes. "
    "(Status Code: 400, Error Code:ExpiredToken)",
    "iam_not_authorized": _TS + "Failed to authorize the connection request for user user_2 because the IAM "
    "policy assumed by the caller 'arn:aws:sts::111111111111:assumed-role/pg-monitor-role/s1' is not "
    "authorized "
    "to perform `rds-db:connect` on the DB instance. (Status Code: 403, Error Code: NotAuthorized)",
    "iam_throttled": _TS + _AUTHN + "'user_2' because of throttling. "
    "(Status Code: 429, Error Code: ThrottlingException)",
    "iam_internal_error": _TS + _AUTHN + "'user_2' due to an internal error. "
    "(Status Code: 500, Error Code: InternalError)",
}


@pytest.mark.parametrize("kind", sorted(IAM_LINES))
def test_iam_line_codes(kind: str) -> None:
    ev = parse_iam_line(IAM_LINES[kind], instance="w1")
    assert ev.kind == kind
    assert ev.user == "user_2"
    assert ev.time == datetime(2025, 9, 22, 12, 2, 51, 954000, tzinfo=UTC)
    assert (ev.source, ev.instance) == ("iam_log", "w1")
    assert ev.iam_reason is not None and ev.iam_reason.split(":")[0] in IAM_LINES[kind]
    if kind == "iam_not_authorized":
        assert ev.caller_arn == "arn:aws:sts::111111111111:assumed-role/pg-monitor-role/s1"
    else:
        assert ev.caller_arn is None


def test_iam_line_unknown_is_other_with_fallback_time() -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    ev = parse_iam_line("something else entirely \x1b[0m", fallback_time=t)
    assert (ev.kind, ev.time, ev.iam_reason) == ("other", t, None)
    assert ev.message == "something else entirely \x1b[0m"  # kept as written; outputs escape it once


def _fail(t: datetime, user: str, pid: int, inst: str = "w1") -> list[ConnEvent]:
    return [
        replace(
            parse_line(_line(t, "LOG:  pam_authenticate failed: Permission denied", user, pid)), instance=inst
        ),
        replace(
            parse_line(_line(t, f'FATAL:  PAM authentication failed for user "{user}"', user, pid)),
            instance=inst,
        ),
    ]


def test_join_pins_each_reason_to_the_nearest_attempt_of_the_same_user() -> None:
    t = datetime(2025, 9, 22, 12, 2, 50, tzinfo=UTC)
    a = _fail(t, "user_2", 1)
    b = _fail(t + timedelta(seconds=3), "user_2", 2)
    c = _fail(t, "other_user", 3)
    far = _fail(t + timedelta(minutes=5), "user_2", 4)
    iam1 = replace(parse_iam_line(IAM_LINES["iam_expired_token"]), instance="w1")  # 12:02:51.954
    iam2 = replace(
        parse_iam_line(IAM_LINES["iam_not_authorized"].replace("12:02:51", "12:02:53")), instance="w1"
    )
    # iam1 is nearer to b (12:02:53) than to a (12:02:50), yet iam2 is nearer still to b: closest pairs first
    out = join_attempts([*a, *b, *c, *far, iam1, iam2])
    reasons = {(x.pid, x.aws_code) for x in out}
    assert reasons == {(1, "ExpiredToken"), (2, "NotAuthorized"), (3, None), (4, None)}
    assert [x.caller_arn for x in out if x.pid == 2] == [iam2.caller_arn]
    # another instance's iam line does not join
    other = replace(iam1, instance="r1")
    assert all(x.aws_code is None for x in join_attempts([*a, other]))


def test_failure_counts_count_attempts_not_lines_over_15_minutes() -> None:
    now = datetime(2025, 9, 22, 12, 30, tzinfo=UTC)
    events = [
        *_fail(now - timedelta(minutes=1), "u1", 1),
        *_fail(now - timedelta(minutes=2), "u1", 2),
        *_fail(now - timedelta(minutes=20), "u1", 3),  # too old
        *_fail(now - timedelta(minutes=3), "u2", 4),
        ConnEvent(now, EventKind.AUTH_FAILED, user="u1", source="client", message="our own attempt"),
    ]
    counts = failure_counts(join_attempts(events), now=now)
    assert [(c.user, c.host, c.count) for c in counts] == [("u1", "10.0.0.5", 2), ("u2", "10.0.0.5", 1)]
    assert counts[0].last == now - timedelta(minutes=1)


# ------------------------------------------------------------------------------------ EventsCollector


@dataclass(frozen=True)
class _Inst:
    id: str


@dataclass(frozen=True)
class _Resolved:
    region: str
    kind: str
    log_exports: tuple[str, ...]
    log_group: str | None
    iam_log_group: str | None
    instances: tuple[_Inst, ...]


def test_choose_source() -> None:
    cfg = ClusterConfig(name="c")
    cw = _Resolved(REGION, "aurora", ("postgresql",), "/g", None, (_Inst("w"),))
    nocw = replace(cw, log_exports=())
    assert choose_source(cfg, cw) == "cloudwatch"
    assert choose_source(cfg, nocw) == "rds_logfile"
    assert choose_source(replace(cfg, log_file="/x"), None) == "file"
    assert choose_source(cfg, None) == "none"
    assert choose_source(replace(cfg, log_source=LogSource.NONE), cw) == "none"


async def test_events_collector_on_cloudwatch(logs: Any, group: str, session: boto3.Session) -> None:
    iam_group = group.replace("/postgresql", "/iam-db-auth-error")
    logs.create_log_group(logGroupName=iam_group)
    logs.create_log_stream(logGroupName=iam_group, logStreamName="pg-writer")
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        t = now - timedelta(minutes=2)
        ok = (
            "LOG:  connection authorized: user=pgmonitor database=demo application_name=x SSL enabled "
            "(protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"
        )
        _put(
            logs,
            group,
            "pg-writer",
            [
                (t, _line(t, "LOG:  connection received: host=10.0.0.5 port=40000", "[unknown]", 10)),
                (t, _line(t, ok, pid=10)),
                (t, _line(t, "LOG:  duration: 1 ms  statement: select 1", pid=10)),  # not a connection line
                (
                    t + timedelta(seconds=1),
                    _line(t, "LOG:  pam_authenticate failed: Permission denied", "ro", 11),
                ),
                (
                    t + timedelta(seconds=1),
                    _line(t, 'FATAL:  PAM authentication failed for user "ro"', "ro", 11),
                ),
            ],
        )
        iam_text = (
            IAM_LINES["iam_expired_token"]
            .replace("user_2", "ro")
            .replace("2025-09-22T12:02:51,954", f"{t + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S},100")
        )
        _put(logs, iam_group, "pg-writer", [(t + timedelta(seconds=1), iam_text)])
        resolved = _Resolved(
            REGION, "aurora", ("postgresql", "iam-db-auth-error"), group, iam_group, (_Inst("pg-writer"),)
        )
        col = EventsCollector(ClusterConfig(name="c", region=REGION))
        client_ev = ConnEvent(
            now, EventKind.CLIENT_CONNECT, user="pgmonitor", source="client", message="connected"
        )
        events, failures = await col.collect(resolved, session, client_events=[client_ev])
        assert col.source_kind == "cloudwatch" and col.problems == ()
        kinds = [e.kind for e in events]
        assert kinds == [
            "received",
            "authorized",
            "auth_failed",
            "auth_failed",
            "iam_expired_token",
            "client_connect",
        ]
        auth = events[1]
        assert (auth.user, auth.instance, auth.ssl) == (
            "pgmonitor",
            "pg-writer",
            {"protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "bits": 256},
        )
        assert [(a.user, a.outcome, a.aws_code) for a in col.attempts if a.failed] == [
            ("ro", "failed", "ExpiredToken")
        ]
        assert [(f.user, f.count) for f in failures] == [("ro", 1)]
        # next round: nothing new, nothing duplicated (the client event passed again too)
        again, _ = await col.collect(resolved, session, client_events=[client_ev])
        assert again == events
    finally:
        logs.delete_log_group(logGroupName=iam_group)


async def test_events_collector_reports_unreadable_log_without_raising(session: boto3.Session) -> None:
    resolved = _Resolved(REGION, "aurora", ("postgresql",), "/aws/rds/cluster/nope/postgresql", None, ())
    col = EventsCollector(ClusterConfig(name="c", region=REGION))
    events, failures = await col.collect(resolved, session)
    assert (events, failures) == ((), ())
    assert [p.code for p in col.problems] == ["events_unreadable"]
    assert "ResourceNotFoundException" in col.problems[0].message


async def test_events_collector_file_source(tmp_path: Path) -> None:
    path = tmp_path / "pg.log"
    t = datetime.now(UTC).replace(microsecond=0)
    path.write_text(_line(t, 'FATAL:  password authentication failed for user "app"', "app", 5) + "\n")
    col = EventsCollector(ClusterConfig(name="c", log_source=LogSource.FILE, log_file=str(path)))
    try:
        events, failures = await col.collect(None, None)
        assert [(e.kind, e.user, e.source) for e in events] == [("auth_failed", "app", "file")]
        assert [(f.user, f.count) for f in failures] == [("app", 1)]
    finally:
        assert isinstance(col._main, FileTailSource)
        col._main.close()


async def test_events_collector_on_rds_log_files_without_cloudwatch_export() -> None:
    """No postgresql export: the collector reads the instances' files through the RDS API (Stubber)."""
    client = _rds()

    class _Session:
        """Hands out the stubbed RDS client, as boto3.Session.client would a real one."""

        def client(self, service: str, region_name: str | None = None, **_: Any) -> Any:
            assert (service, region_name) == ("rds", REGION)
            return client

    now = datetime.now(UTC).replace(microsecond=0)
    f = "error/postgresql.log.x"
    line = _line(now, 'FATAL:  PAM authentication failed for user "ro"', "ro", 9)
    resolved = _Resolved(REGION, "aurora", (), None, None, (_Inst("w1"),))
    col = EventsCollector(ClusterConfig(name="c", region=REGION))
    with Stubber(client) as stub:
        stub.add_response("describe_db_log_files", _files(f))
        stub.add_response(
            "download_db_log_file_portion",
            {"LogFileData": line + "\n", "Marker": "m1", "AdditionalDataPending": False},
            {"DBInstanceIdentifier": "w1", "LogFileName": f, "NumberOfLines": 1000},
        )
        events, failures = await col.collect(resolved, _Session())
        stub.assert_no_pending_responses()
    assert col.source_kind == "rds_logfile" and col.problems == ()
    assert [(e.kind, e.user, e.instance, e.source) for e in events] == [
        ("auth_failed", "ro", "w1", "rds_logfile")
    ]
    assert [(x.user, x.count) for x in failures] == [("ro", 1)]


async def test_events_collector_adopts_sources_once_discovery_succeeds(
    logs: Any, group: str, session: boto3.Session
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _put(
        logs,
        group,
        "pg-writer",
        [(now, _line(now, 'FATAL:  PAM authentication failed for user "u"', "u", 3))],
    )
    col = EventsCollector(ClusterConfig(name="c", region=REGION))
    # discovery failed this round: nothing to read yet, and nothing to complain about
    assert await col.collect(None, session) == ((), ())
    assert (col.source_kind, col.problems) == ("none", ())
    resolved = _Resolved(REGION, "aurora", ("postgresql",), group, None, (_Inst("pg-writer"),))
    events, _ = await col.collect(resolved, session)
    assert col.source_kind == "cloudwatch"
    assert [(e.kind, e.user) for e in events] == [("auth_failed", "u")]


async def test_events_collector_explicit_source_without_target_is_a_problem() -> None:
    col = EventsCollector(ClusterConfig(name="c", log_source=LogSource.FILE))
    assert await col.collect(None, None) == ((), ())
    assert [p.code for p in col.problems] == ["events_unreadable"]
    assert "no log group, instance or file" in col.problems[0].message
