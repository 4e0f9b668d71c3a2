"""Resources: where the platform reads and writes, decided at run time.

``AbacoSettings`` resolves the landing root and data dir from its config or,
when unset, from the environment (ABACO_LANDING, ABACO_DATA) at the moment a
run needs them, never at import time (tests switch folders without
reloading modules).  ABACO_ENV=prod makes a missing secret an error
instead of falling back to a locally generated development key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dagster as dg

from abaco_assets.lib.deliveries import Zones
from abaco_assets.lib.sensor_cursor import DEFAULT_LOOKBACK_SECONDS
from abaco_assets.lib.storage import LandingStore, is_object_url, landing_store_at

DEFAULT_DATA_DIR = "./data"


def data_dir_from_env() -> Path:
    return Path(os.environ.get("ABACO_DATA") or DEFAULT_DATA_DIR).resolve()


def landing_from_env() -> Path:
    landing = os.environ.get("ABACO_LANDING")
    return Path(landing).resolve() if landing else data_dir_from_env() / "landing"


def landing_location_from_env() -> str:
    """ABACO_LANDING as given when it is an s3:// or gs:// URL, else the resolved folder."""
    landing = os.environ.get("ABACO_LANDING", "")
    return landing if is_object_url(landing) else str(landing_from_env())


def zones_from_env(data_dir: Path, raw_root: str = "", quarantine_root: str = "") -> Zones:
    """The zones under ``data_dir``, with raw and quarantine where ABACO_RAW_ROOT / ABACO_QUARANTINE_ROOT
    say (a folder, s3://bucket/prefix or gs://bucket/prefix); typed, catalog and logs stay local."""
    return Zones(data_dir, raw_root=raw_root or os.environ.get("ABACO_RAW_ROOT", ""),
                 quarantine_root=quarantine_root or os.environ.get("ABACO_QUARANTINE_ROOT", ""))


class AbacoSettings(dg.ConfigurableResource):
    """Folders of the platform. Empty fields fall back to the environment."""

    landing_root: str = ""  # a folder, s3://bucket/prefix or gs://bucket/prefix
    data_dir: str = ""
    raw_root: str = ""  # default $ABACO_RAW_ROOT, else <data_dir>/raw
    quarantine_root: str = ""  # default $ABACO_QUARANTINE_ROOT, else <data_dir>/quarantine
    landing_lookback_seconds: int = DEFAULT_LOOKBACK_SECONDS  # landing sensors' window (sensor_cursor)
    environment: str = ""
    reconciliation_severity: str = ""

    def landing(self) -> Path:
        """The landing folder (local backend only; see ``landing_store`` for any backend)."""
        return Path(self.landing_root).resolve() if self.landing_root else landing_from_env()

    def landing_location(self) -> str:
        if self.landing_root:
            return self.landing_root if is_object_url(self.landing_root) else str(Path(self.landing_root).resolve())
        return landing_location_from_env()

    def landing_store(self) -> LandingStore:
        return landing_store_at(self.landing_location())

    def data(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else data_dir_from_env()

    def env(self) -> str:
        return self.environment or os.environ.get("ABACO_ENV", "local")

    def reconciliation_check_severity(self) -> dg.AssetCheckSeverity:
        """WARN by default; ERROR (blocking the marts) when configured or ABACO_RECONCILIATION_SEVERITY=ERROR."""
        value = (self.reconciliation_severity or os.environ.get("ABACO_RECONCILIATION_SEVERITY") or "WARN").upper()
        if value not in ("WARN", "ERROR"):
            raise dg.Failure(f"reconciliation severity must be WARN or ERROR, not {value!r}")
        return dg.AssetCheckSeverity[value]

    def audit_log(self):
        """The append-only audit trail ($ABACO_DATA/audit)."""
        from abaco_assets.lib.audit import AuditLog

        return AuditLog(self.data() / "audit")

    def audit_many(self, context, records: list[dict]) -> None:
        """Record dataset reads and writes made by the run of ``context`` (principal, purpose, ticket from its
        tags): each record has action, dataset and optionally partition, rows, content_hash, detail; a step's
        records go in as one chained block (one fsync)."""
        from abaco_assets.lib.audit import AuditContext

        run = context.run
        self.audit_log().record_many(AuditContext.from_run(run.run_id, dict(run.tags)), records)

    def zones(self) -> Zones:
        return zones_from_env(self.data(), self.raw_root, self.quarantine_root)

    def pii_hmac_key(self) -> bytes:
        """The PII hashing key: ABACO_PII_HMAC_KEY, else (local only) a random key kept in the secure zone."""
        key = os.environ.get("ABACO_PII_HMAC_KEY")
        if key:
            return key.encode("utf-8")
        if self.env() == "prod":
            raise dg.Failure("ABACO_PII_HMAC_KEY is not set: production refuses to hash PII with a generated key")
        path = self.data() / "raw" / ".secure" / "pii_hmac.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip().encode("utf-8")
