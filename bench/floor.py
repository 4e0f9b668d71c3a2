"""The floor: the five KPI marts computed by ONE plain DuckDB SQL script straight from the landing CSVs.

No validation, no Dagster, no dbt at run time: the script reads the CSVs with
DuckDB's reader (column names and types taken from the contracts) and then
runs the SQL of the intermediate models and the five marts, which dbt
compiled beforehand (so the floor computes exactly the same marts).  It is
what "as fast as DuckDB itself" means for this pipeline.

    python bench/floor.py --landing DIR --out DIR   # writes DIR/floor.sql and DIR/floor.duckdb, prints seconds
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contracts.derive import typed_columns  # noqa: E402
from contracts.registry import latest  # noqa: E402

MARTS = ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
         "kpi_roll_rates", "kpi_vintage_curves")
FILE_GLOBS = {
    ("cascade", "loan_data"): "cascade/*/*Loan Data_Table*.csv",
    ("cascade", "customer_data"): "cascade/*/*Customer Data_Table*.csv",
    ("cascade", "payment_schedule"): "cascade/*/*Payment Schedule_Table*.csv",
    ("cascade", "historic_real_payment"): "cascade/*/*Historic Real Payment_Table*.csv",
    ("cascade", "collateral"): "cascade/*/*Collateral_Table*.csv",
    ("collections", "collections"): "collections/*/collections_*.csv",
    ("delinquency", "delinquency"): "delinquency/*/delinquency_*.csv",
}


def _source_view(landing: Path, source: str, table: str) -> str:
    """A view named like the typed source, read from the CSVs with the contract's names and types."""
    files = sorted(landing.glob(FILE_GLOBS[(source, table)]))
    view = f"floor_src.{source}__{table}"
    contract = latest(source, table)
    if not files:
        columns = ", ".join(f"cast(null as {spec.sql_type if spec.pii != 'hash' else 'VARCHAR'}) as {name}"
                            for name, spec in typed_columns(contract))
        return f"create view {view} as select cast(null as date) as delivery_date, {columns} where false;"
    with open(files[0], newline="", encoding="utf-8-sig") as handle:
        header = {name.strip() for name in next(csv.reader(handle))}
    selected = []
    for name, spec in typed_columns(contract):
        raw = f'"{spec.header}"'
        if spec.header not in header:
            value = "null"
        elif spec.pii == "hash":
            value = f"md5({raw})"
        else:
            value = raw
        kind = "VARCHAR" if spec.pii == "hash" else spec.sql_type
        if spec.kind == "boolean":
            value = f"lower({value}) = 'true'"
        typed = f"cast({value} as {kind})"
        if spec.default is not None:
            typed = f"coalesce({typed}, {spec.default})"
        selected.append(f"{typed} as {name}")
    pattern = str(landing / FILE_GLOBS[(source, table)])
    return (f"create view {view} as select cast(regexp_extract(filename, '/(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1) as date)"
            f" as delivery_date, {', '.join(selected)} from read_csv('{pattern}', header = true, all_varchar = true,"
            f" filename = true, union_by_name = true);")


def compile_models(work: Path) -> dict:
    """`dbt compile` once (not part of the timed floor) and return the manifest."""
    (work / "compile-data").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ABACO_DATA": str(work / "compile-data"), "DBT_TARGET_PATH": str(work / "dbt-target"),
           "DBT_LOG_PATH": str(work / "dbt-logs")}
    dbt = str(Path(sys.executable).parent / "dbt")
    subprocess.run([dbt, "compile", "--project-dir", str(REPO / "dbt_project"), "--profiles-dir",
                    str(REPO / "dbt_project"), "--quiet", "--select", *[f"+{m}" for m in MARTS]],
                   env=env, check=True, capture_output=True)
    return json.loads((work / "dbt-target" / "manifest.json").read_text())


def build_script(landing: Path, manifest: dict) -> str:
    nodes = manifest["nodes"]
    wanted, order = set(), []

    def visit(unique_id: str) -> None:
        if unique_id in wanted or not unique_id.startswith("model."):
            return
        wanted.add(unique_id)
        for parent in nodes[unique_id]["depends_on"]["nodes"]:
            visit(parent)
        order.append(unique_id)

    for mart in MARTS:
        visit(f"model.abaco.{mart}")
    statements = ["create schema if not exists floor_src;"]
    statements += [_source_view(landing, source, table) for (source, table) in FILE_GLOBS]
    for unique_id in order:
        node = nodes[unique_id]
        sql = node["compiled_code"]
        sql = re.sub(r"read_parquet\('[^']*/typed/(\w+)/(\w+)/\*/data\.parquet', union_by_name = true\)",
                     r"floor_src.\1__\2", sql)
        sql = re.sub(r'"[^"]+"\."(\w+)"\."(\w+)"', r'"\1"."\2"', sql)  # drop the catalog name
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        statements.append(f'create schema if not exists "{node["schema"]}";')
        statements.append(f'create or replace {kind} "{node["schema"]}"."{node["alias"]}" as\n{sql};')
    return "\n\n".join(statements) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--script-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    script = build_script(args.landing.resolve(), compile_models(args.out))
    (args.out / "floor.sql").write_text(script)
    if args.script_only:
        return
    import duckdb

    database = args.out / "floor.duckdb"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        con.execute(script)
        rows = {m: con.execute(f"select count(*) from marts.{m}").fetchall()[0][0] for m in MARTS}
    print(json.dumps({"seconds": round(time.perf_counter() - started, 3), "rows": rows}))


if __name__ == "__main__":
    main()
