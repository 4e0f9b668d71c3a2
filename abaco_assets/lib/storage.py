"""The places the platform reads from and writes to, behind two small interfaces.

* ``Zone``: a write target (raw, quarantine, typed, catalog, logs).  Local
  folders are the embedded default; S3 and GCS prefixes (``object_store``)
  implement the same verbs.  The write-once and atomic-replace guarantees
  are part of the interface, not of the callers.
* ``LandingStore``: where upstream files arrive.  It lists objects with the
  fields a sensor cursor needs (arrival time, key, ETag) and reads them,
  whole or through a seekable handle (a zip's table of contents is read
  without downloading the archive).

A location is a folder path or a ``s3://bucket/prefix`` / ``gs://bucket/prefix``
URL; ``zone_at`` and ``landing_store_at`` pick the backend from it, so every
root (landing, raw, quarantine) can live on any backend.  The object-store
classes import their SDKs lazily: a local installation never pays for them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from abaco_assets.lib.faults import fault_point

OBJECT_STORE_SCHEMES = ("s3", "gs")
_MD5_CHUNK_BYTES = 1 << 20


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json_record(path: Path | str) -> dict:
    """A small JSON state file (a ledger, a fingerprint record); {} when missing or unreadable, so the
    caller recomputes rather than trusts it."""
    try:
        record = json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def append_line(path: Path | str, line: bytes) -> None:
    """Append one line to a shared log file under an exclusive lock (processes write whole lines)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class WriteOnceViolation(RuntimeError):
    """A content-addressed key already holds other bytes: the store was tampered with or corrupted.

    Raised instead of overwriting, so the evidence stays where it is.
    """


class Zone(Protocol):
    def put_once(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless an intact copy is there; True when written."""

    def replace(self, key: str, data: bytes) -> None:
        """Atomically make ``key`` hold ``data`` (readers see the old or the new bytes, never a mix)."""

    def read(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def locate(self, key: str) -> str:
        """Where a reader (DuckDB, a person) finds the object."""


class LocalZone:
    """A folder. Writes go to a temporary file in the same folder, then ``os.replace``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def locate(self, key: str) -> str:
        return str(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put_once(self, key: str, data: bytes) -> bool:
        """Write-once for content-addressed keys: a copy whose hash does not match the
        expected content (e.g. truncated by a crash) is detected and replaced."""
        target = self.path(key)
        if target.exists() and sha256_hex(target.read_bytes()) == sha256_hex(data):
            return False
        self.replace(key, data)
        return True

    def replace(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                view, half = memoryview(data), len(data) // 2  # halves without copying the bytes
                handle.write(view[:half])
                fault_point(f"mid_write:{target.suffix.lstrip('.')}")
                handle.write(view[half:])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class LandedObject:
    """One file in a landing store, as a listing reports it (times in epoch seconds)."""

    key: str  # relative to the landing root, '/'-separated: <source>/<YYYY-MM-DD>/<file name>
    modified_at: float  # what orders versions of a table (feeds.md): S3/GCS LastModified, a file's mtime
    arrived_at: float  # what the sensor cursor runs on: LastModified, or a file's inode change time
    etag: str  # content fingerprint as the store reports it ("" when the listing was asked not to compute it)
    size_bytes: int


class LandingStore(Protocol):
    def list_objects(self, prefix: str = "", *, fingerprint: bool = True) -> Iterator[LandedObject]:
        """Every object under ``prefix`` (relative to the root), all pages, sorted by key."""

    def read(self, key: str) -> bytes: ...

    def open_seekable(self, key: str) -> BinaryIO:
        """A seekable binary handle; object stores read it with ranged GETs."""

    def locate(self, key: str = "") -> str:
        """The location a person can paste (a path or an s3:// / gs:// URL)."""

    def unavailable_reason(self) -> str | None:
        """None when the root can be listed, else why not (for a user-facing error)."""


class LocalLandingStore:
    """A landing folder, seen the way an object store lists a bucket.

    ``arrived_at`` is the inode change time: it moves when a file is written,
    copied or moved into the folder, even when the copy keeps an old mtime, so
    a late-copied delivery is still new to the sensor.  The ETag is the MD5 of
    the content (what S3 reports for a single-part upload), so re-copying
    identical bytes is recognised; hashes are cached per (path, size, mtime,
    inode) for the life of the process, so a sensor tick hashes only new files.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def locate(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def unavailable_reason(self) -> str | None:
        return None if self.root.is_dir() else f"landing folder {self.root} does not exist"

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def open_seekable(self, key: str) -> BinaryIO:
        return open(self.root / key, "rb")

    def list_objects(self, prefix: str = "", *, fingerprint: bool = True) -> Iterator[LandedObject]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        found: list[tuple[str, Path]] = []
        for folder, subfolders, files in os.walk(base):
            subfolders.sort()
            for name in files:
                path = Path(folder) / name
                found.append((path.relative_to(self.root).as_posix(), path))
        for key, path in sorted(found):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between the walk and the stat
                continue
            etag = _cached_md5(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino) if fingerprint else ""
            yield LandedObject(key, stat.st_mtime, stat.st_ctime, etag, stat.st_size)


_MD5_CACHE: dict[tuple[str, int, int, int], str] = {}
_MD5_CACHE_MAX_ENTRIES = 200_000  # a long-running code server forgets old versions past this


def _cached_md5(path: str, size_bytes: int, mtime_ns: int, inode: int) -> str:
    cache_key = (path, size_bytes, mtime_ns, inode)
    if cache_key not in _MD5_CACHE:
        if len(_MD5_CACHE) >= _MD5_CACHE_MAX_ENTRIES:
            _MD5_CACHE.clear()
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(_MD5_CHUNK_BYTES):
                digest.update(chunk)
        _MD5_CACHE[cache_key] = digest.hexdigest()
    return _MD5_CACHE[cache_key]


@dataclass(frozen=True)
class ObjectLocation:
    scheme: str  # "s3" | "gs"
    bucket: str
    prefix: str  # "" or ending with "/"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


def parse_object_url(location: str) -> ObjectLocation | None:
    """``s3://bucket/some/prefix`` -> (s3, bucket, "some/prefix/"); None for a plain path."""
    scheme, sep, rest = str(location).partition("://")
    if not sep:
        return None
    if scheme not in OBJECT_STORE_SCHEMES:
        raise ValueError(f"unsupported storage URL {location!r}: use s3://bucket/prefix, gs://bucket/prefix or a path")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"storage URL {location!r} names no bucket")
    prefix = prefix.strip("/")
    return ObjectLocation(scheme, bucket, f"{prefix}/" if prefix else "")


def is_object_url(location: str | Path) -> bool:
    return parse_object_url(str(location)) is not None


def zone_at(location: str | Path) -> Zone:
    """A write zone on the backend the location names."""
    parsed = parse_object_url(str(location))
    if parsed is None:
        return LocalZone(Path(location).resolve())
    from abaco_assets.lib.object_store import object_prefix

    return object_prefix(parsed)


def landing_store_at(location: str | Path) -> LandingStore:
    """A landing store on the backend the location names."""
    parsed = parse_object_url(str(location))
    if parsed is None:
        return LocalLandingStore(Path(location).resolve())
    from abaco_assets.lib.object_store import object_prefix

    return object_prefix(parsed)
