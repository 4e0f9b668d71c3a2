"""The environment with dbt's BigQuery and Snowflake adapters, kept apart from .venv.

The adapters' pins conflict with the main lock (requirements-warehouses.in explains), so
they live in build/venv-targets, installed from requirements-warehouses.lock with the
project's uv. Idempotent: a stamp holds the lock's hash, and a changed lock rebuilds it.
`.ci/services.sh` runs this ahead of the tests; the tests call it too.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements-warehouses.lock"
VENV = REPO_ROOT / "build" / "venv-targets"
STAMP = VENV / ".lock-sha256"
UV = Path(sys.executable).parent / "uv"


def dbt_executable() -> Path:
    return VENV / "bin" / "dbt"


def ensure_targets_venv() -> Path:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest and dbt_executable().exists():
        return dbt_executable()
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    uv = str(UV) if UV.exists() else "uv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(VENV / "bin" / "python"),
                    "--require-hashes", "-r", str(LOCK)], check=True)
    STAMP.write_text(digest + "\n")
    return dbt_executable()


if __name__ == "__main__":
    print(f"[services] warehouse dbt: {ensure_targets_venv()}")
