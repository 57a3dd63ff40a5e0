"""Recordings: written line by line (plain, gzip, zstd), read back, torn tails skipped, versions checked."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pgiam_devtools.sample import sample_snapshots, synthetic_snapshot

from pgiam_tui.jsonout import cluster_to_json
from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.recording import FORMAT, RecordingError, RecordingHeader, RecordingWriter, read_recording
from pgiam_tui.snapshot_codec import SnapshotDecodeError, decode_cluster

START = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def header(**changes: object) -> RecordingHeader:
    base = RecordingHeader(format=FORMAT, version="0.1.0", started_at=START, config_digest="sha256:x",
                           clusters=("a", "b"))  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def rounds(n: int) -> list[ClusterSnapshot]:
    snaps = []
    for i in range(n):
        for s in sample_snapshots():
            snaps.append(dataclasses.replace(s, collected_at=START + timedelta(seconds=2 * i)))
    return snaps


def test_every_sample_snapshot_survives_json_and_back() -> None:
    # the reader walks the model's type hints: decoding what jsonout wrote and writing it again is identical
    for snap in [*sample_snapshots(), synthetic_snapshot("big", 300, 3)]:
        data = cluster_to_json(snap)
        again = decode_cluster(json.loads(json.dumps(data)))
        assert cluster_to_json(again) == data
        assert again.name == snap.name and again.collected_at == snap.collected_at
        assert len(again.activity) == len(snap.activity)
        assert isinstance(again.activity, tuple)


# What a recording deliberately leaves out (the replay never acts on a cluster, so the flag is moot).
NOT_WRITTEN = {"ClusterSnapshot.actions_allowed"}


def _fields_missing(kind: type, data: object, where: str) -> set[str]:
    missing: set[str] = set()
    if not dataclasses.is_dataclass(kind) or not isinstance(data, dict):
        return missing
    for f in dataclasses.fields(kind):
        if f.name not in data:
            missing.add(f"{kind.__name__}.{f.name}")
    return missing


def test_the_json_writer_names_every_field_of_the_snapshot() -> None:
    # a field the writer forgets would silently vanish from recordings and replays
    snap = sample_snapshots()[0]
    data = cluster_to_json(snap)
    assert _fields_missing(ClusterSnapshot, data, "") <= NOT_WRITTEN
    row = data["activity"][0]
    assert _fields_missing(type(snap.activity[0]), row, "") == set()


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_written_and_read_back(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rec{suffix}"
    snaps = rounds(5)
    with RecordingWriter(path, header()) as writer:
        for s in snaps:
            writer.write(s)
    rec = read_recording(path)
    assert rec.header.version == "0.1.0" and rec.header.clusters == ("a", "b")
    assert [s.collected_at for s in rec.snapshots] == [s.collected_at for s in snaps]
    assert rec.skipped == 0 and not rec.torn_tail


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_each_line_reaches_the_file_as_it_is_written(tmp_path: Path, suffix: str) -> None:
    # a crash right after a write loses nothing: read the file while the writer is still open
    path = tmp_path / f"rec{suffix}"
    writer = RecordingWriter(path, header())
    for s in rounds(2):
        writer.write(s)
    rec = read_recording(path)  # not closed: no gzip trailer yet
    assert len(rec.snapshots) == 2 * len(sample_snapshots())
    writer.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    with RecordingWriter(path, header()) as writer:
        for s in rounds(3):
            writer.write(s)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])  # cut inside the last line
    rec = read_recording(path)
    assert len(rec.snapshots) == 3 * len(sample_snapshots()) - 1
    assert rec.torn_tail and rec.skipped == 1


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_a_compressed_file_cut_mid_block_replays_up_to_the_cut(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rec{suffix}"
    snaps = rounds(4)
    writer = RecordingWriter(path, header())
    for s in snaps[:-1]:
        writer.write(s)
    before_last = path.stat().st_size
    writer.write(snaps[-1])
    writer.close()
    data = path.read_bytes()
    path.write_bytes(data[: before_last + (len(data) - before_last) // 2])  # inside the last line's block
    rec = read_recording(path)
    assert len(rec.snapshots) == len(snaps) - 1
    assert rec.torn_tail


def test_another_format_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    line = {"pgiam_tui_recording": FORMAT + 1, "version": "9.0.0", "started_at": START.isoformat()}
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(RecordingError, match=r"recorded by pgiam-tui 9\.0\.0 .* this is pgiam-tui"):
        read_recording(path)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty recording"), (b'{"name": "x"}\n', "not a pgiam-tui recording"), (b"\xff\xfe\n", "not a")],
)
def test_not_a_recording(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=needle):
        read_recording(path)


def test_missing_file_and_existing_target(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such file"):
        read_recording(tmp_path / "nope.jsonl")
    target = tmp_path / "old.jsonl"
    target.write_text("keep me\n")
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(target, header())
    assert target.read_text() == "keep me\n"


def test_a_line_of_the_wrong_shape_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    with RecordingWriter(path, header()) as writer:
        writer.write(rounds(1)[0])
    with path.open("a") as fh:
        fh.write(json.dumps({"name": "x", "status": "sideways", "collected_at": START.isoformat()}) + "\n")
    rec = read_recording(path)
    assert len(rec.snapshots) == 1 and rec.skipped == 1


def test_decode_errors_name_the_place() -> None:
    data = cluster_to_json(sample_snapshots()[0])
    data["activity"][0]["pid"] = "twelve"
    with pytest.raises(SnapshotDecodeError, match=r"activity\[0\]\.pid"):
        decode_cluster(data)


def test_query_text_is_kept_exactly_and_never_raw_on_disk(tmp_path: Path) -> None:
    snap = sample_snapshots()[0]
    hostile = "select '\x1b]0;title\x07 \x7f caf\u00e9 \u202e'"
    row = dataclasses.replace(snap.activity[0], query=hostile)
    path = tmp_path / "rec.jsonl"
    with RecordingWriter(path, header()) as writer:
        writer.write(dataclasses.replace(snap, activity=(row,)))
    raw = path.read_bytes()
    assert all(32 <= b < 127 or b == 10 for b in raw)  # ASCII, no control byte, DEL included
    assert read_recording(path).snapshots[0].activity[0].query == hostile
