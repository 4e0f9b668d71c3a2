"""The metric store is consistent with what the project really builds.

Fails when a KPI of the store names a model or column that does not exist
(in the dbt manifest, in a built warehouse, or, for the Python metrics, in
the table contract agreed with the metric assets), or when a column of a
KPI mart (kpi_*) or a department mart (risk_*, collections_*, finance_*,
board_*) has no entry: every column is either a KPI's column or a grain /
dimension column of its model. Also: dbt itself parsed the semantic layer
(the manifest holds every metric), and the loader rejects broken stores.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from abaco_assets.lib.metric_store import (
    DBT_SCHEMA,
    PYTHON_SCHEMA,
    MetricStoreError,
    build_metric_store,
    load_metric_store,
    metadata_for_model,
    metadata_for_models,
    owners_for_model,
)
from abaco_assets_tests.fixtures.department_portfolio import build_department_warehouse

MART_PREFIXES = ("kpi_", "risk_", "collections_", "finance_", "board_")

# The tables the Python metric assets write to schema metrics, with exactly these columns (the
# contract agreed with abaco_assets/defs/metrics/). Checked against the warehouse when a built
# warehouse has them.
PYTHON_METRIC_TABLES = {
    "metric_cashflow_projection": {
        "as_of", "projection_month", "projected_month_end", "opening_balance", "scheduled_principal", "interest",
        "prepayment", "defaults", "recoveries", "net_cash", "closing_balance", "mdr", "smm", "cdr", "cpr",
        "severity", "recovery_lag_months"},
    "metric_expected_credit_loss": {
        "month_end", "scope", "segment", "stage", "loans", "ead", "ecl", "par30_amount", "coverage"},
    "metric_covenants": {"month_end", "covenant", "measured_value", "threshold", "operator", "passed"},
    "metric_borrowing_base": {
        "month_end", "opb", "opb_dpd_lt60", "concentration_excess", "eligible_opb", "advance_rate", "borrowing_base"},
}


@pytest.fixture(scope="module")
def store():
    return load_metric_store()


@pytest.fixture(scope="module")
def manifest(dbt_manifest) -> dict:
    return json.loads(Path(dbt_manifest).read_text())


def _is_mart(name: str) -> bool:
    return name.startswith(MART_PREFIXES)


def _manifest_models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}


def test_dbt_parsed_the_semantic_layer(store, manifest):
    """dbt 1.11 parsed semantic_models + metrics: the manifest holds every dbt KPI, with its meta."""
    dbt_kpis = {kpi.name: kpi for kpi in store.kpis if kpi.engine == "dbt"}
    parsed = {metric["name"]: metric for metric in manifest["metrics"].values()}
    assert set(parsed) == set(dbt_kpis)
    for name, metric in parsed.items():
        meta = metric.get("meta") or metric["config"]["meta"]
        assert meta["formula"] == dbt_kpis[name].formula and meta["owner"] == dbt_kpis[name].owner, name
    semantic_models = {node["node_relation"]["alias"] for node in manifest["semantic_models"].values()}
    assert semantic_models == {name for name, entry in store.models.items()
                               if entry.engine == "dbt" and not name.startswith("kpi_portfolio_monthly_by_")}


def test_every_store_reference_exists_in_the_manifest(store, manifest):
    models = _manifest_models(manifest)
    missing = []
    for kpi in store.kpis:
        for role, ref in kpi.columns():
            if ref.schema_name != DBT_SCHEMA:
                continue
            node = models.get(ref.model)
            if node is None:
                missing.append(f"{kpi.name} ({role}): no dbt model {ref.model}")
            elif node["config"].get("schema") != DBT_SCHEMA:
                missing.append(f"{kpi.name} ({role}): {ref.model} is not in schema {DBT_SCHEMA}")
            elif ref.column not in node["columns"]:
                missing.append(f"{kpi.name} ({role}): {ref} is not a documented column")
    for name, entry in store.models.items():
        if entry.engine == "dbt":
            node = models.get(name)
            undocumented = entry.key_columns() - set(node["columns"]) if node else {"<model missing>"}
            if undocumented:
                missing.append(f"{name}: grain/dimension columns {sorted(undocumented)} not documented")
    assert missing == []


def test_every_documented_mart_column_has_a_kpi_entry(store, manifest):
    covered = store.referenced_columns()
    uncovered = []
    for name, node in _manifest_models(manifest).items():
        if not _is_mart(name):
            continue
        if name not in store.models:
            uncovered.append(f"{name}: mart missing from the metric store")
            continue
        uncovered += [f"{name}.{column}" for column in node["columns"] if column not in covered[name]]
    assert uncovered == []


@pytest.fixture(scope="module")
def warehouse_columns(tmp_path_factory) -> dict[tuple[str, str], set[str]]:
    """(schema, table) -> columns of the warehouse dbt built for the crafted portfolio."""
    data_dir = build_department_warehouse(tmp_path_factory)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        found: dict[tuple[str, str], set[str]] = {}
        for schema, table, column in connection.execute(
                "select table_schema, table_name, column_name from information_schema.columns "
                "where table_schema in (?, ?)", [DBT_SCHEMA, PYTHON_SCHEMA]).fetchall():
            found.setdefault((schema, table), set()).add(column)
    return found


def test_store_and_warehouse_agree_column_for_column(store, warehouse_columns):
    """Built marts: every column has an entry, every entry's column exists."""
    covered = store.referenced_columns()
    problems = []
    for (schema, table), columns in warehouse_columns.items():
        if schema == DBT_SCHEMA and _is_mart(table):
            if table not in store.models:
                problems.append(f"{schema}.{table}: not in the metric store")
                continue
            problems += [f"{schema}.{table}.{column}: no KPI entry" for column in sorted(columns - covered[table])]
    for name, entry in store.models.items():
        if entry.engine != "dbt":
            continue
        columns = warehouse_columns.get((entry.schema_name, name))
        if columns is None:
            problems.append(f"{entry.schema_name}.{name}: not built")
            continue
        problems += [f"{entry.schema_name}.{name}.{column}: named by the store, not in the table"
                     for column in sorted(covered[name] - columns)]
    assert problems == []


def test_python_metrics_match_the_agreed_tables(store, warehouse_columns):
    """Against the table contract of the metric assets, and the warehouse once the tables exist there."""
    python_models = {name: entry for name, entry in store.models.items() if entry.engine == "python"}
    assert set(python_models) == set(PYTHON_METRIC_TABLES)
    covered = store.referenced_columns()
    for table, agreed in PYTHON_METRIC_TABLES.items():
        assert python_models[table].schema_name == PYTHON_SCHEMA
        assert covered[table] == agreed, f"{table}: store names {sorted(covered[table] ^ agreed)} differently"
        built = warehouse_columns.get((PYTHON_SCHEMA, table))
        if built is not None:
            assert built == agreed, f"metrics.{table}: {sorted(built ^ agreed)}"
    for kpi in store.kpis:
        for _, ref in kpi.columns():
            if ref.schema_name == PYTHON_SCHEMA:
                assert ref.column in PYTHON_METRIC_TABLES[ref.model], f"{kpi.name}: {ref}"


def test_every_kpi_of_the_catalog_is_in_the_store(store):
    """The KPI catalog of kpis.md, column by column."""
    portfolio = {"opb", "active_loans", "active_customers", "disbursed_amount", "disbursed_loans", "avg_ticket",
                 "par1", "par7", "par15", "par30", "par60", "par90", "npl_ratio", "npl180_ratio", "writeoff_amount",
                 "collected_principal", "collected_interest", "collected_fees", "collected_total", "revenue",
                 "scheduled_due", "collection_rate", "weighted_apr", "top10_concentration", "hhi", "rotation_12m",
                 "yield_12m"}
    by_model: dict[str, set[str]] = {}
    for kpi in store.kpis:
        for _, ref in kpi.columns():
            by_model.setdefault(ref.model, set()).add(ref.column)
    for model in ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product"):
        assert by_model[model] == portfolio, model
    assert by_model["kpi_roll_rates"] == {"opb_from", "rate"}
    assert by_model["kpi_vintage_curves"] == {"disbursed", "cum_default_principal", "cum_default_rate",
                                              "cum_writeoff_amount", "cum_writeoff_rate"}
    for kpi in store.kpis:
        assert kpi.formula and kpi.description and kpi.grain, kpi.name
        assert kpi.owner.startswith("team:") and kpi.freshness_sla.deadline, kpi.name


def test_metadata_for_model_carries_formula_owner_and_sla(store):
    metadata = metadata_for_model("kpi_portfolio_monthly", store)
    entries = {entry["kpi"]: entry for entry in metadata["abaco/kpis"]}
    assert entries["par30"]["formula"].startswith("sum(outstanding_principal) of active loans with DPD >= 30")
    assert entries["par30"]["owner"] == "team:risk" and entries["par30"]["role"] == "computes"
    assert "10:00" in entries["opb"]["freshness_deadline"]
    finance = {entry["column"]: entry for entry in metadata_for_model("finance_monthly_pnl", store)["abaco/kpis"]}
    assert finance["revenue"]["role"] == "publishes"
    assert finance["revenue"]["computed_by"] == "marts.kpi_portfolio_monthly.revenue"
    assert finance["net_credit_loss"]["role"] == "computes"
    assert metadata_for_model("metric_covenants", store)["abaco/kpi_owners"] == "team:finance"
    both = metadata_for_models(["metric_covenants", "metric_borrowing_base"], store)["abaco/kpis"]
    assert {entry["model"] for entry in both} == {"metric_covenants", "metric_borrowing_base"}
    assert owners_for_model("collections_by_stage", store) == ["team:collections"]
    assert metadata_for_model("stg_cascade__loan_data", store) == {}
    json.dumps(metadata)  # plain JSON: Dagster stores it as a JSON metadata value


def _documents(published_in=(), measure_expr="opb", metric_measure="opb"):
    semantic = {"semantic_models": [{
        "name": "portfolio", "model": "ref('kpi_portfolio_monthly')", "config": {"meta": {"grain": ["month_end"]}},
        "dimensions": [{"name": "month_end", "type": "time"}],
        "measures": [{"name": "opb", "expr": measure_expr, "agg": "sum"}]}],
        "metrics": [{"name": "opb", "label": "OPB", "description": "d", "type": "simple",
                     "type_params": {"measure": metric_measure},
                     "config": {"meta": {"formula": "f", "unit": "usd", "owner": "team:finance",
                                         "freshness_sla": {"cadence": "month_end", "deadline": "10:00",
                                                           "timezone": "America/El_Salvador", "description": "s"},
                                         "additivity": "semi_additive", "published_in": list(published_in)}}}]}
    python = {"tables": [{"name": "metric_borrowing_base", "grain": ["month_end"]}], "metrics": []}
    return [("marts.yml", semantic)], ("python.yml", python)


def test_loader_accepts_a_minimal_store_and_rejects_broken_ones():
    store = build_metric_store(*_documents(published_in=["metrics.metric_borrowing_base.opb"]))
    assert [str(ref) for _, ref in store.kpi("opb").columns()] == ["marts.kpi_portfolio_monthly.opb",
                                                                     "metrics.metric_borrowing_base.opb"]
    broken = {
        "unknown model": dict(published_in=["finance_monthly_pnll.opb"]),
        "wrong schema": dict(published_in=["marts.metric_borrowing_base.opb"]),
        "grain column as KPI": dict(published_in=["metrics.metric_borrowing_base.month_end"]),
        "measure not a column": dict(measure_expr="sum(opb)"),
        "unknown measure": dict(metric_measure="opb_total"),
        "not a reference": dict(published_in=["opb"]),
    }
    for case, arguments in broken.items():
        with pytest.raises(MetricStoreError):
            build_metric_store(*_documents(**arguments))
            pytest.fail(case)
