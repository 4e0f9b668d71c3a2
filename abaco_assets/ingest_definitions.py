"""The ingest part of the code location alone, for `abaco run --ingest-only`.

Same assets, checks, jobs, loggers and resources as ``abaco_assets.definitions`` for ingestion,
without the dbt project: loading dagster-dbt and the manifest is two of the five seconds an
ingest-only run of one small file would otherwise spend before reading it.
"""

import dagster as dg

from abaco_assets.defs.ingest.jobs import build_ingest_jobs
from abaco_assets.defs.ingest.raw_assets import ingest_assets
from abaco_assets.defs.observability import observability_loggers
from abaco_assets.resources import AbacoSettings

INGEST_JOBS = build_ingest_jobs()

defs = dg.Definitions(
    assets=ingest_assets,
    jobs=list(INGEST_JOBS.values()),
    loggers=observability_loggers,
    resources={"settings": AbacoSettings()},
    executor=dg.in_process_executor,
)
