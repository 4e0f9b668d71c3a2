"""Shared fixtures: every test gets its own ABACO_DATA and DAGSTER_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from abaco_assets.lib.environ import environment  # noqa: F401  (the tests' helper)

REPO_ROOT = Path(__file__).resolve().parents[1]
ABACO = str(Path(sys.executable).parent / "abaco")


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest(tmp_path_factory) -> Path:
    """The code location needs a prepared manifest; build it once per session."""
    from abaco_assets.lib.dbt_manifest import MANIFEST, ensure_manifest

    ensure_manifest(tmp_path_factory.mktemp("manifest-data"))
    return MANIFEST


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("ABACO_DATA", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    monkeypatch.delenv("ABACO_LANDING", raising=False)
    return data


def run_abaco(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed `abaco` console script as a user would."""
    return subprocess.run([ABACO, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO_ROOT)


