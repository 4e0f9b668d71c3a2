"""What an `abaco run` must do: which partitions to ingest and which part of the transform to rebuild.

Ingestion: a run covers one contiguous range of delivery dates (a partition
range in one process), so a year of daily files is a handful of runs instead of
hundreds of process starts; feeds whose ranges coincide share the run.

Transform: only the assets downstream of the feeds whose deliveries in force
changed since the last successful build (everything when the code changed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from abaco_assets.lib.deliveries import Zones
from abaco_assets.lib.storage import sha256_hex

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DateRange:
    source: str
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def contiguous_ranges(source: str, dates: list[dt.date]) -> list[DateRange]:
    ranges: list[DateRange] = []
    for day in sorted(set(dates)):
        if ranges and (day - ranges[-1].end).days == 1:
            ranges[-1] = DateRange(source, ranges[-1].start, day)
        else:
            ranges.append(DateRange(source, day, day))
    return ranges


Versions = Mapping[str, Mapping[str, "str | None"]]  # source -> delivery date (ISO) -> version in force


def fingerprint_of(versions: Versions) -> str:
    """A hash of every (source, date) -> version in force (``in_force_versions``): the marts' inputs."""
    return sha256_hex("\n".join(_entries(versions)).encode())


def in_force_fingerprints(zones: Zones) -> dict[str, str]:
    """The same hash per source: which feeds changed since the marts were last built."""
    by_source: dict[str, list[str]] = {}
    for entry in _entries(in_force_versions(zones)):
        by_source.setdefault(entry.split("/", 1)[0], []).append(entry)
    return {source: sha256_hex("\n".join(entries).encode()) for source, entries in by_source.items()}


def in_force_versions(zones: Zones) -> dict[str, dict[str, str | None]]:
    """source -> delivery date (ISO) -> the version in force (None when every version was rejected)."""
    versions: dict[str, dict[str, str | None]] = {}
    for path in sorted(zones.catalog.path("").glob("*/*.json")):
        versions.setdefault(path.parent.name, {})[path.stem] = json.loads(path.read_text()).get("in_force")
    return versions


def _entries(versions: Versions) -> list[str]:
    return [f"{source}/{day}={version}" for source, days in versions.items() for day, version in days.items()]


def changed_sources(previous: dict, fingerprints: dict[str, str], project: str) -> set[str] | None:
    """Sources whose deliveries in force changed since the last successful transform.

    None means "rebuild everything": no successful transform is recorded (or it was recorded
    by an older format), or the dbt project / metric code changed since.
    """
    if not previous.get("success") or previous.get("project") != project or "sources" not in previous:
        return None
    before = previous["sources"]
    return {source for source in set(before) | set(fingerprints) if before.get(source) != fingerprints.get(source)}


CODE_DIRS = ("abaco_assets", "contracts", "dbt_project/models", "dbt_project/macros", "dbt_project/tests")


def code_fingerprint(root: Path = REPO_ROOT) -> str:
    """A hash of the code the marts are computed by (dbt project, contracts, Python metrics)."""
    digest = hashlib.sha256()
    files = [root / "dbt_project" / "dbt_project.yml"] + [
        path for folder in CODE_DIRS for path in (root / folder).rglob("*")
        if path.suffix in (".py", ".sql", ".yml", ".yaml") and "__pycache__" not in path.parts]
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def transform_subset(job, sources: set[str]):
    """The part of the transform job that depends on the given feeds.

    Assets downstream of those feeds' raw assets, the checks of those assets and every check that
    reads one of those feeds (the cross-feed reconciliations), plus the job's assets that read no
    feed at all (the audit table, the date spine), which are cheap and always current.
    Returns (asset keys, asset check keys) for ``JobDefinition.get_subset``.
    """
    import dagster as dg

    graph = job.asset_layer.asset_graph
    job_assets = set(job.asset_layer.executable_asset_keys)
    all_raw = {key for key in graph.get_all_asset_keys() if key.path[0] == "raw"}
    changed_raw = {key for key in all_raw if key.path[1] in sources}
    downstream = dg.AssetSelection.assets(*changed_raw).downstream().resolve(graph) if changed_raw else set()
    reads_no_feed = {key for key in job_assets if not graph.get_ancestor_asset_keys(key) & all_raw}
    assets = (downstream & job_assets) | reads_no_feed
    checks = set()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        reads = {check_key.asset_key, *(dep.asset_key for dep in spec.additional_deps)}
        if reads & (assets | changed_raw):
            checks.add(check_key)
    return assets, checks
