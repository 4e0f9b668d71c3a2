import datetime as dt

from abaco_assets.lib.run_plan import contiguous_ranges

D = dt.date


def test_daily_files_batch_into_one_range_and_month_ends_stay_apart():
    days = [D(2026, 1, 1) + dt.timedelta(days=i) for i in range(31)]
    assert [(r.start, r.end) for r in contiguous_ranges("collections", days)] == [(D(2026, 1, 1), D(2026, 1, 31))]
    month_ends = [D(2026, 3, 31), D(2026, 1, 31), D(2026, 2, 28), D(2026, 1, 31)]
    assert [(r.start, r.end) for r in contiguous_ranges("cascade", month_ends)] == [
        (D(2026, 1, 31), D(2026, 1, 31)), (D(2026, 2, 28), D(2026, 2, 28)), (D(2026, 3, 31), D(2026, 3, 31))]


def test_a_delivery_seen_before_is_recognised_by_key_size_and_mtime(tmp_path):
    import os

    from abaco_assets.lib.deliveries import Zones, load_catalog, process_delivery, recorded_version
    from abaco_assets.lib.generator import generate_landing
    from abaco_assets.lib.landing import scan_landing

    generate_landing(tmp_path / "landing", loans=20, months=1, seed=3, delinquency_cadence="month-end")
    zones = Zones(tmp_path / "data")
    files = scan_landing(tmp_path / "landing", source="delinquency").files
    day = files[0].delivery_date
    assert recorded_version(load_catalog(zones, "delinquency", day), files) is None  # never processed
    outcome = process_delivery(files, zones=zones, pii_key=b"k", run_id="r1")
    assert recorded_version(load_catalog(zones, "delinquency", day), files) == outcome.version_id
    # the same file touched (a re-export with the same bytes) is new to the stat test: it is processed
    # again, and processing recognises the bytes by their hash
    path = tmp_path / "landing" / files[0].key
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 60))
    touched = scan_landing(tmp_path / "landing", source="delinquency").files
    assert recorded_version(load_catalog(zones, "delinquency", day), touched) is None
    again = process_delivery(touched, zones=zones, pii_key=b"k", run_id="r2")
    assert again.version_id == outcome.version_id and again.previously_processed
    # ...and remembered, so the next run skips it without reading it
    assert recorded_version(load_catalog(zones, "delinquency", day), touched) == outcome.version_id
    # a rewrite with the same size and the mtime set back is still new: the inode change time moved
    stat = path.stat()
    original = path.read_bytes()
    path.write_bytes(original.replace(b",0,", b",1,", 1) if b",0," in original else original[:-2] + b"9\n")
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rewritten = scan_landing(tmp_path / "landing", source="delinquency").files
    assert recorded_version(load_catalog(zones, "delinquency", day), rewritten) is None


def test_changed_sources_rebuild_everything_unless_a_successful_build_of_this_code_is_recorded():
    from abaco_assets.lib.run_plan import changed_sources

    now = {"cascade": "c1", "collections": "k2", "delinquency": "d1"}
    built = {"sources": {"cascade": "c1", "collections": "k1", "delinquency": "d1"}, "project": "p", "success": True}
    assert changed_sources(built, now, "p") == {"collections"}
    assert changed_sources(built, built["sources"], "p") == set()
    assert changed_sources({**built, "success": False}, now, "p") is None  # the last build failed
    assert changed_sources(built, now, "other code") is None
    assert changed_sources({"fingerprint": "old format", "success": True}, now, "p") is None
    assert changed_sources({}, now, "p") is None
    assert changed_sources(built, {**built["sources"], "new_feed": "n"}, "p") == {"new_feed"}


def test_the_transform_subset_is_what_reads_the_changed_feeds():
    from abaco_assets.definitions import defs
    from abaco_assets.lib.run_plan import transform_subset

    job = defs.resolve_job_def("transform_job")
    names = lambda keys: {key.path[-1] for key in keys}  # noqa: E731
    assets, checks = transform_subset(job, {"collections"})
    # collections feed only its staging view and the reconciliation; the always-current cheap ones ride along
    assert names(assets) == {"stg_collections__collections", "audit_log", "metric_time_spine_day"}
    assert {c.name for c in checks if c.asset_key.path[0] == "raw"} == {"reconciles_with_cascade"}
    assets, _ = transform_subset(job, {"delinquency"})
    assert {"collections_by_stage", "collections_monthly", "finance_monthly_pnl", "board_pack"} <= names(assets)
    assert not names(assets) & {"int_loan_month_panel", "kpi_portfolio_monthly", "metric_expected_credit_loss"}
    everything, all_checks = transform_subset(job, {"cascade", "collections", "delinquency"})
    assert everything == set(job.asset_layer.executable_asset_keys)
    assert all_checks == set(job.asset_layer.asset_graph.asset_check_keys)


def test_the_code_fingerprint_follows_the_models(tmp_path):
    import shutil

    from abaco_assets.lib.run_plan import CODE_DIRS, REPO_ROOT, code_fingerprint

    for folder in CODE_DIRS:
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(REPO_ROOT / "dbt_project" / "dbt_project.yml", tmp_path / "dbt_project" / "dbt_project.yml")
    before = code_fingerprint(tmp_path)
    assert before == code_fingerprint(REPO_ROOT)
    model = next((tmp_path / "dbt_project" / "models").rglob("kpi_portfolio_monthly.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    assert code_fingerprint(tmp_path) != before
