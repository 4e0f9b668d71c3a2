"""The dbt project as Dagster assets: staging, intermediate and KPI marts.

dbt tests become asset checks (dagster-dbt's default); a failing error-
severity test fails the step and dbt skips the models built on it.
"""

import os
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from abaco_assets.lib.deliveries import ensure_schema_files
from abaco_assets.lib.faults import fault_point
from abaco_assets.resources import AbacoSettings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()

_LAYER_GROUP = {"staging": "staging", "intermediate": "staging", "marts": "marts"}


class AbacoDbtTranslator(DagsterDbtTranslator):
    """Keys by layer (staging/stg_..., marts/kpi_...) and groups ingest / staging / marts."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        layer = dbt_resource_props["fqn"][1] if len(dbt_resource_props["fqn"]) > 2 else "marts"
        return dg.AssetKey([layer, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return _LAYER_GROUP.get(fqn[1], "marts") if len(fqn) > 2 else "marts"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), "domain": "transform"}


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=AbacoDbtTranslator(),
    op_tags={"domain": "transform"},
    pool="warehouse_writer",  # DuckDB takes one writer at a time
)
def abaco_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: AbacoSettings):
    # dbt reads ABACO_DATA through env_var() in profiles.yml and the sources.
    os.environ["ABACO_DATA"] = str(settings.data())
    ensure_schema_files(settings.zones())
    # dbt's artefacts of the last build live with the data, not in the repo checkout
    target = settings.data() / "dbt" / "target"
    invocation = dbt.cli(["build"], context=context, target_path=target)
    for event in invocation.stream():
        fault_point("mid_dbt", children=(invocation.process.pid,))
        yield event
