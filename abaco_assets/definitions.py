"""The Abaco code location: raw feeds -> dbt staging/marts, with their checks and jobs.

Nothing heavy happens at import beyond reading the prepared dbt manifest.
"""

import dagster as dg

from abaco_assets.defs.compliance.audit_table import audit_log
from abaco_assets.defs.compliance.launch_guard import launch_guard_sensor
from abaco_assets.defs.ingest.jobs import build_ingest_jobs
from abaco_assets.defs.ingest.raw_assets import ingest_assets
from abaco_assets.defs.observability import observability_loggers, observability_sensors
from abaco_assets.defs.ingest.sensors import ingest_sensors
from abaco_assets.defs.metrics.python_metrics import metric_assets
from abaco_assets.defs.reporting.board_pack import reporting_assets
from abaco_assets.defs.quality.freshness import freshness_checks, freshness_job, freshness_sla_sensor
from abaco_assets.defs.quality.reconciliation_checks import reconciliation_checks
from abaco_assets.defs.transform.automation import transform_automation_sensor
from abaco_assets.defs.transform.dbt_models import (
    DBT_EXECUTABLE,
    VenvDbtCliResource,
    abaco_dbt_models,
    dbt_project,
)
from abaco_assets.lib.k8s_run_config import k8s_run_tags
from abaco_assets.resources import AbacoSettings
from abaco_assets.warehouse import Warehouse

INGEST_JOBS = build_ingest_jobs(elsewhere_checks=[*reconciliation_checks, *freshness_checks])

transform_job = dg.define_asset_job(
    name="transform_job",
    selection=dg.AssetSelection.groups("staging", "marts", "metrics", "compliance", "reporting")
    | dg.AssetSelection.checks(*reconciliation_checks),
    description="Reconcile the feeds, rebuild staging, intermediate models and the KPI marts from the "
    "accepted deliveries, then the Python metrics, the audit table and the board pack.",
    tags=k8s_run_tags("transform"),
)

reporting_job = dg.define_asset_job(
    name="reporting_job",
    selection=dg.AssetSelection.groups("reporting"),
    description="Rebuild the board pack (HTML per month_end, PDF of the latest) from the current marts.",
    tags=k8s_run_tags("transform"),
)

defs = dg.Definitions(
    assets=[*ingest_assets, abaco_dbt_models, *metric_assets, audit_log, *reporting_assets],
    asset_checks=[*reconciliation_checks, *freshness_checks],
    jobs=[*INGEST_JOBS.values(), transform_job, reporting_job, freshness_job],
    sensors=[freshness_sla_sensor, launch_guard_sensor, *ingest_sensors, transform_automation_sensor,
             *observability_sensors],
    loggers=observability_loggers,
    resources={
        "settings": AbacoSettings(),
        "warehouse": Warehouse(),
        "dbt": VenvDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
    },
    executor=dg.in_process_executor,
)
