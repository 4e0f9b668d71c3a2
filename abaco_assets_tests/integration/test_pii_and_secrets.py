"""After an end-to-end run, the generated PII and the secret key appear nowhere outside the secure zone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest

from abaco_assets_tests.conftest import REPO_ROOT, run_abaco

SECRET = "hmac-key-7f3a9c1e-do-not-leak"
SECURE_ZONES = ("raw", "quarantine", "landing")
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pii")
    landing, data = root / "landing", root / "data"
    env = {"ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "ABACO_PII_HMAC_KEY": SECRET}
    assert run_abaco("generate", "--out", str(landing), "--loans", "150", "--months", "2", "--seed", "13",
                     "--delinquency-cadence", "month-end", env=env).returncode == 0
    done = run_abaco("run", "--landing", str(landing), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    customers = pl.concat([pl.read_csv(p, infer_schema=False)
                           for p in landing.glob("cascade/*/Abaco - Loan Tape_Customer Data_Table.csv")])
    pii = set()
    for column in ("Cliente", "Tax ID", "Email", "Phone"):
        pii |= {v for v in customers[column].drop_nulls().to_list() if len(v) >= 6}
    assert len(pii) > 100
    return data, pii, done.stdout + done.stderr


def _outside_secure_zone(data: Path) -> list[Path]:
    return [p for p in data.rglob("*") if p.is_file() and p.relative_to(data).parts[0] not in SECURE_ZONES]


def test_no_generated_pii_in_any_table_log_artifact_or_event(finished_run):
    data, pii, console = finished_run
    leaks = [value for value in pii if value in console]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        for schema, table in tables:
            frame = con.sql(f'select * from "{schema}"."{table}"').pl()
            for column in frame.columns:
                if frame[column].dtype == pl.String:
                    found = set(frame[column].drop_nulls().unique().to_list()) & pii
                    leaks += [f"{schema}.{table}.{column}: {v}" for v in found]
    files = _outside_secure_zone(data)
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "validation.json" for p in files)
    for path in files:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            for column in frame.columns:
                if frame[column].dtype == pl.String:
                    leaks += [f"{path}: {v}" for v in set(frame[column].drop_nulls().to_list()) & pii]
        elif path.suffix != ".duckdb" and path.stat().st_size < 50_000_000:
            blob = path.read_bytes()
            leaks += [f"{path}: {v}" for v in pii if v.encode() in blob]
    assert not leaks, leaks[:20]


def test_the_secret_key_is_in_no_output_and_no_tracked_file(finished_run):
    data, _, console = finished_run
    assert SECRET not in console
    hits = [str(p) for p in data.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert hits == []
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True).stdout.split(b"\0")
    in_repo = [name for name in tracked if name and (REPO_ROOT / name.decode()).is_file()
               and SECRET.encode() in (REPO_ROOT / name.decode()).read_bytes()
               and not name.decode().endswith("test_pii_and_secrets.py")]
    assert in_repo == []
    assert os.environ.get("ABACO_PII_HMAC_KEY") != SECRET  # set for the run only, never exported here
