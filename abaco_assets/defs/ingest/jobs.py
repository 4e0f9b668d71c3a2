"""The ingest jobs: one per source, a date or a date range of its deliveries in one run."""

import dagster as dg

from abaco_assets.defs.ingest.raw_assets import ingest_assets
from abaco_assets.defs.partitions import delivery_date_partitions
from abaco_assets.lib.k8s_run_config import k8s_run_tags


def build_ingest_jobs(elsewhere_checks=()) -> dict:
    """Jobs of the ingest multi-assets and their own checks; ``elsewhere_checks`` (cross-feed and
    freshness checks on the raw assets) run in other jobs."""
    return {
        source: dg.define_asset_job(
            name=f"ingest_{source}_job",
            selection=dg.AssetSelection.assets(*asset_def.keys) - dg.AssetSelection.checks(*elsewhere_checks),
            partitions_def=delivery_date_partitions,
            description=f"Ingest the {source} deliveries of a date (or a date range, in one run).",
            tags=k8s_run_tags("ingestion"),
        )
        for source, asset_def in zip(("cascade", "collections", "delinquency"), ingest_assets)
    }
