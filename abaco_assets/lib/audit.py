"""An append-only, tamper-evident record of every dataset read and write.

Why a hash chain: an auditor must be able to tell that no record was
edited or removed after the fact.  Each record carries the SHA-256 of the
previous record and its own hash over (previous hash + canonical JSON of
its fields), so changing, inserting or deleting a line breaks the chain at
that line.  One writer at a time (an exclusive ``flock``), records appended
with ``O_APPEND`` and fsynced.  Files are segmented by year so retention can
drop whole old years; the first record of a segment anchors the chain to
the last hash of the previous one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GENESIS = "0" * 64
ACTIONS = ("read", "write", "quarantine", "delete")


def principal_from_environment(run_tags: dict[str, str] | None = None) -> str:
    """Who acts: explicit ABACO_PRINCIPAL, else the run's tag, else the Kubernetes service account, else the OS user."""
    tags = run_tags or {}
    for candidate in (os.environ.get("ABACO_PRINCIPAL"), tags.get("abaco/principal"),
                      os.environ.get("ABACO_K8S_SERVICE_ACCOUNT")):
        if candidate:
            return candidate
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class AuditContext:
    principal: str
    purpose: str
    ticket: str | None
    run_id: str | None

    @classmethod
    def from_run(cls, run_id: str | None, tags: dict[str, str] | None) -> "AuditContext":
        tags = tags or {}
        purpose = tags.get("abaco/purpose") or os.environ.get("ABACO_PURPOSE") or (
            "scheduled" if tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name") else "pipeline run")
        return cls(principal_from_environment(tags), purpose,
                   tags.get("abaco/ticket") or os.environ.get("ABACO_TICKET"), run_id)


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def _record_hash(previous: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + _canonical(fields)).hexdigest()


class AuditLog:
    """``$ABACO_DATA/audit/audit-<year>.jsonl`` plus a lock file."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _segment(self, when: dt.datetime) -> Path:
        return self.root / f"audit-{when.year}.jsonl"

    def segments(self) -> list[Path]:
        return sorted(self.root.glob("audit-*.jsonl"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _last_hash(self) -> str:
        for segment in reversed(self.segments()):
            last = _last_line(segment)
            if last:
                return json.loads(last)["hash"]
        return GENESIS

    def record(self, context: AuditContext, *, action: str, dataset: str, partition: str | None = None,
               rows: int | None = None, content_hash: str | None = None, detail: str | None = None) -> dict:
        return self.record_many(context, [dict(action=action, dataset=dataset, partition=partition, rows=rows,
                                               content_hash=content_hash, detail=detail)])[0]

    def record_many(self, context: AuditContext, records: list[dict[str, Any]]) -> list[dict]:
        """Append records (each: action, dataset and optionally partition, rows, content_hash, detail)
        as one chained block: one lock, one write, one fsync for a step's reads and writes."""
        if not records:
            return []
        unknown = [record["action"] for record in records if record["action"] not in ACTIONS]
        if unknown:
            raise ValueError(f"unknown audit action {unknown[0]!r}")
        now = dt.datetime.now(dt.timezone.utc)
        common = {"ts": now.isoformat(timespec="microseconds"), "principal": context.principal,
                  "purpose": context.purpose, "ticket": context.ticket, "run_id": context.run_id}
        entries = []
        with self._locked():
            previous = self._last_hash()
            for record in records:
                fields = {**common, "action": record["action"], "dataset": record["dataset"],
                          **{name: record.get(name) for name in ("partition", "rows", "content_hash", "detail")}}
                entries.append({**fields, "prev_hash": previous, "hash": _record_hash(previous, fields)})
                previous = entries[-1]["hash"]
            fd = os.open(self._segment(now), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, b"".join(_canonical(entry) + b"\n" for entry in entries))
                os.fsync(fd)
            finally:
                os.close(fd)
        return entries

    def entries(self) -> Iterator[dict]:
        for segment in self.segments():
            with open(segment, "rb") as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)

    def verify(self) -> tuple[bool, str]:
        """(ok, message). The first present record anchors the chain (older segments may be retired)."""
        previous, count = None, 0
        for segment in self.segments():
            with open(segment, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        entry = json.loads(line)
                        fields = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
                        if previous is not None and entry["prev_hash"] != previous:
                            return False, f"{segment.name}:{number}: chain broken (a record was removed or inserted)"
                        if _record_hash(entry["prev_hash"], fields) != entry["hash"]:
                            return False, f"{segment.name}:{number}: record altered (hash mismatch)"
                    except (ValueError, KeyError) as exc:
                        return False, f"{segment.name}:{number}: unreadable record ({exc})"
                    previous, count = entry["hash"], count + 1
        return True, f"{count} records, chain intact"

    def who(self, dataset: str) -> list[dict]:
        """Every read and write of datasets whose name starts with ``dataset``."""
        return [entry for entry in self.entries() if entry["dataset"].startswith(dataset)]


def _last_line(path: Path) -> bytes:
    """The last non-empty line, read from the end (segments grow large)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        block, data = 4096, b""
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            lines = [line for line in data.split(b"\n") if line.strip()]
            if len(lines) >= 2 or start == 0:
                return lines[-1] if lines else b""
            end = start
    return b""
