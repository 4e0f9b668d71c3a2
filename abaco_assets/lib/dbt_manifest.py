"""Keep the dbt manifest prepared so that loading the code location never parses dbt on the hot path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# The dbt installed beside this interpreter (the project venv), whatever PATH says.
VENV_DBT = str(Path(sys.executable).parent / "dbt")


def _newest_source_mtime() -> float:
    patterns = ("models/**/*.sql", "models/**/*.yml", "macros/**/*.sql", "tests/**/*.sql", "*.yml")
    return max((p.stat().st_mtime for pattern in patterns for p in DBT_PROJECT_DIR.glob(pattern)), default=0.0)


def manifest_is_current() -> bool:
    return MANIFEST.exists() and MANIFEST.stat().st_mtime >= _newest_source_mtime()


def ensure_manifest(data_dir: Path) -> None:
    """Run ``dbt parse`` when the manifest is missing or older than any project file."""
    if manifest_is_current():
        return
    env = {**os.environ, "ABACO_DATA": str(data_dir)}
    completed = subprocess.run(
        [VENV_DBT, "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"],
        env=env, capture_output=True, text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{completed.stdout}\n{completed.stderr}")
    MANIFEST.touch()
