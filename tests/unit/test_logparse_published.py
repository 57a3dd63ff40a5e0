# ruff: noqa: E501  (published log lines are quoted whole, as their sources wrote them)
"""The log parser on lines others published: pgBadger's and pganalyze collector's test data, PostgreSQL
articles and the AWS documentation. The source of every line is written beside it.

Where a source gives a message without its prefix (pganalyze's analyze_test.go lists messages only), the
message is put behind RDS's prefix `%t:%r:%u@%d:[%p]:` (the prefix is then ours, the message theirs).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pgiam_tui.collect.attempts import join_attempts
from pgiam_tui.collect.iam_log import parse_iam_line
from pgiam_tui.collect.log_sources import CONNECTION_TERMS
from pgiam_tui.collect.logparse import LogLineParser, parse_line
from pgiam_tui.collect.logprefix import PrefixError, compile_prefix, parse_zone
from pgiam_tui.model import EventKind, Outcome

PGANALYZE_PARSE = "github.com/pganalyze/collector logs/parse_test.go"
PGANALYZE_ANALYZE = "github.com/pganalyze/collector logs/analyze_test.go"
PGBADGER_RDS = "github.com/darold/pgbadger t/fixtures/rds.log.bz2"
CYBERTEC = "https://www.cybertec-postgresql.com/en/enhanced-security/"
AWS_IAM_TROUBLESHOOTING = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.Troubleshooting.html"
)
AWS_BLOG_PREFIX = (
    "2019-09-29 10:13:24 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):pgmonitor@pgbench:[29443]:"
)


def test_rds_scenario_line_aws_blog() -> None:
    # source: the AWS blog walkthrough this product serves (DESIGN.md, reference/): RDS's prefix
    ev = parse_line(AWS_BLOG_PREFIX + "LOG:  pam_authenticate failed: Permission denied")
    assert (ev.kind, ev.user, ev.database, ev.pid, ev.port) == (
        "auth_failed",
        "pgmonitor",
        "pgbench",
        29443,
        35620,
    )
    assert ev.method == "pam"


def test_pgbadger_rds_fixture_cet_and_hba_refusal() -> None:
    # source: PGBADGER_RDS (log_line_prefix '%t:%r:%u@%d:[%p]:', log_timezone in CET)
    line = (
        "2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry for "
        'host "192.168.1.201", user "gilles", database "pgbench", SSL on'
    )
    ev = parse_line(line)
    assert ev.kind == EventKind.REFUSED
    assert (ev.user, ev.database, ev.host, ev.port, ev.pid) == (
        "gilles",
        "pgbench",
        "192.168.1.201",
        50906,
        12795,
    )
    assert ev.time == datetime(2020, 3, 11, 19, 40, 50, tzinfo=UTC)  # CET is UTC+1, not UTC
    # the same line with the server's own zone known: CET in Europe/Paris in March is still +1
    paris = LogLineParser(log_timezone=ZoneInfo("Europe/Paris")).parse(line)
    assert paris.time == ev.time


def test_pgbadger_rds_fixture_host_without_port() -> None:
    # source: PGBADGER_RDS (%r written without a port)
    ev = parse_line(
        "2021-05-27 17:00:00 UTC:10.1.91.65:user@my_db:[24743]:LOG: duration: 0.054 ms statement: SELECT * FROM t1;"
    )
    assert (ev.kind, ev.host, ev.port, ev.user, ev.database, ev.pid) == ("other", "10.1.91.65", None, "user",
                                                                         "my_db", 24743)  # fmt: skip


def test_pganalyze_custom1_est_local_socket() -> None:
    # source: PGANALYZE_PARSE "Custom 1 format", prefix '%m [%p][%v] : [%l-1] %q[app=%a] '
    ev = LogLineParser("%m [%p][%v] : [%l-1] %q[app=%a] ").parse(
        "2018-09-27 06:57:01.030 EST [20194][] : [1-1] [app=pganalyze_collector] LOG:  connection received: "
        "host=[local]"
    )
    assert (ev.kind, ev.pid, ev.host) == ("received", 20194, None)
    assert ev.time == datetime(2018, 9, 27, 6, 57, 1, 30000, tzinfo=timezone(timedelta(hours=-5)))


def test_pganalyze_custom3_bst_unknown_user() -> None:
    # source: PGANALYZE_PARSE, prefix '%m [%p] %q[user=%u,db=%d,app=%a] '
    ev = LogLineParser("%m [%p] %q[user=%u,db=%d,app=%a] ").parse(
        "2018-09-27 06:57:01.030 BST [20194] [user=[unknown],db=[unknown],app=[unknown]] LOG:  connection "
        "received: host=[local]"
    )
    assert (ev.kind, ev.user, ev.database) == ("received", None, None)
    assert ev.time == datetime(2018, 9, 27, 5, 57, 1, 30000, tzinfo=UTC)  # BST = UTC+1


def test_pganalyze_custom5_sqlstate_in_prefix() -> None:
    # source: PGANALYZE_PARSE, prefix '%t [%p]: [%l-1] user=%u,db=%d - PG-%e '
    ev = LogLineParser("%t [%p]: [%l-1] user=%u,db=%d - PG-%e ").parse(
        "2018-09-28 07:37:59 UTC [331]: [1-1] user=[unknown],db=[unknown] - PG-00000 LOG:  connection received: "
        "host=127.0.0.1 port=49738"
    )
    assert (ev.kind, ev.host, ev.port, ev.pid, ev.sqlstate) == ("received", "127.0.0.1", 49738, 331, "00000")


def test_pganalyze_custom9_authorized_and_disconnection_join() -> None:
    # source: PGANALYZE_PARSE "Custom 9 format", prefix '%m %r %u %a [%c] [%p] '
    p = LogLineParser("%m %r %u %a [%c] [%p] ")
    lines = [
        "2020-05-21 17:54:35.256 UTC 172.18.0.1(56402) pgaweb [unknown] [5ec6c05b.22] [34] LOG:  connection "
        "authorized: user=pgaweb database=pgaweb application_name=psql",
        "2020-05-21 17:54:43.808 UTC 172.18.0.1(56402) pgaweb psql [5ec6c05b.22] [34] LOG:  disconnection: session "
        "time: 0:00:08.574 user=pgaweb database=pgaweb host=172.18.0.1 port=56402",
    ]
    events = list(p.parse_lines(lines))
    assert [e.kind for e in events] == ["authorized", "disconnected"]
    (attempt,) = join_attempts(events)
    assert (attempt.outcome, attempt.user, attempt.database, attempt.host, attempt.port) == (
        Outcome.OK, "pgaweb", "pgaweb", "172.18.0.1", 56402)  # fmt: skip
    assert attempt.session_s == pytest.approx(8.574)


def test_pganalyze_custom13_app_name_with_spaces_and_user_dash_db() -> None:
    # source: PGANALYZE_PARSE "Custom 13", prefix '%p-%s-%c-%l-%h-%u-%d-%m ' (user and db both "pgaweb")
    ev = LogLineParser("%p-%s-%c-%l-%h-%u-%d-%m ").parse(
        "51-2021-11-17 19:11:13 UTC-619553d1.33-2-172.20.0.1-pgaweb-pgaweb-2021-11-17 19:11:13.562 UTC LOG:  "
        "connection authorized: user=pgaweb database=pgaweb application_name=puma: cluster worker 2: 18544 "
        "[pganalyze]"
    )
    assert (ev.kind, ev.user, ev.database, ev.pid, ev.host) == (
        "authorized",
        "pgaweb",
        "pgaweb",
        51,
        "172.20.0.1",
    )


def test_pganalyze_custom16_names_with_dashes() -> None:
    # source: PGANALYZE_PARSE "Custom 16", prefix '%t [%p] %q%u@%d %h '
    ev = LogLineParser("%t [%p] %q%u@%d %h ").parse(
        "2022-07-22 06:14:23 UTC [76] my-user@my-db 1.2.3.4 LOG:  disconnection: session time: 0:00:01.667 "
        "user=my-user database=my-db host=1.2.3.4 port=5678"
    )
    assert (ev.kind, ev.user, ev.database, ev.host, ev.port) == (
        "disconnected",
        "my-user",
        "my-db",
        "1.2.3.4",
        5678,
    )


def test_pganalyze_verbose_sqlstate_before_message_and_location_line() -> None:
    # source: PGANALYZE_PARSE "log_error_verbosity = verbose tests", prefix '%m [%p] %q%u@%d '
    p = LogLineParser("%m [%p] %q%u@%d ")
    ev = p.parse("2026-05-06 15:49:08.082 UTC [159645] user@db ERROR:  22012: division by zero")
    assert (ev.sqlstate, ev.message, ev.user, ev.database) == (
        "22012",
        "ERROR:  division by zero",
        "user",
        "db",
    )
    loc = p.parse("2026-05-06 15:49:08.082 UTC [159645] user@db LOCATION:  int4div, int.c:870")
    assert (loc.kind, loc.pid) == ("other", 159645)


def test_postgresql_18_verbose_connection_lines_in_a_named_zone() -> None:
    # source: CYBERTEC (PostgreSQL 18, log_connections = all, log_error_verbosity = verbose, prefix '%m [%p] ')
    # The article's server logs in IST, India's zone (+05:30): the server's log_timezone says which IST.
    lines = """\
2025-11-06 13:18:05.348 IST [21449] LOG:  00000: connection received: host=[local]
2025-11-06 13:18:05.348 IST [21449] LOCATION:  BackendInitialize, backend_startup.c:230
2025-11-06 13:18:05.351 IST [21449] LOG:  00000: connection authenticated: user="pagila" method=trust (/run/media/ramumsrk/v210w_4.0GiB/var/lib/pgsql/18/data/pg_hba.conf:11)
2025-11-06 13:18:05.351 IST [21449] LOCATION:  ClientAuthentication, auth.c:656
2025-11-06 13:18:05.351 IST [21449] LOG:  00000: connection authorized: user=pagila database=pagila application_name=psql
2025-11-06 13:18:05.351 IST [21449] LOCATION:  PerformAuthentication, postinit.c:309
2025-11-06 13:18:05.354 IST [21449] LOG:  00000: connection ready: setup total=9.743 ms, fork=2.870 ms, authentication=1.150 ms
2025-11-06 13:18:05.354 IST [21449] LOCATION:  PostgresMain, postgres.c:4676""".splitlines()
    p = LogLineParser("%m [%p] ", log_timezone=parse_zone("Asia/Kolkata"))
    events = list(p.parse_lines(lines))
    kinds = [e.kind for e in events if e.kind != "other"]
    assert kinds == ["received", "authenticated", "authorized", "ready"]
    assert events[0].time == datetime(2025, 11, 6, 7, 48, 5, 348000, tzinfo=UTC)
    assert all(e.sqlstate == "00000" for e in events if e.kind != "other")
    (attempt,) = join_attempts(events)
    assert (attempt.outcome, attempt.user, attempt.database, attempt.method) == (
        "ok",
        "pagila",
        "pagila",
        "trust",
    )
    assert sum(": connection " in line for line in attempt.lines) == 4


# Login-refusing FATALs, each message as pganalyze's analyze_test.go lists it (PGANALYZE_ANALYZE)
REFUSALS = [
    ('pg_hba.conf rejects connection for host "172.1.0.1", user "myuser", database "mydb", SSL on', "refused",
     "myuser", "mydb"),
    ('no pg_hba.conf entry for host "8.8.8.8", user "postgres", database "postgres", SSL off', "refused",
     "postgres", "postgres"),
    ('password authentication failed for user "postgres"', "auth_failed", "postgres", None),
    ('database "template0" is not currently accepting connections', "refused", None, "template0"),
    ('role "abc" is not permitted to log in', "refused", "abc", None),
    ('Ident authentication failed for user "postgres"', "auth_failed", "postgres", None),
    ("remaining connection slots are reserved for non-replication superuser connections", "refused", None, None),
    ("sorry, too many clients already", "refused", None, None),
    ('too many connections for role "postgres"', "refused", "postgres", None),
    ('too many connections for database "postgres"', "refused", None, "postgres"),
    ("the database system is shutting down", "refused", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("message", "kind", "user", "db"), REFUSALS)
def test_every_login_refusing_fatal(message: str, kind: str, user: str | None, db: str | None) -> None:
    ev = parse_line("2022-01-01 00:00:00 UTC:10.0.0.1(5000):x@y:[7]:FATAL:  " + message)
    assert ev.kind == kind
    if user is not None:
        assert ev.user == user
    if db is not None:
        assert ev.database == db


CONNECTION_MESSAGES = [
    # PGANALYZE_ANALYZE "Connects/Disconnects", CYBERTEC (PostgreSQL 18), AWS_BLOG_PREFIX's message
    "connection received: host=172.30.0.165 port=56902",
    'connection authenticated: user="pagila" method=trust (/var/lib/pgsql/18/data/pg_hba.conf:11)',
    "connection authorized: user=myuser database=mydb SSL enabled (protocol=TLSv1.2, "
    "cipher=ECDHE-RSA-AES256-GCM-SHA384, compression=off)",
    "connection ready: setup total=9.743 ms, fork=2.870 ms, authentication=1.150 ms",
    "disconnection: session time: 1:53:01.198 user=myuser database=mydb host=172.30.0.165 port=56902",
    "pam_authenticate failed: Permission denied",
]


def test_the_cloudwatch_filter_keeps_every_line_the_attempts_use() -> None:
    # CloudWatch's `?"term"` pattern keeps an event holding any of the terms (case-sensitive)
    for message in [*CONNECTION_MESSAGES, *(r[0] for r in REFUSALS), *MORE_REFUSALS]:
        assert any(term in message for term in CONNECTION_TERMS), message
        level = "LOG" if message.startswith(("connection", "disconnection", "pam_")) else "FATAL"
        assert (
            parse_line(f"2022-01-01 00:00:00 UTC:10.0.0.1(5000):x@y:[7]:{level}:  {message}").kind != "other"
        )


MORE_REFUSALS = [
    # PostgreSQL's own wording (src/backend/tcop/backend_startup.c, utils/init/postinit.c), as the
    # PostgreSQL documentation's "Authentication Problems" section and release notes quote them
    "the database system is starting up",
    "the database system is not yet accepting connections",
    'database "testdb" does not exist',
    "remaining connection slots are reserved for roles with the SUPERUSER attribute",
    'PAM authentication failed for user "oltp_rw_user"',
]


@pytest.mark.parametrize("message", MORE_REFUSALS)
def test_more_refusals_from_postgresql_docs(message: str) -> None:
    ev = parse_line("2022-01-01 00:00:00 UTC:10.0.0.1(5000):x@y:[7]:FATAL:  " + message)
    assert ev.kind in ("refused", "auth_failed")


def test_pganalyze_heroku_prefix_with_quoted_fields() -> None:
    # source: PGANALYZE_PARSE (Heroku's prefix, quoted fields, SQLSTATE 28000 in %e)
    prefix = (
        ' sql_error_code = %e time_ms = "%m" pid="%p" proc_start_time="%s" session_id="%c" vtid="%v" tid="%x" '
        'log_line="%l" %qdatabase="%d" connection_source="%r" user="%u" application_name="%a" '
    )
    ev = LogLineParser(prefix).parse(
        ' sql_error_code = 28000 time_ms = "2022-06-02 22:48:20.807 UTC" pid="11666" proc_start_time="2022-06-02 '
        '22:48:20 UTC" session_id="62993e34.2d92" vtid="6/17007" tid="0" log_line="1" database="postgres" '
        'connection_source="127.0.0.1(36532)" user="postgres" application_name="[unknown]" FATAL:  no pg_hba.conf '
        'entry for host "127.0.0.1", user "postgres", database "postgres", SSL off'
    )
    assert (ev.kind, ev.user, ev.database, ev.host, ev.port, ev.pid, ev.sqlstate) == (
        "refused", "postgres", "postgres", "127.0.0.1", 36532, 11666, "28000")  # fmt: skip


def test_aws_docs_iam_auth_error_line() -> None:
    # source: AWS_IAM_TROUBLESHOOTING (the iam-db-auth-error log's example line)
    ev = parse_iam_line(
        "2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' because "
        "the provided token is malformed or otherwise invalid. (Status Code: 400, Error Code: InvalidToken)"
    )
    assert (ev.kind, ev.user) == ("iam_invalid_token", "user_2")
    assert ev.time == datetime(2025, 9, 22, 12, 2, 51, 954000, tzinfo=UTC)


# -- names as clients choose them (message formats: PostgreSQL src/backend/utils/init/postinit.c, libpq/auth.c)


def test_email_style_user_is_one_name_across_the_lines_of_a_failure() -> None:
    prefix = "2024-03-01 10:00:00 UTC:10.0.0.5(41000):"
    lines = [
        prefix + "[unknown]@[unknown]:[900]:LOG:  connection received: host=10.0.0.5 port=41000",
        prefix + "jane@example.com@demo:[900]:LOG:  pam_authenticate failed: Permission denied",
        prefix + 'jane@example.com@demo:[900]:FATAL:  PAM authentication failed for user "jane@example.com"',
    ]
    events = list(LogLineParser().parse_lines(lines))
    assert [e.user for e in events[1:]] == ["jane@example.com", "jane@example.com"]
    assert [e.database for e in events[1:]] == ["demo", "demo"]
    (attempt,) = join_attempts(events)
    assert (attempt.user, attempt.outcome) == ("jane@example.com", "failed")


def test_known_database_decides_a_database_name_with_the_separator() -> None:
    line = "2024-03-01 10:00:00 UTC:10.0.0.5(41000):bob@sales@eu:[900]:LOG:  pam_authenticate failed: x"
    assert (parse_line(line).user, parse_line(line).database) == ("bob@sales", "eu")
    known = LogLineParser(known_databases=("sales@eu",)).parse(line)
    assert (known.user, known.database) == ("bob", "sales@eu")


def test_spaces_quotes_and_non_ascii_in_names() -> None:
    prefix = "2024-03-01 10:00:00 UTC:10.0.0.5(41000):"
    ev = parse_line(
        prefix + 'John "JJ" Smith@Données clients:[900]:LOG:  connection authorized: user=John "JJ" Smith '
        "database=Données clients application_name=x user=root database=postgres"
    )
    # application_name is the client's to choose: its "user=root database=postgres" overrides nothing
    assert (ev.user, ev.database) == ('John "JJ" Smith', "Données clients")
    fatal = parse_line(prefix + 'x@y:[901]:FATAL:  password authentication failed for user "a "quoted" ü"')
    assert fatal.user == 'a "quoted" ü'


def test_application_name_cannot_fake_the_ssl_details() -> None:
    ev = parse_line(
        AWS_BLOG_PREFIX + "LOG:  connection authorized: user=u database=d application_name=x SSL enabled "
        "(protocol=TLSv1.0, cipher=NULL, bits=0) SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, "
        "bits=256)"
    )
    assert ev.ssl == {"protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "bits": 256}


def test_multi_line_entry_is_one_event() -> None:
    # PostgreSQL writes a tab after every line break inside a message (elog.c append_with_tabs)
    lines = [AWS_BLOG_PREFIX + 'FATAL:  password authentication failed for user "a', '\tb"']
    (ev,) = list(LogLineParser().parse_lines(lines))
    assert (ev.kind, ev.user) == ("auth_failed", "a\nb")  # kept as written; outputs escape it


def test_every_escape_compiles_and_bad_input_is_refused() -> None:
    prefix = "%a %u %d %r %h %L %b %p %P %t %m %n %i %e %c %l %s %v %x %Q %% %z %q tail "
    assert compile_prefix(prefix).regex.pattern.startswith("^")
    with pytest.raises(PrefixError):
        compile_prefix("%t\n")
    with pytest.raises(PrefixError):
        parse_zone("Mars/Olympus")
