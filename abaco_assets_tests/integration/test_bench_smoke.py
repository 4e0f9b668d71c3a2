"""The benchmark at smoke size: every step runs, and the floor computes the same marts as the pipeline.

Benchmarks are not tests (no timing is asserted here); this only keeps `bench/bench.py` working.
"""

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MARTS = ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
         "kpi_roll_rates", "kpi_vintage_curves")
STEPS = ("generate landing", "1. full backfill", "2. incremental", "3. floor", "4c. first run", "4a. fixed overhead",
         "4b. fixed overhead")

pytestmark = pytest.mark.e2e


def _marts(database: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in MARTS}


def test_bench_smoke_runs_every_step_and_the_floor_matches_the_pipeline(tmp_path):
    completed = subprocess.run(
        [sys.executable, "bench/bench.py", "--loans", "150", "--months", "2", "--workdir", str(tmp_path),
         "--no-write"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    for step in STEPS:
        line = next((line for line in lines if line.startswith(step)), None)
        assert line is not None and "exit 0" in line, f"{step}: {line}\n{completed.stdout}"
    assert any(line.startswith("backfill / floor") for line in lines)
    pipeline, floor = _marts(tmp_path / "data" / "warehouse.duckdb"), _marts(tmp_path / "floor" / "floor.duckdb")
    assert all(pipeline[m] for m in MARTS)
    assert pipeline == floor
