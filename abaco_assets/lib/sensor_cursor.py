"""The landing sensor's cursor: which listed objects are new since the last tick.

Why not "everything after the last key" or "everything after the last
LastModified": S3's LastModified has a resolution of one second, several
keys can share it, a re-upload keeps its key, and a multipart upload
becomes visible with the LastModified of its start (so it can appear
*behind* objects already seen).  The cursor therefore keeps

* a high-water mark: the greatest (arrival time, key) ever listed, and
* the (key, ETag) pairs already handled whose arrival time lies inside a
  lookback window below that mark.

An object is new when it arrived inside the window and its (key, ETag) was
not handled yet: a key sharing the mark's second, a late key within the
window and a re-uploaded key with changed bytes are all new; the same bytes
uploaded again under the same key are not.  Entries leave the set when they
fall out of the window, so the cursor stays small (a day's deliveries).
The window must be longer than the slowest upload and any listing lag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from abaco_assets.lib.storage import LandedObject

CURSOR_FORMAT_VERSION = 1
DEFAULT_LOOKBACK_SECONDS = 6 * 3600


@dataclass(frozen=True)
class LandingCursor:
    high_water_seconds: float | None = None  # greatest arrival time listed so far (epoch seconds)
    high_water_key: str = ""  # the greatest key at that arrival time
    handled: dict[tuple[str, str], float] = field(default_factory=dict)  # (key, etag) -> arrival time

    def window_start_seconds(self, lookback_seconds: float) -> float:
        """Objects that arrived before this are taken as handled (they were inside an earlier window)."""
        return float("-inf") if self.high_water_seconds is None else self.high_water_seconds - lookback_seconds

    def fresh(self, listed: Iterable[LandedObject], lookback_seconds: float) -> list[LandedObject]:
        """The listed objects not handled yet, oldest first by (arrival time, key)."""
        start = self.window_start_seconds(lookback_seconds)
        new = [item for item in listed
               if item.arrived_at >= start and (item.key, item.etag) not in self.handled]
        return sorted(new, key=lambda item: (item.arrived_at, item.key))

    def advance(self, listed: Iterable[LandedObject], handled_now: Iterable[LandedObject],
                lookback_seconds: float) -> "LandingCursor":
        """The cursor after a tick: the mark moves to the newest listed object; what was handled now
        joins the set; entries older than the new window are dropped."""
        mark = (self.high_water_seconds, self.high_water_key) if self.high_water_seconds is not None else None
        for item in listed:
            if mark is None or (item.arrived_at, item.key) > mark:
                mark = (item.arrived_at, item.key)
        handled = dict(self.handled)
        for item in handled_now:
            handled[(item.key, item.etag)] = item.arrived_at
        if mark is None:
            return LandingCursor(None, "", handled)
        start = mark[0] - lookback_seconds
        return LandingCursor(mark[0], mark[1], {pair: at for pair, at in handled.items() if at >= start})

    def to_json(self) -> str:
        return json.dumps({
            "version": CURSOR_FORMAT_VERSION,
            "high_water": [self.high_water_seconds, self.high_water_key],
            "handled": sorted([key, etag, at] for (key, etag), at in self.handled.items()),
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "LandingCursor":
        """An empty cursor for None/"" (first tick); an unknown format is an error, never a silent reset."""
        if not text:
            return cls()
        payload = json.loads(text)
        if payload.get("version") != CURSOR_FORMAT_VERSION:
            raise ValueError(f"landing sensor cursor has format {payload.get('version')!r}, "
                             f"expected {CURSOR_FORMAT_VERSION}")
        seconds, key = payload["high_water"]
        return cls(seconds, key, {(k, etag): at for k, etag, at in payload["handled"]})
