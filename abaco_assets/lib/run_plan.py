"""Which partitions a run must materialize, batched into as few Dagster runs as possible.

A run covers one contiguous range of delivery dates of one source (a
partition range in one process), so a year of daily files is a handful of
runs instead of hundreds of process starts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from abaco_assets.lib.deliveries import Zones, choose_versions, version_id_of
from abaco_assets.lib.landing import LandingFile
from abaco_assets.lib.storage import sha256_hex


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


def candidate_version_id(files: list[LandingFile]) -> str:
    """The version id process_delivery will give these files (same hash recipe)."""
    newest, _ = choose_versions(files)
    return version_id_of({table: sha256_hex(item.read()) for table, item in newest.items()})


def in_force_fingerprint(zones: Zones) -> str:
    """A hash of every (source, date) -> version in force: the marts' inputs."""
    root = zones.catalog.path("")
    entries = []
    for path in sorted(root.glob("*/*.json")):
        entries.append(f"{path.parent.name}/{path.stem}={json.loads(path.read_text()).get('in_force')}")
    return sha256_hex("\n".join(entries).encode())
