"""`pgiam-tui events --file`: a downloaded log read into attempts (text and JSON), and bad input (exit 2).

The log holds lines others published: pgBadger's RDS fixture (github.com/darold/pgbadger
t/fixtures/rds.log.bz2), the AWS blog scenario's RDS line (DESIGN.md, reference/) and the iam-db-auth-error
example of the AWS documentation (UsingWithRDS.IAMDBAuth.Troubleshooting).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgiam_tui.cli import main

LOG = """\
2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry for host "192.168.1.201", user "gilles", database "pgbench", SSL on
2025-09-22 12:02:51 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):[unknown]@[unknown]:[29443]:LOG:  connection received: host=ec2-x.x.us-east-2.compute.amazonaws.com port=35620
2025-09-22 12:02:51 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):user_2@pgbench:[29443]:LOG:  pam_authenticate failed: Permission denied
2025-09-22 12:02:51 UTC:ec2-x.x.us-east-2.compute.amazonaws.com(35620):user_2@pgbench:[29443]:FATAL:  PAM authentication failed for user "user_2"
2025-09-22T12:02:51,954 [ERROR] Failed to authenticate the connection request for user 'user_2' because the provided token is malformed or otherwise invalid. (Status Code: 400, Error Code: InvalidToken)
"""  # noqa: E501


@pytest.fixture()
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "postgresql.log.2025-09-22-12"
    path.write_text(LOG, encoding="utf-8")
    return path


def test_text_one_line_per_attempt(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "--file", str(log_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2020-03-11 19:40:50Z  refused  gilles@pgbench  from 192.168.1.201:50906")
    assert out[1].startswith("2025-09-22 12:02:51Z  failed   user_2@pgbench")
    assert "iam  AWS InvalidToken: the provided token is malformed or otherwise invalid" in out[1]
    assert out[-1] == "attempts: 2, failed logins: 2 (1 refused by the server), connection log events: 5"


def test_json_has_the_contract_fields(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "--file", str(log_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"attempts", "events"}
    contract = {"time", "user", "database", "host", "port", "pid", "outcome", "method", "ssl", "aws_code",
                "aws_reason", "caller_arn", "message", "session_s"}  # fmt: skip
    assert all(contract <= set(a) for a in doc["attempts"])
    assert [(a["outcome"], a["user"], a["aws_code"]) for a in doc["attempts"]] == [
        ("refused", "gilles", None), ("failed", "user_2", "InvalidToken")]  # fmt: skip
    assert doc["attempts"][1]["time"] == "2025-09-22T12:02:51+00:00"
    assert len(doc["attempts"][1]["lines"]) == 4


def test_stdin_prefix_and_timezone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # source: github.com/pganalyze/collector logs/parse_test.go ("Custom 15" prefix '%m [%p] %q%u@%d '), its
    # zone written CEST instead of UTC to read it with --timezone
    import io

    line = (
        "2022-07-22 06:13:45.781 CEST [75] myuser@mydb LOG:  connection authorized: user=myuser "
        "database=mydb application_name=psql\n"
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(line.encode())))
    code = main(["events", "--file", "-", "--prefix", "%m [%p] %q%u@%d ", "--timezone", "Europe/Berlin",
                 "--json"])  # fmt: skip
    assert code == 0
    (attempt,) = json.loads(capsys.readouterr().out)["attempts"]
    assert (attempt["outcome"], attempt["user"], attempt["time"]) == (
        "ok",
        "myuser",
        "2022-07-22T04:13:45.781000+00:00",
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["events", "--file", "/nonexistent/log"], "cannot read /nonexistent/log"),
        (["events", "--file", "-", "--prefix", "%t\n"], "line break"),
        (["events", "--file", "-", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["events", "--file", "-", "--until", "yesterday"], "--since and --until go with --cluster"),
        (["events", "--cluster", "x", "--until", "yesterday"], "not a time: 'yesterday'"),
        (["events", "--cluster", "x", "--since", "forever"], "--since: not a duration"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
