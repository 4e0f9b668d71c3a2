"""The code location as the Dagster UI sees it: groups, keys, checks, jobs."""

import dagster as dg

from abaco_assets.definitions import defs

RAW_TABLES = [("cascade", t) for t in ("loan_data", "customer_data", "payment_schedule", "historic_real_payment",
                                       "collateral")] + [("collections", "collections"), ("delinquency", "delinquency")]


def test_groups_follow_the_data_flow():
    graph = defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert {"ingest", "staging", "marts"} <= groups
    for source, table in RAW_TABLES:
        node = graph.get(dg.AssetKey(["raw", source, table]))
        assert node.group_name == "ingest" and node.partitions_def is not None
    for mart in ("kpi_portfolio_monthly", "kpi_portfolio_monthly_by_segment", "kpi_portfolio_monthly_by_product",
                 "kpi_roll_rates", "kpi_vintage_curves"):
        node = graph.get(dg.AssetKey(["marts", mart]))
        assert node.group_name == "marts"


def test_every_raw_asset_has_a_blocking_contract_check_and_marts_have_dbt_tests():
    graph = defs.resolve_asset_graph()
    check_keys = graph.asset_check_keys
    for source, table in RAW_TABLES:
        key = dg.AssetCheckKey(dg.AssetKey(["raw", source, table]), "contract")
        assert key in check_keys
        assert graph.get_check_spec(key).blocking
    checked_marts = {key.asset_key for key in check_keys if key.asset_key.path[0] == "marts"}
    assert dg.AssetKey(["marts", "kpi_portfolio_monthly"]) in checked_marts


def test_staging_reads_the_raw_assets():
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["staging", "stg_cascade__loan_data"])).parent_keys
    assert dg.AssetKey(["raw", "cascade", "loan_data"]) in parents


def test_jobs_a_user_can_launch():
    for name in ("ingest_cascade_job", "ingest_collections_job", "ingest_delinquency_job", "transform_job"):
        assert defs.resolve_job_def(name) is not None


def test_the_ingest_only_code_location_runs_the_same_ingest_jobs():
    """`abaco run --ingest-only` loads abaco_assets.ingest_definitions (no dbt): same assets, same checks."""
    from abaco_assets.definitions import INGEST_JOBS, defs as full
    from abaco_assets.ingest_definitions import defs as lean

    assert {job.name for job in INGEST_JOBS.values()} == {"ingest_cascade_job", "ingest_collections_job",
                                                          "ingest_delinquency_job", "ingest_job"}
    for job in INGEST_JOBS.values():
        ours, theirs = full.resolve_job_def(job.name), lean.resolve_job_def(job.name)
        assert set(ours.asset_layer.executable_asset_keys) == set(theirs.asset_layer.executable_asset_keys)
        assert set(ours.asset_layer.asset_graph.asset_check_keys) == set(theirs.asset_layer.asset_graph.asset_check_keys)
        assert ours.partitions_def == theirs.partitions_def and ours.tags == theirs.tags


def test_feeds_landing_on_the_same_dates_share_one_ingest_run_with_only_their_own_checks():
    from abaco_assets.defs.ingest.jobs import ingest_subset

    job = ingest_subset(defs.resolve_job_def("ingest_job"), ["cascade", "delinquency"])
    assert {key.path[1] for key in job.asset_layer.executable_asset_keys} == {"cascade", "delinquency"}
    checks = {(key.asset_key.path[1], key.name) for key in job.asset_layer.asset_graph.asset_check_keys}
    assert ("cascade", "completeness") in checks and ("delinquency", "contract") in checks
    # the cross-feed reconciliation and freshness checks run with the transform, not here
    assert not {name for _, name in checks} & {"reconciles_with_cascade", "freshness"}
