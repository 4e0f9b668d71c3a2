"""kill -9 in the middle of a run, then a rerun: the same marts as a run that was never interrupted."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import duckdb
import pytest

from abaco_assets_tests.conftest import ABACO, REPO_ROOT, run_abaco

MARTS = ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
         "kpi_roll_rates", "kpi_vintage_curves")
pytestmark = pytest.mark.e2e


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home"),
            "ABACO_PII_HMAC_KEY": "crash-test-key"}


def marts(data: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in MARTS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    landing = root / "landing"
    generated = run_abaco("generate", "--out", str(landing), "--loans", "120", "--months", "2", "--seed", "5",
                          "--delinquency-cadence", "month-end")
    assert generated.returncode == 0, generated.stderr
    data = root / "reference"
    done = subprocess.run([ABACO, "run", "--landing", str(landing)], env=_env(data), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, landing, marts(data)


@pytest.mark.parametrize("fault", ["after_raw_copy", "mid_write:parquet", "mid_dbt"])
def test_killed_run_then_rerun_gives_the_uninterrupted_marts(reference, fault):
    root, landing, expected = reference
    data = root / f"killed-{fault.replace(':', '-')}"
    killed = subprocess.run([ABACO, "run", "--landing", str(landing)], env={**_env(data), "ABACO_FAULT_POINT": fault},
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    if fault == "mid_write:parquet":
        # the half-written file never appears under its final name
        leftovers = list((data / "typed").rglob("*.tmp"))
        assert leftovers and all(p.name.startswith(".") for p in leftovers)
    rerun = subprocess.run([ABACO, "run", "--landing", str(landing)], env=_env(data), cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert marts(data) == expected


def test_truncated_raw_file_under_its_final_name_is_detected_and_replaced(reference):
    root, landing, expected = reference
    data = root / "reference"
    raw_file = sorted((data / "raw" / "cascade" / "loan_data").rglob("*.csv"))[-1]
    intact = raw_file.read_bytes()
    raw_file.write_bytes(intact[: len(intact) // 3])  # what a crash of a non-atomic writer leaves
    catalog = data / "catalog" / "cascade" / f"{raw_file.parent.name}.json"
    catalog.unlink()  # ...before the verdict was recorded
    rerun = subprocess.run([ABACO, "run", "--landing", str(landing)], env=_env(data), cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert hashlib.sha256(raw_file.read_bytes()).hexdigest() == raw_file.stem
    assert json.loads(catalog.read_text())["in_force"]
    assert marts(data) == expected
