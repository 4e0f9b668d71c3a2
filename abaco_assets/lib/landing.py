"""Find the deliveries in a landing store: ``<landing>/<source>/<YYYY-MM-DD>/<file>``.

The landing root is a folder, an S3 prefix or a GCS prefix (``storage``);
this module only sees keys.  ``classify_key`` is the one rule for what a key
means, shared by the ingestion scan and the sensors, so a key a sensor
skipped is never ingested by ``abaco run`` and the other way round.  A key
whose path or name matches no contract is reported as skipped and left where
it is.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from contracts.registry import CONTRACT_VERSIONS, SOURCES
from abaco_assets.lib.storage import LandingStore, LocalLandingStore, landing_store_at

ZIP_TABLE = "_zip"  # the table name under which a Cascade zip container is kept in raw


@dataclass(frozen=True)
class LandingFile:
    source: str
    table: str
    delivery_date: dt.date
    key: str  # relative to the landing root (for a zip member: "<zip key>!<member>")
    store: LandingStore = field(compare=False, repr=False)
    object_key: str  # the stored object (the zip, for a member)
    mtime: float  # the object's modification time (orders versions of a table)
    size: int
    member: str | None = None
    # what else the listing says changes when the object is rewritten: a file's inode change time
    # (moves on every write, unlike an mtime that can be set back), an object's ETag / MD5
    change_mark: str = ""

    def read(self) -> bytes:
        if self.member is None:
            return self.store.read(self.object_key)
        with self.store.open_seekable(self.object_key) as handle, zipfile.ZipFile(handle) as archive:
            return archive.read(self.member)

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1] if self.member else self.object_key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SkippedKey:
    key: str
    reason: str


@dataclass(frozen=True)
class KeyMatch:
    """A key that belongs to a delivery: its source, date and table (None for a Cascade zip)."""

    source: str
    delivery_date: dt.date
    table: str | None
    name: str

    @property
    def is_zip(self) -> bool:
        return self.table is None


@dataclass
class LandingScan:
    files: list[LandingFile] = field(default_factory=list)
    containers: list[LandingFile] = field(default_factory=list)  # zip files themselves (kept in raw)
    skipped: list[SkippedKey] = field(default_factory=list)

    def deliveries(self) -> dict[tuple[str, dt.date], list[LandingFile]]:
        grouped: dict[tuple[str, dt.date], list[LandingFile]] = {}
        for item in self.files:
            grouped.setdefault((item.source, item.delivery_date), []).append(item)
        return dict(sorted(grouped.items(), key=lambda kv: (kv[0][1], SOURCES.index(kv[0][0]))))


def _patterns(source: str) -> list[tuple[str, re.Pattern[str]]]:
    return [
        (table, re.compile(versions[-1].file_pattern, re.IGNORECASE))
        for (src, table), versions in CONTRACT_VERSIONS.items()
        if src == source
    ]


def match_table(source: str, name: str) -> str | None:
    for table, pattern in _patterns(source):
        if pattern.fullmatch(name):
            return table
    return None


def _name_date_mismatch(source: str, name: str, delivery_date: dt.date) -> bool:
    digits = re.search(r"_(\d{8})\.csv$", name, re.IGNORECASE)
    return source != "cascade" and digits is not None and digits.group(1) != delivery_date.strftime("%Y%m%d")


def classify_key(key: str) -> KeyMatch | SkippedKey | None:
    """What a landing key is: part of a delivery, an unexpected file (skipped, with the reason),
    or None for a hidden temp file (an upload or an editor in progress) inside a source."""
    parts = key.split("/")
    name = parts[-1]
    if parts[0] not in SOURCES:
        if len(parts) == 1:
            return None if name.startswith(".") else SkippedKey(key, "not under a <source>/<YYYY-MM-DD>/ folder")
        return SkippedKey(key, f"unknown source '{parts[0]}'")
    source = parts[0]
    if name.startswith("."):
        return None
    day = None
    if len(parts) >= 3:
        try:
            day = dt.date.fromisoformat(parts[1])
        except ValueError:
            day = None
    if day is None:
        return SkippedKey(key, "not under a <source>/<YYYY-MM-DD>/ folder")
    if len(parts) > 3:
        return SkippedKey(key, "nested folder inside a delivery date")
    if source == "cascade" and name.lower().endswith(".zip"):
        return KeyMatch(source, day, None, name)
    table = match_table(source, name)
    if table is None:
        return SkippedKey(key, f"file name matches no {source} table")
    if _name_date_mismatch(source, name, day):
        return SkippedKey(key, "the date in the file name differs from its folder's date")
    return KeyMatch(source, day, table, name)


def zip_members(handle: BinaryIO, key: str) -> tuple[list[tuple[str, str, int]], list[SkippedKey]]:
    """(member, table, size) of every member of a Cascade zip that matches a table, and the skipped ones.

    Raises ``zipfile.BadZipFile`` for an unreadable archive.
    """
    with zipfile.ZipFile(handle) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    members, skipped = [], []
    for info in infos:
        table = match_table("cascade", info.filename.rsplit("/", 1)[-1])
        if table is None:
            skipped.append(SkippedKey(f"{key}!{info.filename}", "zip member matches no cascade table"))
        else:
            members.append((info.filename, table, info.file_size))
    return members, skipped


def as_landing_store(root: Path | str | LandingStore) -> LandingStore:
    return root if hasattr(root, "list_objects") else landing_store_at(root)


def scan_landing(root: Path | str | LandingStore, *, source: str | None = None,
                 delivery_date: dt.date | None = None) -> LandingScan:
    """Every file under ``root`` (a folder, an s3:// or gs:// URL, or a store; optionally one
    source / one date), classified."""
    store = as_landing_store(root)
    prefix = f"{source}/{delivery_date.isoformat()}/" if source and delivery_date else f"{source}/" if source else ""
    scan = LandingScan()
    # object stores list their ETag / MD5 for free; a folder would have to read every file for it
    for landed in store.list_objects(prefix, fingerprint=not isinstance(store, LocalLandingStore)):
        verdict = classify_key(landed.key)
        if verdict is None:
            continue
        if isinstance(verdict, SkippedKey):
            scan.skipped.append(verdict)
            continue
        mark = f"{landed.arrived_at!r}/{landed.etag}"
        if verdict.is_zip:
            _scan_zip(scan, store, landed.key, verdict.delivery_date, landed.modified_at, landed.size_bytes, mark)
            continue
        scan.files.append(LandingFile(verdict.source, verdict.table, verdict.delivery_date, landed.key, store,
                                      landed.key, landed.modified_at, landed.size_bytes, change_mark=mark))
    return scan


def _scan_zip(scan: LandingScan, store: LandingStore, key: str, day: dt.date, mtime: float, size: int,
              mark: str) -> None:
    try:
        with store.open_seekable(key) as handle:
            members, skipped = zip_members(handle, key)
    except zipfile.BadZipFile:
        scan.skipped.append(SkippedKey(key, "not a readable zip archive"))
        return
    scan.containers.append(LandingFile("cascade", ZIP_TABLE, day, key, store, key, mtime, size, change_mark=mark))
    scan.skipped.extend(skipped)
    for member, table, member_size in members:
        scan.files.append(LandingFile("cascade", table, day, f"{key}!{member}", store, key, mtime, member_size,
                                      member=member, change_mark=mark))
