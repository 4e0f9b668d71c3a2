"""The ingest jobs: one per source, a date or a date range of its deliveries in one run."""

import dagster as dg

from abaco_assets.defs.ingest.raw_assets import ingest_assets
from abaco_assets.defs.partitions import delivery_date_partitions
from abaco_assets.lib.k8s_run_config import k8s_run_tags


def build_ingest_jobs(elsewhere_checks=()) -> dict:
    """Jobs of the ingest multi-assets and their own checks; ``elsewhere_checks`` (cross-feed and
    freshness checks on the raw assets) run in other jobs."""
    jobs = {
        source: dg.define_asset_job(
            name=f"ingest_{source}_job",
            selection=dg.AssetSelection.assets(*asset_def.keys) - dg.AssetSelection.checks(*elsewhere_checks),
            partitions_def=delivery_date_partitions,
            description=f"Ingest the {source} deliveries of a date (or a date range, in one run).",
            tags=k8s_run_tags("ingestion"),
        )
        for source, asset_def in zip(SOURCES, ingest_assets)
    }
    jobs[ALL_SOURCES] = dg.define_asset_job(
        name="ingest_job",
        selection=dg.AssetSelection.assets(*(key for asset_def in ingest_assets for key in asset_def.keys))
        - dg.AssetSelection.checks(*elsewhere_checks),
        partitions_def=delivery_date_partitions,
        description="Ingest the deliveries of several feeds that landed on the same date(s), in one run "
                    "(`abaco run` runs a subset of it: the feeds that have files then).",
        tags=k8s_run_tags("ingestion"),
    )
    return jobs


SOURCES = ("cascade", "collections", "delinquency")
ALL_SOURCES = "*"


def ingest_subset(job: dg.JobDefinition, sources: list[str]) -> dg.JobDefinition:
    """``ingest_job`` narrowed to some feeds: their ingest assets and their own checks only."""
    chosen = [asset_def for source, asset_def in zip(SOURCES, ingest_assets) if source in sources]
    return job.get_subset(asset_selection={key for a in chosen for key in a.keys},
                          asset_check_selection={key for a in chosen for key in a.check_keys})
