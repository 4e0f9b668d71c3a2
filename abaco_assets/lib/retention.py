"""Retention of regulatory evidence: applied only by an explicit command, never by a normal run.

Default 7 years for validation artifacts, lineage events, audit records and raw
files (``ABACO_RETENTION_YEARS`` or ``--years``).  Audit segments are whole
years, so dropping one keeps the remaining chain verifiable (its first record
anchors it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

DEFAULT_YEARS = 7
# folder under ABACO_DATA -> how the age of an entry is read
POLICIES = {
    "logs/runs": "date_folder",      # logs/runs/<delivery date>/<run_id>/
    "logs/freshness": "date_folder",
    "logs/lineage": "mtime",
    "audit": "audit_segment",        # audit/audit-<year>.jsonl
    "raw": "date_folder_depth3",     # raw/<source>/<table>/<date>/
    "quarantine": "date_folder_depth3",
}


@dataclass(frozen=True)
class Expired:
    path: Path
    reason: str


def retention_years() -> int:
    return int(os.environ.get("ABACO_RETENTION_YEARS") or DEFAULT_YEARS)


def expired(data_dir: Path, years: int, today: dt.date | None = None) -> list[Expired]:
    today = today or dt.date.today()
    cutoff = today.replace(year=today.year - years) if not (today.month == 2 and today.day == 29) else \
        dt.date(today.year - years, 2, 28)
    found: list[Expired] = []
    for folder, rule in POLICIES.items():
        root = data_dir / folder
        if not root.exists():
            continue
        if rule == "date_folder":
            candidates = [p for p in root.iterdir() if p.is_dir()]
        elif rule == "date_folder_depth3":
            candidates = [p for p in root.glob("*/*/*") if p.is_dir()]
        elif rule == "audit_segment":
            candidates = list(root.glob("audit-*.jsonl"))
        else:
            candidates = [p for p in root.rglob("*") if p.is_file()]
        for path in candidates:
            day = _age(path, rule)
            if day is not None and day < cutoff:
                found.append(Expired(path, f"{folder}: {day} is older than {years} years (before {cutoff})"))
    return sorted(found, key=lambda e: str(e.path))


def _age(path: Path, rule: str) -> dt.date | None:
    if rule == "audit_segment":
        match = re.fullmatch(r"audit-(\d{4})\.jsonl", path.name)
        return dt.date(int(match.group(1)), 12, 31) if match else None
    if rule == "mtime":
        return dt.date.fromtimestamp(path.stat().st_mtime)
    try:
        return dt.date.fromisoformat(path.name)
    except ValueError:
        return None


def apply(entries: list[Expired]) -> None:
    for entry in entries:
        if entry.path.is_dir():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink()
