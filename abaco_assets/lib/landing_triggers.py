"""From new landing objects to delivery run requests (pure: no Dagster, no I/O of its own).

A sensor tick lists a source's whole prefix, asks the cursor which objects
are new, and hands both here.  Every date touched by a new object is looked
at as a whole delivery (all its files as listed now), because:

* a Cascade delivery runs once, when its required tables are all present
  (loose CSVs or one zip), not once per file; the run key combines the
  keys and ETags of every file of the delivery, so adding the optional
  Collateral table later is a new version, and the same files again are not;
* a collections or delinquency date has one file: its run key is
  ``<key>@<ETag>``.

Keys that match no contract are returned as skipped (the sensor logs them).
"""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from contracts.registry import CONTRACT_VERSIONS, tables_of
from abaco_assets.lib.landing import KeyMatch, SkippedKey, classify_key
from abaco_assets.lib.storage import LandedObject, sha256_hex

# (tables found, skipped members) of a zip object; raises zipfile.BadZipFile when unreadable
ZipTables = Callable[[LandedObject], tuple[set[str], list[SkippedKey]]]


@dataclass(frozen=True)
class DeliveryTrigger:
    source: str
    delivery_date: dt.date
    objects: tuple[LandedObject, ...]  # every file of the delivery, sorted by key
    run_key: str

    @property
    def partition_key(self) -> str:
        return self.delivery_date.isoformat()


@dataclass
class TriggerPlan:
    triggers: list[DeliveryTrigger] = field(default_factory=list)
    skipped: list[SkippedKey] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # incomplete Cascade deliveries, as messages


def required_tables(source: str) -> list[str]:
    return [t for t in tables_of(source) if CONTRACT_VERSIONS[(source, t)][-1].required_in_delivery]


def delivery_run_key(source: str, delivery_date: dt.date, objects: Iterable[LandedObject]) -> str:
    """``key@etag`` for one file; for several, the date and a hash of every ``key@etag``."""
    files = sorted(f"{item.key}@{item.etag}" for item in objects)
    if len(files) == 1:
        return files[0]
    return f"{source}/{delivery_date.isoformat()}/{len(files)}-files@{sha256_hex(chr(10).join(files).encode())[:32]}"


def plan_triggers(source: str, listed: Iterable[LandedObject], fresh: Iterable[LandedObject],
                  zip_tables: ZipTables) -> TriggerPlan:
    plan = TriggerPlan()
    fresh_keys = {item.key for item in fresh}
    by_date: dict[dt.date, list[tuple[LandedObject, KeyMatch]]] = {}
    touched: set[dt.date] = set()
    for item in sorted(listed, key=lambda o: o.key):
        verdict = classify_key(item.key)
        is_fresh = item.key in fresh_keys
        if isinstance(verdict, SkippedKey):
            if is_fresh:
                plan.skipped.append(verdict)
            continue
        if verdict is None or verdict.source != source:
            continue
        by_date.setdefault(verdict.delivery_date, []).append((item, verdict))
        if is_fresh:
            touched.add(verdict.delivery_date)
    needed = set(required_tables(source))
    zip_contents: dict[str, set[str]] = {}
    for day in sorted(touched):
        members = []
        for item, verdict in by_date[day]:  # only the zips of touched dates are opened
            if verdict.is_zip:
                try:
                    tables, skipped_members = zip_tables(item)
                except zipfile.BadZipFile:
                    if item.key in fresh_keys:
                        plan.skipped.append(SkippedKey(item.key, "not a readable zip archive"))
                    continue
                if item.key in fresh_keys:
                    plan.skipped.extend(skipped_members)
                zip_contents[item.key] = tables
            members.append((item, verdict))
        if not members:
            continue
        present = {verdict.table for _, verdict in members if not verdict.is_zip}
        for item, verdict in members:
            if verdict.is_zip:
                present |= zip_contents[item.key]
        missing = sorted(needed - present)
        if missing:
            plan.waiting.append(f"{source} delivery of {day} is waiting for {', '.join(missing)} "
                                f"({len(members)} file(s) so far)")
            continue
        objects = tuple(sorted((item for item, _ in members), key=lambda o: o.key))
        plan.triggers.append(DeliveryTrigger(source, day, objects, delivery_run_key(source, day, objects)))
    return plan


def processed_version(catalog: dict[str, Any], objects: Iterable[LandedObject]) -> str | None:
    """The catalog version that was made from exactly these objects (same keys, same modification
    times, and same sizes where the catalog has them), if any.  Lets a sensor with a fresh cursor pass
    over deliveries `abaco run` or an earlier sensor already ingested, instead of queueing a run that
    would change nothing.  (An object store gives every upload a new LastModified, so a match means
    the same upload; a local copy that kept its mtime is also told apart by its size.)"""
    current = {item.key: item for item in objects}
    for version_id, record in catalog.get("versions", {}).items():
        recorded = [(t["landing_key"], t["mtime"], t.get("size")) for t in record.get("tables", {}).values()]
        recorded += [(s["landing_key"], s["mtime"], None) for s in record.get("superseded", [])]
        by_object: dict[str, list[tuple[float, int | None]]] = {}
        for landing_key, mtime, size_bytes in recorded:
            object_key, _, member = landing_key.partition("!")  # a zip member belongs to its zip
            by_object.setdefault(object_key, []).append((mtime, None if member else size_bytes))
        if set(by_object) == set(current) and all(
            mtime == current[key].modified_at and size_bytes in (None, current[key].size_bytes)
            for key, entries in by_object.items() for mtime, size_bytes in entries
        ):
            return version_id
    return None
