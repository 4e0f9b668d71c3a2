"""The dbt project as Dagster assets: staging, intermediate and KPI marts.

dbt tests become asset checks (dagster-dbt's default); a failing error-
severity test fails the step and dbt skips the models built on it.
"""

import functools
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from abaco_assets.defs.transform.automation import downstream_of_raw
from abaco_assets.lib.deliveries import ensure_schema_files
from abaco_assets.lib.markdown import markdown_table
from abaco_assets.lib.faults import fault_point
from abaco_assets.lib.metric_store import metadata_for_model
from abaco_assets.lib import dbt_warm, test_scope
from abaco_assets.lib.dbt_manifest import VENV_DBT
from abaco_assets.lib.environ import environment
from abaco_assets.lib.run_plan import Versions, code_fingerprint, fingerprint_of, in_force_versions
from abaco_assets.lib.storage import LocalZone, read_json_record
from contracts.registry import CONTRACT_VERSIONS
from abaco_assets.resources import AbacoSettings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()

# The venv's dbt; under `abaco run`, the client of the warm dbt helper it started before loading
# these definitions (lib/dbt_warm.py).
DBT_EXECUTABLE = dbt_warm.client_executable() or VENV_DBT


class VenvDbtCliResource(DbtCliResource):
    """dagster-dbt's resource for the dbt-core of this interpreter's environment, started lean.

    dagster-dbt learns the dbt version by running ``dbt --version`` once per run (a second dbt
    start-up, about 2 s); the executable here is the one installed beside this interpreter, so its
    version is the installed dbt-core's.
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        # the venv's bin folder as given (resolving would follow python's symlink out of the venv);
        # the warm helper runs the venv's dbt too
        if (self.dbt_executable != dbt_warm.client_executable()
                and Path(self.dbt_executable).absolute().parent != Path(sys.executable).absolute().parent):
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        """No in-process dbt adapter (about 1.3 s per build: profile, project and macros loaded).

        dagster-dbt opens one for ``fetch_row_counts`` / ``fetch_column_metadata``, which this
        project does not use: ``describe_tables`` reads the warehouse once dbt has released it.
        """
        return None


_LAYER_GROUP = {"staging": "staging", "intermediate": "staging", "marts": "marts", "departments": "marts"}
_OWNERS_BY_PREFIX = (
    ("kpi_roll_rates", ["team:risk"]), ("kpi_vintage_curves", ["team:risk"]),
    ("kpi_portfolio", ["team:finance", "team:risk"]), ("risk_", ["team:risk"]),
    ("collections_", ["team:collections"]), ("finance_", ["team:finance"]), ("board_", ["team:board"]),
)


class AbacoDbtTranslator(DagsterDbtTranslator):
    """Keys by layer (staging/stg_..., marts/kpi_...) and groups ingest / staging / marts."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        # keyed by the schema the table lives in (department models are folders of their own in schema marts)
        layer = dbt_resource_props.get("config", {}).get("schema") or (
            dbt_resource_props["fqn"][1] if len(dbt_resource_props["fqn"]) > 2 else "marts")
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """The metric store's entries (formula, owner, grain, SLA) for the KPIs a model computes."""
        return {**super().get_metadata(dbt_resource_props), **metadata_for_model(dbt_resource_props["name"])}

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        """The department that owns each table (the KPI catalog's owner column), platform for the plumbing."""
        name = dbt_resource_props["name"]
        for prefix, owners in _OWNERS_BY_PREFIX:
            if name.startswith(prefix):
                return owners
        return ["team:data-platform"]

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return _LAYER_GROUP.get(fqn[1], "marts") if len(fqn) > 2 else "marts"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "domain": "transform"}

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        """Models rebuild by themselves after new raw partitions (defs/transform/automation.py)."""
        return downstream_of_raw() if dbt_resource_props["resource_type"] == "model" else None


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=AbacoDbtTranslator(),
    op_tags={"domain": "transform"},
    pool="warehouse_writer",  # DuckDB takes one writer at a time
)
def abaco_dbt_models(context: dg.AssetExecutionContext, dbt: VenvDbtCliResource, settings: AbacoSettings):
    # dbt reads ABACO_DATA through env_var() in profiles.yml and the sources.
    os.environ["ABACO_DATA"] = str(settings.data())
    ensure_schema_files(settings.zones())
    # dbt's artefacts of the last build live with the data, not in the repo checkout
    target = settings.data() / "dbt" / "target"
    in_force = in_force_versions(settings.zones())
    fingerprint = fingerprint_of(in_force)
    settings.audit_many(context, [dict(action="read", dataset="typed/" + "/".join(source_key.path[1:]),
                                       content_hash=fingerprint, detail="dbt sources: the deliveries in force")
                                  for source_key in SOURCE_KEYS])
    scope = _TestScope.before_build(settings, context, in_force)
    with environment({test_scope.SCOPE_VARIABLE: scope.variable}):  # dbt's process inherits it
        invocation = dbt.cli(["build", *scope.unit_test_args], context=context, target_path=target)
    built, failure = [], None
    try:
        for event in invocation.stream():
            fault_point("mid_dbt", children=(invocation.process.pid,))
            if isinstance(event, dg.Output):
                built.append(event)  # enriched below, once dbt has released the warehouse
            else:
                yield event
    except Exception as exc:  # a failed dbt build still reports the models it did build
        failure = exc
    invocation.process.wait()
    described = describe_tables(settings.data() / "warehouse.duckdb", [_table_of(e) for e in built])
    written, enriched = [], []
    for event in built:
        facts = described.get(_table_of(event), {})
        view = "content_hash" in facts and facts["content_hash"] is None
        written.append(dict(action="write", dataset="/".join(context.asset_key_for_output(event.output_name).path),
                            rows=facts.get("dagster/row_count"),
                            content_hash=fingerprint if view else facts.get("content_hash"),
                            detail="view over the deliveries in force (hash: their fingerprint)" if view else None))
        enriched.append(event.with_metadata({**event.metadata, **{k: v for k, v in facts.items() if k != "content_hash"}}))
    settings.audit_many(context, written)  # one chained block for the build's tables
    yield from enriched
    if failure is not None:
        raise failure
    scope.record_passed()


class _TestScope:
    """The staging tests' scope (lib/test_scope.py): computed before a build, recorded after it passed."""

    def __init__(self, ledger_path: Path, ledger: dict, code: str, in_force: dict, models: dict[str, str],
                 tested_models: set[str], scope: dict[str, list[str]] | None, whole_project: bool):
        self.ledger_path, self.ledger, self.code, self.in_force = ledger_path, ledger, code, in_force
        self.models, self.tested_models, self.whole_project = models, tested_models, whole_project
        self.scope, self.variable = scope, test_scope.scope_variable(scope)
        self.unit_tests_passed = ledger.get("unit_tests") == code

    @property
    def unit_test_args(self) -> list[str]:
        """dbt's unit tests check the SQL on fixed inputs, not the data: they run until a build of the
        whole project passed them under this code in this data folder, not on every build."""
        return ["--exclude-resource-type", "unit_test"] if self.unit_tests_passed else []

    @classmethod
    def before_build(cls, settings: AbacoSettings, context: dg.AssetExecutionContext, in_force: Versions
                     ) -> "_TestScope":
        models = test_scope.staging_models(_manifest_nodes())
        ledger_path = settings.data() / "dbt" / test_scope.LEDGER_NAME
        ledger, code = read_json_record(ledger_path), code_fingerprint()
        # a model's tests ran only if the model and all its checks are in this run's selection
        checks = context.assets_def.check_keys
        tested = {model for model in models
                  if dg.AssetKey(["staging", model]) in context.selected_asset_keys
                  and all(key in context.selected_asset_check_keys for key in checks
                          if key.asset_key == dg.AssetKey(["staging", model]))}
        built = cls(ledger_path, ledger, code, in_force, models, tested,
                    test_scope.pending(ledger, code, in_force, models),
                    whole_project=set(context.assets_def.keys) <= set(context.selected_asset_keys))
        context.log.info(test_scope.describe(built.scope))
        return built

    def record_passed(self) -> None:
        if not self.tested_models and not self.whole_project:
            return
        ledger = test_scope.recorded(self.ledger, self.code, self.in_force, self.models, self.tested_models)
        if self.unit_tests_passed or self.whole_project:  # this build ran every unit test, or one before it did
            ledger["unit_tests"] = self.code
        LocalZone(self.ledger_path.parent).replace(self.ledger_path.name, json.dumps(ledger, indent=1).encode())


SOURCE_KEYS = [dg.AssetKey(["raw", source, table]) for source, table in CONTRACT_VERSIONS]
PREVIEW_ROWS = 12


def _table_of(event: dg.Output) -> str:
    """schema.table of a dbt model's output, from the manifest (schemas are verbatim: staging, marts...)."""
    unique_id = event.metadata["unique_id"]
    unique_id = unique_id.value if hasattr(unique_id, "value") else str(unique_id)
    node = _manifest_nodes().get(unique_id, {})
    return f"{node.get('schema')}.{node.get('alias') or node.get('name')}"


@functools.cache
def _column_descriptions() -> dict[str, dict[str, str]]:
    """schema.table -> column -> description, from the dbt YAML (so the UI shows types *and* meaning)."""
    found = {}
    for node in _manifest_nodes().values():
        if node.get("resource_type") == "model":
            found[f"{node['schema']}.{node.get('alias') or node['name']}"] = {
                name: column.get("description") or "" for name, column in node.get("columns", {}).items()}
    return found


@functools.cache
def _manifest_nodes() -> dict:
    return json.loads(Path(dbt_project.manifest_path).read_text())["nodes"]


def describe_tables(warehouse: Path, tables: list[str]) -> dict[str, dict]:
    """Row count, a content hash and, for the KPI marts, a preview of the latest month (one read-only pass)."""
    import duckdb

    facts: dict[str, dict] = {}
    if not tables or not warehouse.exists():
        return facts
    views = {f"{n['schema']}.{n.get('alias') or n['name']}" for n in _manifest_nodes().values()
             if n.get("resource_type") == "model" and n.get("config", {}).get("materialized") == "view"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in tables:
            # a view's content is its sources' (hashed at ingestion): hashing it would re-read every delivery
            is_view = table in views
            try:
                rows, digest = con.execute(
                    f"select count(*), {'null' if is_view else 'coalesce(sum(hash(t)), 0)'} from {table} t"
                ).fetchall()[0]
            except duckdb.Error:
                continue
            entry: dict = {"dagster/row_count": int(rows),
                           "content_hash": None if is_view else f"{digest & (2**64 - 1):016x}"}
            described = {column: text for column, text in _column_descriptions().get(table, {}).items()}
            entry["dagster/column_schema"] = dg.TableSchema(columns=[
                dg.TableColumn(name, str(kind), description=described.get(name))
                for name, kind, *_ in con.execute(f"describe {table}").fetchall()
            ])
            if table.startswith("marts.kpi_") and rows:
                preview = con.sql(f"select * from {table} where month_end = (select max(month_end) from {table}) "
                                  f"order by all limit {PREVIEW_ROWS}").pl()
                entry["preview_latest_month"] = dg.MetadataValue.md(markdown_table(preview))
            facts[table] = entry
    return facts
