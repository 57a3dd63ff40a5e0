"""The seeded template kept between runs (pgiam_sandbox/template_cache.py), on real PostgreSQL servers."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from pgiam_sandbox import template_cache
from pgiam_sandbox.postgres import LocalPostgres, find_pg_bindir, run_as

pytestmark = pytest.mark.integration

RUNS = 3


def test_a_second_template_is_a_copy_of_the_first_with_its_seeded_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(template_cache.CACHE_ENV, str(cache))
    first = LocalPostgres.init_template(tmp_path / "first")
    first.cleanup()
    (kind,) = cache.iterdir()  # the template, and no half-written copy beside it
    assert (kind / "data" / "PG_VERSION").is_file()
    assert not (kind / "data" / "postmaster.pid").exists()

    def no_initdb(*args: object, **kwargs: object) -> None:
        raise AssertionError("initdb ran although the cache holds this template")

    monkeypatch.setattr("pgiam_sandbox.postgres.initdb", no_initdb)
    second = LocalPostgres.init_template(tmp_path / "second")
    server = LocalPostgres.clone(second, tmp_path / "server")
    try:
        server.start()
        with psycopg.connect(server.dsn(user="oltp_ro_user")) as conn:  # seed.sql's role and table
            row = conn.execute("select count(*) from pgdemo.products").fetchone()
        assert row is not None and row[0] > 0
    finally:
        server.cleanup()
        second.cleanup()
    assert list(cache.iterdir()) == [kind]


def test_the_kind_changes_with_the_seed_and_not_with_a_link_to_the_same_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = find_pg_bindir()
    before = template_cache.template_kind(bindir, run_as())
    assert template_cache.template_kind(bindir, run_as()) == before  # stable for the same inputs
    elsewhere = tmp_path / "bin"
    elsewhere.symlink_to(bindir, target_is_directory=True)
    assert template_cache.template_kind(elsewhere, run_as()) == before
    real = template_cache._read_source

    def edited(name: str) -> bytes:
        return real(name) + (b"\n-- one more line\n" if name == "seed.sql" else b"")

    monkeypatch.setattr(template_cache, "_read_source", edited)
    assert template_cache.template_kind(bindir, run_as()) != before


def test_off_means_no_cache_and_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(template_cache.CACHE_ENV, "off")
    assert template_cache.cache_root() is None
    assert template_cache.lookup(find_pg_bindir(), run_as()) is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv(template_cache.CACHE_ENV, str(blocker / "cache"))
    template = LocalPostgres.init_template(tmp_path / "tpl")  # built, stored nowhere, no exception
    try:
        assert (template.data_dir / "PG_VERSION").is_file()
    finally:
        template.cleanup()


def test_runs_storing_the_same_template_at_once_leave_one_whole_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `make test` in two clones at once: both miss the cache, both store; each writes its own staging
    directory and renames it into place, so one copy wins whole and the other's staging goes."""
    monkeypatch.setenv(template_cache.CACHE_ENV, "off")
    template = LocalPostgres.init_template(tmp_path / "tpl")
    cache = tmp_path / "cache"
    monkeypatch.setenv(template_cache.CACHE_ENV, str(cache))
    start = threading.Barrier(RUNS)

    def store() -> None:
        start.wait()
        template_cache.store(template.data_dir, template.bindir, run_as())

    try:
        threads = [threading.Thread(target=store) for _ in range(RUNS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        template.cleanup()
    (kind,) = cache.iterdir()
    assert kind.name == template_cache.template_kind(find_pg_bindir(), run_as())
    assert (kind / "data" / "PG_VERSION").is_file()
    assert template_cache.lookup(find_pg_bindir(), run_as()) == kind / "data"
