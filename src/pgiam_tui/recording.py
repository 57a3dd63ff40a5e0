"""Recordings: what the console would show, as append-only JSON lines (`record` writes, `replay` reads).

Line 1 is a header (`{"pgiam_tui_recording": FORMAT, "version", "config_digest", "started_at", ...}`); every
later line is one cluster snapshot in the `snapshot --json` cluster schema, so `jq` reads a recording too
(`zcat rec.jsonl.gz | jq -c 'select(.name) | {name, collected_at}'`). A name ending in `.gz` is gzip, `.zst`
zstandard; each line is flushed through the compressor as it is written (a sync flush), so a crash or Ctrl+C
loses at most the line being written. On read, a torn or undecodable line is skipped and counted, never fatal.

Snapshots hold no token or password (only a token's expiry), so nothing secret can reach a recording; query
text is kept exactly as the database sent it (escaping is the renderer's job, when it is shown).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pgiam_tui.model import ClusterSnapshot
from pgiam_tui.snapshot_codec import SnapshotDecodeError, decode_cluster

__all__ = [
    "FORMAT",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "RecordingWriter",
    "config_digest",
    "read_recording",
]

# Bumped only when a line can no longer be read by the previous reader (new keys do not bump it: the reader
# ignores keys it does not know and defaults keys that are missing).
FORMAT = 1
MAGIC = "pgiam_tui_recording"


class RecordingError(Exception):
    """A recording that cannot be written or read (one line for the user)."""


def package_version() -> str:
    """The installed pgiam-tui version (the header names it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pgiam-tui")
    except PackageNotFoundError:
        return "unknown"


def config_digest(path: Path | None) -> str | None:
    """sha256 of the config file's bytes: which configuration a recording was made with (not its content)."""
    if path is None:
        return None
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """The first line of a recording."""

    format: int
    version: str
    started_at: datetime
    config_digest: str | None = None
    clusters: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The header line's object."""
        return {
            MAGIC: self.format,
            "version": self.version,
            "started_at": self.started_at.isoformat(),
            "config_digest": self.config_digest,
            "clusters": list(self.clusters),
        }


def _open_write(path: Path) -> IO[bytes]:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "ab")  # type: ignore[return-value]
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return zstandard.open(path, "ab")  # type: ignore[no-any-return]
    return open(path, "ab")


class RecordingWriter:
    """Appends snapshots to FILE, one JSON line each, flushed as written. Use as a context manager."""

    def __init__(self, path: Path, header: RecordingHeader) -> None:
        self.path = Path(path)
        self.lines = 0
        try:
            if self.path.exists() and self.path.stat().st_size > 0:
                raise RecordingError(f"{self.path}: already exists; record into a new file")
            self._fh: IO[bytes] = _open_write(self.path)
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        except ImportError:
            raise RecordingError(
                f"{self.path}: zstandard compression needs the `zstandard` package (or use .gz)"
            ) from None
        self._write(header.to_json())

    def write(self, snapshot: ClusterSnapshot) -> None:
        """Append one cluster snapshot (the `snapshot --json` cluster object)."""
        from pgiam_tui.jsonout import cluster_to_json

        self._write(cluster_to_json(snapshot))
        self.lines += 1

    def _write(self, obj: dict[str, Any]) -> None:
        # one write of one whole line, then a sync flush through the compressor: a crash tears at most it;
        # ASCII only, DEL escaped too, so `cat` or `jq -r` on a terminal never meets a raw control character
        text = json.dumps(obj, ensure_ascii=True, separators=(",", ":")).replace("\x7f", "\\u007f")
        data = (text + "\n").encode("ascii")
        try:
            self._fh.write(data)
            if isinstance(self._fh, gzip.GzipFile):
                self._fh.flush(zlib.Z_SYNC_FLUSH)
            elif hasattr(self._fh, "flush"):
                self._flush_other()
        except OSError as exc:
            raise RecordingError(f"{self.path}: write failed: {exc.strerror or exc}") from None

    def _flush_other(self) -> None:
        try:
            import zstandard
        except ImportError:
            self._fh.flush()
            return
        if isinstance(self._fh, zstandard.ZstdCompressionWriter):
            self._fh.flush(zstandard.FLUSH_BLOCK)
        else:
            self._fh.flush()

    def close(self) -> None:
        """Finish the file (a recording that was never closed is still readable up to its last whole line)."""
        self._fh.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Recording:
    """A recording read back: its header, its snapshots in file order, and what had to be skipped."""

    header: RecordingHeader
    snapshots: list[ClusterSnapshot] = field(default_factory=list)
    skipped: int = 0  # torn or undecodable lines
    torn_tail: bool = False  # the file ended inside a line or a compressed block (a crash mid-write)


def _decompress(data: bytes, name: str, path: Path) -> tuple[bytes, bool]:
    """The decompressed bytes of a whole or cut file, and whether it was cut mid-stream.

    Decompression objects, not file readers: a reader drops the last decoded block when the stream ends
    early, a decompressobj hands out everything it could decode up to the cut.
    """
    if name.endswith(".gz"):
        out: list[bytes] = []
        rest = data
        while rest:
            d = zlib.decompressobj(wbits=31)  # one gzip member (appending to .gz adds members)
            try:
                out.append(d.decompress(rest))
            except zlib.error:
                return b"".join(out), True
            if not d.eof:
                out.append(d.flush())
                return b"".join(out), True
            rest = d.unused_data
        return b"".join(out), False
    if name.endswith((".zst", ".zstd")):
        try:
            import zstandard
        except ImportError:
            raise RecordingError(f"{path}: reading .zst needs the `zstandard` package") from None
        chunks: list[bytes] = []
        rest = data
        while rest:
            z = zstandard.ZstdDecompressor().decompressobj()
            try:
                chunks.append(z.decompress(rest))
            except zstandard.ZstdError:
                return b"".join(chunks), True
            if not z.eof:
                return b"".join(chunks), True
            rest = z.unused_data
        return b"".join(chunks), False
    return data, False


def _raw_lines(path: Path) -> tuple[list[bytes], bool]:
    """Every line of the (decompressed) file, and whether its end was torn."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    data, torn = _decompress(raw, path.name.lower(), path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        torn = True  # no newline after the last line: it was being written
    return lines, torn


def _header(line: bytes, path: Path) -> RecordingHeader:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if not isinstance(obj, dict) or MAGIC not in obj:
        raise RecordingError(f"{path}: not a pgiam-tui recording (no header line)")
    fmt = obj.get(MAGIC)
    version = str(obj.get("version", "unknown"))
    if fmt != FORMAT:
        raise RecordingError(
            f"{path}: recorded by pgiam-tui {version} (recording format {fmt}); this is pgiam-tui "
            f"{package_version()}, which reads format {FORMAT}"
        )
    try:
        started = datetime.fromisoformat(str(obj.get("started_at")))
    except ValueError:
        raise RecordingError(f"{path}: header has no valid started_at") from None
    clusters = obj.get("clusters") or []
    return RecordingHeader(
        format=FORMAT,
        version=version,
        started_at=started,
        config_digest=obj.get("config_digest") if isinstance(obj.get("config_digest"), str) else None,
        clusters=tuple(str(c) for c in clusters) if isinstance(clusters, list) else (),
    )


def read_recording(path: Path) -> Recording:
    """Read FILE (plain, .gz or .zst): the header must be whole; later bad lines are skipped and counted."""
    path = Path(path)
    lines, torn = _raw_lines(path)
    if not lines:
        raise RecordingError(f"{path}: empty recording")
    recording = Recording(header=_header(lines[0], path), torn_tail=torn)
    for line in lines[1:]:
        snap = _snapshot(line)
        if snap is None:
            recording.skipped += 1
        else:
            recording.snapshots.append(snap)
    return recording


def _snapshot(line: bytes) -> ClusterSnapshot | None:
    try:
        obj = json.loads(line)
        return decode_cluster(obj)
    except (ValueError, UnicodeDecodeError, SnapshotDecodeError, TypeError):
        return None
