"""profiles.toml loading: defaults, validation, and errors that name file, line and key."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgiam_tui.aws.endpoints import parse_rds_endpoint
from pgiam_tui.config import (
    ClusterConfig,
    ConfigError,
    load_config,
    parse_config,
    parse_hostport,
    resolve_config_path,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "profiles.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_cluster_gets_documented_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[clusters]]
        name = "a"
        cluster_id = "pgdemo-1"
        """,
    )
    config = load_config(path)
    assert config.path == path
    (a,) = config.clusters
    assert a == ClusterConfig(name="a", cluster_id="pgdemo-1", source_line=1)
    assert (a.user, a.auth, a.sslmode, a.port, a.database) == (
        "pgmonitor",
        "iam",
        "verify-full",
        5432,
        "postgres",
    )
    assert config.cluster("a") is a


def _botocore_regions() -> list[tuple[str, str]]:
    """Every region AWS publishes in botocore's own data (botocore/data/endpoints.json, all partitions), with
    its partition's DNS suffix (amazonaws.com, amazonaws.com.cn, ...)."""
    import botocore.loaders

    data = botocore.loaders.Loader().load_data("endpoints")
    return sorted((r, p["dnsSuffix"]) for p in data["partitions"] for r in p["regions"])


def test_every_published_region_is_a_config_region_and_an_endpoint_region(tmp_path: Path) -> None:
    # The config's region check and the endpoint parser once had two regexes: the config's refused
    # eusc-de-east-1 (the European Sovereign Cloud), which the endpoint parser read.
    regions = _botocore_regions()
    assert {"us-gov-west-1", "cn-north-1", "eusc-de-east-1"} <= {r for r, _ in regions}
    for region, suffix in regions:
        host = f"a.cluster-abc.{region}.rds.{suffix}"
        text = f'[[clusters]]\nname = "a"\nendpoint = "{host}"\nregion = "{region}"\n'
        (cluster,) = parse_config(text, tmp_path / "profiles.toml").clusters
        assert cluster.region == region
        parsed = parse_rds_endpoint(host)
        assert parsed is not None and parsed.region == region


def test_defaults_merge_and_entries_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [defaults]
        profile = "instancecrossaccount"
        region = "us-east-1"
        refresh_s = 5          # an integer is accepted for a number
        sslrootcert = "certs/ca.pem"

        [[clusters]]
        name = "one"
        cluster_id = "pgdemo-1"

        [[clusters]]
        name = "two"
        instance_id = "pgdemo-rds"
        region = "us-east-2"
        sslrootcert = "/etc/ssl/rds.pem"
        """,
    )
    one, two = load_config(path).clusters
    assert one.profile == two.profile == "instancecrossaccount"
    assert (one.region, two.region) == ("us-east-1", "us-east-2")
    assert one.refresh_s == 5.0 and isinstance(one.refresh_s, float)
    assert one.sslrootcert == str(tmp_path / "certs" / "ca.pem")  # relative to the config file
    assert two.sslrootcert == "/etc/ssl/rds.pem"
    assert (one.source_line, two.source_line) == (7, 11)


def test_tunnels_table_becomes_pairs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [[clusters]]
        name = "t"
        cluster_id = "c"
        hostaddr = "127.0.0.1"
        local_port = 15432
        [clusters.tunnels]
        "c-writer.x.us-east-1.rds.amazonaws.com" = "127.0.0.1:15433"
        "c-reader.x.us-east-1.rds.amazonaws.com" = "[::1]:15434"
        """,
    )
    (t,) = load_config(path).clusters
    assert t.tunnels == (
        ("c-writer.x.us-east-1.rds.amazonaws.com", "127.0.0.1:15433"),
        ("c-reader.x.us-east-1.rds.amazonaws.com", "[::1]:15434"),
    )
    assert (t.hostaddr, t.local_port) == ("127.0.0.1", 15432)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5432", ("127.0.0.1", 5432)),
        ("[::1]:1", ("::1", 1)),
        ("localhost", None),
        ("h:0", None),
        ("h:70000", None),
        (":5432", None),
        ("h:54a", None),
    ],
)
def test_parse_hostport(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_hostport(text) == expected


# Each case: the file text, then a regex the one-line message must match after "FILE:".
ERROR_CASES = {
    "unknown key with suggestion": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        regoin = "us-east-1"
        """,
        r"^:4: key 'regoin': unknown key \(did you mean 'region'\?\)$",
    ),
    "unknown key in defaults": (
        """
        [defaults]
        sslmod = "require"
        """,
        r"^:2: key 'sslmod': unknown key \(did you mean 'sslmode'\?\)$",
    ),
    "unknown key without suggestion": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        colour = "blue"
        """,
        r"^:4: key 'colour': unknown key$",
    ),
    "unknown top-level key": (
        """
        region = "us-east-1"
        [[clusters]]
        name = "a"
        cluster_id = "c"
        """,
        r"^:1: key 'region': unknown top-level key \(cluster settings go in \[defaults\]",
    ),
    "unknown table": (
        """
        [cluster]
        name = "a"
        """,
        r"^:1: key 'cluster': unknown top-level key \(expected \[defaults\] and \[\[clusters\]\]\)$",
    ),
    "string where an integer belongs": (
        """
        [[clusters]]
        name = "a"
        endpoint = "a.example"
        port = "5432"
        """,
        r"^:4: key 'port': expected an integer, got a string$",
    ),
    "integer where a boolean belongs": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        watch_members = 1
        """,
        r"^:4: key 'watch_members': expected true or false, got an integer$",
    ),
    "number where a string belongs": (
        """
        [defaults]
        database = 5

        [[clusters]]
        name = "a"
        cluster_id = "c"
        """,
        r"^:2: key 'database': expected a string, got an integer$",
    ),
    "port out of range": (
        """
        [[clusters]]
        name = "a"
        endpoint = "a.example"
        port = 70000
        """,
        r"^:4: key 'port': port 70000 out of range 1-65535$",
    ),
    "negative timeout": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        connect_timeout_s = -1
        """,
        r"^:4: key 'connect_timeout_s': must be positive, got -1$",
    ),
    "invalid auth": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        auth = "kerberos"
        """,
        r"^:4: key 'auth': invalid value 'kerberos' \(expected one of 'iam', 'password'\)$",
    ),
    "invalid sslmode": (
        """
        [defaults]
        sslmode = "verify_full"
        """,
        r"^:2: key 'sslmode': invalid value 'verify_full' \(expected one of 'disable', .*'verify-full'\)$",
    ),
    "invalid log_source": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        log_source = "s3"
        """,
        r"^:4: key 'log_source': invalid value 's3' \(expected one of 'auto', 'cloudwatch', ",
    ),
    "password refused in a cluster": (
        """
        [[clusters]]
        name = "legacy"
        endpoint = "a.example"
        auth = "password"
        password = "hunter2"
        """,
        r"^:5: key 'password': secrets do not belong in this file; "
        r"store it with `pgiam-tui password set legacy`",
    ),
    "password refused in defaults": (
        """
        [defaults]
        password = "hunter2"
        """,
        r"^:2: key 'password': .*`pgiam-tui password set NAME`",
    ),
    "missing name": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"

        [[clusters]]
        cluster_id = "d"
        """,
        r"^:5: \[\[clusters\]\] entry without a 'name'$",
    ),
    "name in defaults": (
        """
        [defaults]
        name = "x"
        """,
        r"^:2: key 'name': a name belongs in a \[\[clusters\]\] entry",
    ),
    "no target": (
        """
        [[clusters]]
        name = "a"
        region = "us-east-1"
        """,
        r"^:1: cluster 'a' needs one of cluster_id, instance_id or endpoint$",
    ),
    "conflicting targets": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        endpoint = "c.example"
        """,
        r"^:4: key 'endpoint': conflicts with cluster_id: give only one of",
    ),
    "conflict with a default names the entry's key": (
        """
        [defaults]
        cluster_id = "c"

        [[clusters]]
        name = "a"
        instance_id = "i"
        """,
        r"^:6: key 'instance_id': conflicts with cluster_id",
    ),
    "inherited value blamed on [defaults]": (
        """
        [defaults]
        local_port = 15432

        [[clusters]]
        name = "a"
        cluster_id = "c"
        """,
        r"^:2: key 'local_port': needs hostaddr .*"
        r"\(set in \[defaults\]; for the \[\[clusters\]\] entry at line 4\)$",
    ),
    "region typo": (
        """
        [defaults]
        region = "us-east1"
        """,
        r"^:2: key 'region': 'us-east1' is not an AWS region name \(like us-east-1\)$",
    ),
    "account id": (
        """
        [[clusters]]
        name = "a"
        endpoint = "e"
        account_id = "1111-1111-1111"
        """,
        r"^:4: key 'account_id': '1111-1111-1111' is not a 12-digit AWS account id$",
    ),
    "cluster identifier where the resource id belongs": (
        """
        [[clusters]]
        name = "a"
        endpoint = "e"
        resource_id = "pgdemo-1"
        """,
        r"^:4: key 'resource_id': 'pgdemo-1' is not an RDS resource id \(cluster-\.\.\. for Aurora",
    ),
    "duplicate name": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"

        [[clusters]]
        name = "a"
        cluster_id = "d"
        """,
        r"^:6: key 'name': duplicate cluster name 'a' \(first defined at line 1\)$",
    ),
    "reader endpoint needs Aurora": (
        """
        [[clusters]]
        name = "a"
        instance_id = "i"
        use_reader_endpoint = true
        """,
        r"^:4: key 'use_reader_endpoint': only Aurora clusters",
    ),
    "local_port needs hostaddr": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        local_port = 15432
        """,
        r"^:4: key 'local_port': needs hostaddr",
    ),
    "file log source needs log_file": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        log_source = "file"
        """,
        r"^:4: key 'log_source': log_source = \"file\" needs log_file$",
    ),
    "bad tunnel": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        [clusters.tunnels]
        "w.example" = "127.0.0.1"
        """,
        r"^:4: key 'tunnels': tunnel for 'w.example': expected \"addr:port\", got '127.0.0.1'$",
    ),
    "tunnels not a table": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        tunnels = "127.0.0.1:1"
        """,
        r"^:4: key 'tunnels': expected a table",
    ),
    "clusters not an array of tables": (
        """
        clusters = "a"
        """,
        r"^:1: key 'clusters': expected \[\[clusters\]\] tables$",
    ),
    "empty string": (
        """
        [[clusters]]
        name = ""
        cluster_id = "c"
        """,
        r"^:2: key 'name': must not be empty$",
    ),
    "source_line is not settable": (
        """
        [[clusters]]
        name = "a"
        cluster_id = "c"
        source_line = 3
        """,
        r"^:4: key 'source_line': unknown key",
    ),
    "TOML syntax error": (
        """
        [[clusters]]
        name = "a"
        cluster_id = c
        """,
        r"^:3: TOML syntax error: Invalid value \(column 14\)$",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_names_file_line_and_key(tmp_path: Path, case: str) -> None:
    text, pattern = ERROR_CASES[case]
    message = error_of(tmp_path, text)
    prefix = str(tmp_path / "profiles.toml")
    assert message.startswith(prefix), message
    assert re.search(pattern, message[len(prefix) :]), message


def test_password_value_never_echoed(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        [[clusters]]
        name = "a"
        endpoint = "e"
        password = "s3cr3t-value"
        """,
    )
    assert "s3cr3t-value" not in message


def test_line_scan_survives_multiline_strings_and_comments(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        '''
        # [[clusters]] in a comment is not a header
        [defaults]
        log_line_prefix = """%t:
        [[clusters]]
        name = "fake"
        """

        [[clusters]]
        name = "real"
        cluster_id = "c"
        user = 5
        ''',
    )
    assert message.endswith(":11: key 'user': expected a string, got an integer"), message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found: `pgiam-tui discover --write"):
        load_config(missing)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_empty_file_has_no_clusters(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "# nothing yet\n"))
    assert config.clusters == ()
    with pytest.raises(ConfigError, match=r"no cluster named 'x' \(known: none\)"):
        config.cluster("x")


def test_inline_array_form_reports_the_array_line(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        # inline form
        clusters = [{ name = "a", cluster_id = "c", port = "x" }]
        """,
    )
    assert message.endswith(":2: key 'port': expected an integer, got a string"), message


def test_resolve_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGIAM_TUI_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_config_path(str(tmp_path / "explicit.toml")) == tmp_path / "explicit.toml"
    assert resolve_config_path(None) == tmp_path / "env.toml"
    monkeypatch.delenv("PGIAM_TUI_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert resolve_config_path(None) == tmp_path / "xdg" / "pgiam-tui" / "profiles.toml"
    assert resolve_config_path("~/p.toml") == Path.home() / "p.toml"


def test_example_file_loads_and_documents_every_key() -> None:
    example = REPO / "profiles.example.toml"
    config = load_config(example)
    assert {c.name for c in config.clusters} == {"pgdemo-prod", "billing", "pgdemo-via-tunnel", "legacy"}
    text = example.read_text(encoding="utf-8")
    documented = set(re.findall(r"^# ([a-z_]+) {2,}", text, flags=re.MULTILINE))
    keys = {f.name for f in dataclasses.fields(ClusterConfig)} - {"source_line"}
    assert keys - documented == set(), "keys without a `# key   description` line"
    assert "[[clusters]]" in text and "[defaults]" in text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(
            ["name", "cluster_id", "endpoint", "port", "auth", "sslmode", "tunnels", "refresh_s", "x"]
        ),
        st.one_of(st.text(max_size=8), st.integers(-5, 70000), st.booleans(), st.floats(allow_nan=False)),
        max_size=6,
    )
)
def test_any_entry_loads_or_fails_with_config_error(tmp_path: Path, entry: dict[str, object]) -> None:
    import json

    def toml_value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return json.dumps(v)

    body = "[[clusters]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in entry.items())
    try:
        config = parse_config(body, tmp_path / "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith(str(tmp_path / "fuzz.toml"))
        assert "\n" not in str(exc)
    else:
        (c,) = config.clusters
        assert c.name == entry["name"]


@pytest.mark.parametrize(
    ("written", "meant"), [("dbname", "database"), ("username", "user"), ("host", "endpoint")]
)
def test_libpq_names_point_to_ours(tmp_path: Path, written: str, meant: str) -> None:
    message = error_of(tmp_path, f'[[clusters]]\nname = "a"\ncluster_id = "c"\n{written} = "x"\n')
    assert message.endswith(f":4: key '{written}': unknown key (did you mean '{meant}'?)"), message
