"""The zones the platform writes (raw, quarantine, typed, catalog, logs) behind one interface.

Local folders are the embedded default.  Object stores (S3/GCS) implement the
same three verbs; the write-once and atomic-replace guarantees are part of
the interface, not of the callers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from abaco_assets.lib.faults import fault_point


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
                half = len(data) // 2
                handle.write(data[:half])
                fault_point(f"mid_write:{target.suffix.lstrip('.')}")
                handle.write(data[half:])
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
