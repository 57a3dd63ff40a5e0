"""Config input that tried to escape the error path (issue 10): every input loads, or is one line and exit 2.

A 4 KB profiles.toml of nested arrays gave a 3,002-line RecursionError traceback; `--config` naming a FIFO
waited forever for a writer. Both are checked through the real CLI entry point; the many generated inputs
(TOML structures built from the schema's own keys, raw bytes, and valid files with bytes changed) go through
the loader, which the CLI calls.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pgiam_tui.config import KEYS, MAX_CONFIG_BYTES, Config, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "profiles.example.toml").read_text(encoding="utf-8")
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


_ENTRY = "import sys; from pgiam_tui.cli import main; sys.exit(main())"  # what the console script runs


def _cli(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """`pgiam-tui --config CONFIG check x` in a fresh interpreter, through the console script's entry."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, "--config", str(config), "check", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # generous: a hang (the FIFO) fails here instead of blocking the suite
        check=False,
    )


def _assert_one_line_exit_2(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("pgiam-tui: ") and "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0]


def test_deeply_nested_arrays_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("x = " + "[" * 2000 + "]" * 2000 + "\n", encoding="utf-8")  # ~4 KB, as in the report
    _assert_one_line_exit_2(_cli(tmp_path, path), "nested too deeply")
    inline = tmp_path / "inline.toml"
    inline.write_text("x = " + "{a = " * 1500 + "1" + "}" * 1500 + "\n", encoding="utf-8")
    _assert_one_line_exit_2(_cli(tmp_path, inline), "nested too deeply")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "profiles.toml"
    os.mkfifo(fifo)
    _assert_one_line_exit_2(_cli(tmp_path, fifo), "not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused(tmp_path: Path, device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} is not on this machine")
    _assert_one_line_exit_2(_cli(tmp_path, Path(device)), "not a regular file")


def test_a_huge_file_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    _assert_one_line_exit_2(_cli(tmp_path, huge), "larger than")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[clusters]]\nname = "caf\xe9"\n')
    _assert_one_line_exit_2(_cli(tmp_path, latin1), "not UTF-8")


# ------------------------------------------------------------------------------------------------ generated


def _toml_string(text: str) -> str:
    # a JSON string is a TOML basic string, but TOML also wants DEL escaped
    return json.dumps(text).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key)
    return key if bare else _toml_string(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


_KEY_NAMES = st.sampled_from([*KEYS, "password", "dbname", "clusters", "defaults", "Name", ""]) | st.text(
    max_size=8
)
_SCALARS = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        ["iam", "password", "verify-full", "file", "us-east-1", "cluster-ABC", "127.0.0.1:5432"]
    )
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY_NAMES, inner, max_size=3),
    max_leaves=8,
)
_TABLES = st.dictionaries(_KEY_NAMES, _VALUES, max_size=8)


def _document(
    top: dict[str, object], defaults: dict[str, object] | None, clusters: list[dict[str, object]]
) -> str:
    out = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in top.items()]
    if defaults is not None:
        out.append("[defaults]")
        out += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in defaults.items()]
    for cluster in clusters:
        out.append("[[clusters]]")
        out += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in cluster.items()]
    return "\n".join(out) + "\n"


def _loads_or_one_line_error(path: Path) -> None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message and "\r" not in message
    else:
        assert isinstance(config, Config)


@_FUZZ
@given(
    top=st.dictionaries(_KEY_NAMES, _VALUES, max_size=2),
    defaults=st.none() | _TABLES,
    clusters=st.lists(_TABLES, max_size=3),
)
def test_any_toml_structure_loads_or_is_one_config_error(
    tmp_path: Path,
    top: dict[str, object],
    defaults: dict[str, object] | None,
    clusters: list[dict[str, object]],
) -> None:
    text = _document(top, defaults, clusters)
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    _loads_or_one_line_error(path)


@_FUZZ
@given(data=st.binary(max_size=2000))
def test_any_bytes_load_or_are_one_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "profiles.toml"
    path.write_bytes(data)
    _loads_or_one_line_error(path)


@_FUZZ
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.text(max_size=3)), min_size=1, max_size=4))
def test_the_documented_example_with_characters_changed(tmp_path: Path, edits: list[tuple[int, str]]) -> None:
    text = EXAMPLE
    for at, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + 1 :]
    try:
        parse_config(text, tmp_path / "profiles.toml")
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    defaults=st.none() | _TABLES,
    clusters=st.lists(_TABLES, min_size=1, max_size=2),
    tail=st.binary(max_size=40),
)
def test_generated_configs_through_the_real_cli(
    tmp_path: Path, defaults: dict[str, object] | None, clusters: list[dict[str, object]], tail: bytes
) -> None:
    """A few of the many, end to end: no cluster is named "x", so a config that loads exits 2 as well
    ("no cluster named 'x'"), always as one line on stderr."""
    assume(all(c.get("name") != "x" for c in clusters))
    path = tmp_path / "profiles.toml"
    path.write_bytes(_document({}, defaults, clusters).encode() + tail)
    _assert_one_line_exit_2(_cli(tmp_path, path))


def test_a_path_under_an_unknown_users_home_is_one_line(tmp_path: Path) -> None:
    """Found by the fuzz above: expanduser() raised RuntimeError for "~000/ca.pem"."""
    path = tmp_path / "profiles.toml"
    path.write_text('[[clusters]]\nname = "a"\nendpoint = "h"\nsslrootcert = "~no-such-user-x/ca.pem"\n')
    with pytest.raises(ConfigError, match="no home directory"):
        load_config(path)


def test_the_generated_documents_are_valid_toml_that_can_load() -> None:
    """Not vacuous: the serializer above writes TOML that tomllib reads, and valid clusters load."""
    text = _document({}, {"region": "us-east-1"}, [{"name": "a", "cluster_id": "c", "port": 5433}])
    (cluster,) = parse_config(text, Path("profiles.toml")).clusters
    assert (cluster.name, cluster.region, cluster.port) == ("a", "us-east-1", 5433)
