"""Find the deliveries in a landing tree: ``<landing>/<source>/<YYYY-MM-DD>/<file>``.

A file whose path or name matches no contract is never ingested: it is
reported as skipped and left where it is.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from contracts.registry import CONTRACT_VERSIONS, SOURCES


@dataclass(frozen=True)
class LandingFile:
    source: str
    table: str
    delivery_date: dt.date
    key: str  # path relative to the landing root (for a zip member: "<zip key>!<member>")
    path: Path  # the file on disk (the zip, for a member)
    mtime: float
    size: int
    member: str | None = None

    def read(self) -> bytes:
        if self.member is None:
            return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self.member)

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1] if self.member else self.path.name


@dataclass(frozen=True)
class SkippedKey:
    key: str
    reason: str


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


def scan_landing(root: Path, *, source: str | None = None, delivery_date: dt.date | None = None) -> LandingScan:
    """Every file under ``root`` (optionally one source / one date), classified."""
    scan = LandingScan()
    root = Path(root)
    sources = [source] if source else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
    for src in sources:
        src_dir = root / src
        if src not in SOURCES:
            for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
                scan.skipped.append(SkippedKey(str(path.relative_to(root)), f"unknown source '{src}'"))
            continue
        if not src_dir.exists():
            continue
        for date_dir in sorted(src_dir.iterdir()):
            if delivery_date and date_dir.name != delivery_date.isoformat():
                continue
            items = sorted(p for p in date_dir.rglob("*") if p.is_file()) if date_dir.is_dir() else [date_dir]
            try:
                day = dt.date.fromisoformat(date_dir.name) if date_dir.is_dir() else None
            except ValueError:
                day = None
            for path in items:
                key = str(path.relative_to(root))
                if path.name.startswith("."):
                    continue  # editor / upload temp files are not deliveries
                if day is None:
                    scan.skipped.append(SkippedKey(key, "not under a <source>/<YYYY-MM-DD>/ folder"))
                    continue
                if path.parent != date_dir:
                    scan.skipped.append(SkippedKey(key, "nested folder inside a delivery date"))
                    continue
                stat = path.stat()
                if src == "cascade" and path.suffix.lower() == ".zip":
                    _scan_zip(scan, root, path, day, stat.st_mtime)
                    continue
                table = match_table(src, path.name)
                if table is None:
                    scan.skipped.append(SkippedKey(key, f"file name matches no {src} table"))
                elif _name_date_mismatch(src, path.name, day):
                    scan.skipped.append(SkippedKey(key, "the date in the file name differs from its folder's date"))
                else:
                    scan.files.append(LandingFile(src, table, day, key, path, stat.st_mtime, stat.st_size))
    return scan


def _scan_zip(scan: LandingScan, root: Path, path: Path, day: dt.date, mtime: float) -> None:
    key = str(path.relative_to(root))
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile:
        scan.skipped.append(SkippedKey(key, "not a readable zip archive"))
        return
    scan.containers.append(LandingFile("cascade", "_zip", day, key, path, mtime, path.stat().st_size))
    for info in members:
        name = info.filename.rsplit("/", 1)[-1]
        table = match_table("cascade", name)
        if table is None:
            scan.skipped.append(SkippedKey(f"{key}!{info.filename}", "zip member matches no cascade table"))
            continue
        scan.files.append(LandingFile("cascade", table, day, f"{key}!{info.filename}", path, mtime, info.file_size,
                                      member=info.filename))
