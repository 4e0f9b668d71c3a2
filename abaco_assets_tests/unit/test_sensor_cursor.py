"""The landing sensor's pure logic: the cursor, delivery grouping and run keys."""

import datetime as dt
import hashlib
import zipfile

import pytest

from abaco_assets.lib.landing_triggers import delivery_run_key, plan_triggers, processed_version
from abaco_assets.lib.sensor_cursor import LandingCursor
from abaco_assets.lib.storage import LandedObject

LOOKBACK_SECONDS = 60
TAPE = "cascade/2026-10-31/Abaco - Loan Tape_{}_Table.csv"
REQUIRED = ("Loan Data", "Customer Data", "Payment Schedule", "Historic Real Payment")


def obj(key: str, at: float, etag: str = "e1", size_bytes: int = 10) -> LandedObject:
    return LandedObject(key, at, at, etag, size_bytes)


def tick(cursor: LandingCursor, listed: list[LandedObject]) -> tuple[list[LandedObject], LandingCursor]:
    fresh = cursor.fresh(listed, LOOKBACK_SECONDS)
    return fresh, LandingCursor.from_json(cursor.advance(listed, fresh, LOOKBACK_SECONDS).to_json())


def test_first_tick_sees_everything_and_the_next_tick_nothing():
    listed = [obj("collections/2026-10-01/collections_20261001.csv", 100),
              obj("collections/2026-10-02/collections_20261002.csv", 101)]
    fresh, cursor = tick(LandingCursor(), listed)
    assert fresh == listed
    assert (cursor.high_water_seconds, cursor.high_water_key) == (101, listed[1].key)
    assert tick(cursor, listed)[0] == []


def test_keys_sharing_the_cursor_second_are_not_missed_even_when_they_sort_before_it():
    first = obj("collections/2026-10-05/collections_20261005.csv", 100)
    _, cursor = tick(LandingCursor(), [first])
    same_second = obj("collections/2026-10-01/collections_20261001.csv", 100)  # key sorts before the mark's
    fresh, cursor = tick(cursor, [first, same_second])
    assert fresh == [same_second]
    assert tick(cursor, [first, same_second])[0] == []


def test_late_key_inside_the_lookback_is_seen_and_one_older_than_the_window_is_not():
    newest = obj("collections/2026-10-05/collections_20261005.csv", 1000)
    _, cursor = tick(LandingCursor(), [newest])
    late = obj("collections/2026-10-03/collections_20261003.csv", 1000 - LOOKBACK_SECONDS + 1)
    ancient = obj("collections/2026-10-02/collections_20261002.csv", 1000 - LOOKBACK_SECONDS - 1)
    fresh, _ = tick(cursor, [newest, late, ancient])
    assert fresh == [late]


def test_reupload_of_identical_bytes_is_not_new_and_changed_bytes_are():
    original = obj("delinquency/2026-10-31/delinquency_20261031.csv", 100, etag="aaa")
    _, cursor = tick(LandingCursor(), [original])
    same_bytes = obj(original.key, 130, etag="aaa")  # S3 gives a re-upload a new LastModified
    fresh, cursor = tick(cursor, [same_bytes])
    assert fresh == []
    changed = obj(original.key, 140, etag="bbb")
    fresh, cursor = tick(cursor, [changed])
    assert fresh == [changed]
    assert tick(cursor, [changed])[0] == []


def test_handled_pairs_leave_the_cursor_with_the_window():
    old = obj("collections/2026-10-01/collections_20261001.csv", 100)
    _, cursor = tick(LandingCursor(), [old])
    new = obj("collections/2026-10-02/collections_20261002.csv", 100 + 10 * LOOKBACK_SECONDS)
    _, cursor = tick(cursor, [old, new])
    assert set(cursor.handled) == {(new.key, new.etag)}
    assert tick(cursor, [old, new])[0] == []  # the old key is below the window: not seen again


def test_cursor_serialization_round_trips_and_refuses_unknown_formats():
    cursor = LandingCursor(12.5, "k", {("k", "e"): 12.5, ("j", "f"): 11.0})
    assert LandingCursor.from_json(cursor.to_json()) == cursor
    assert LandingCursor.from_json(None) == LandingCursor() == LandingCursor.from_json("")
    with pytest.raises(ValueError, match="format"):
        LandingCursor.from_json('{"version": 99, "high_water": [null, ""], "handled": []}')


def _no_zip(item):
    raise AssertionError(f"no zip expected: {item.key}")


def test_a_cascade_delivery_runs_once_when_its_required_tables_are_all_there():
    three = [obj(TAPE.format(table), 100 + i) for i, table in enumerate(REQUIRED[:3])]
    plan = plan_triggers("cascade", three, three, _no_zip)
    assert plan.triggers == [] and "Historic Real Payment" not in plan.waiting[0]
    assert "historic_real_payment" in plan.waiting[0]
    fourth = obj(TAPE.format(REQUIRED[3]), 110)
    plan = plan_triggers("cascade", three + [fourth], [fourth], _no_zip)
    [trigger] = plan.triggers
    assert trigger.partition_key == "2026-10-31" and len(trigger.objects) == 4
    assert trigger.run_key == delivery_run_key("cascade", dt.date(2026, 10, 31), three + [fourth])
    assert trigger.run_key.startswith("cascade/2026-10-31/4-files@")
    # the optional Collateral arriving later is a new version of the delivery, with a new run key
    collateral = obj(TAPE.format("Collateral"), 120)
    [later] = plan_triggers("cascade", three + [fourth, collateral], [collateral], _no_zip).triggers
    assert len(later.objects) == 5 and later.run_key != trigger.run_key


def test_a_zip_delivery_counts_its_members():
    archive = obj("cascade/2026-10-31/tape.zip", 100)
    tables = {"loan_data", "customer_data", "payment_schedule", "historic_real_payment"}
    plan = plan_triggers("cascade", [archive], [archive], lambda item: (tables, []))
    [trigger] = plan.triggers
    assert trigger.run_key == f"{archive.key}@{archive.etag}"
    partial = plan_triggers("cascade", [archive], [archive], lambda item: ({"loan_data"}, []))
    assert partial.triggers == [] and partial.waiting

    def unreadable(item):
        raise zipfile.BadZipFile("truncated")

    broken = plan_triggers("cascade", [archive], [archive], unreadable)
    assert broken.triggers == [] and [s.reason for s in broken.skipped] == ["not a readable zip archive"]


def test_daily_feed_run_key_is_key_at_etag_and_unexpected_fresh_keys_are_skipped():
    good = obj("collections/2026-10-01/collections_20261001.csv", 100, etag="abc")
    stray = obj("collections/2026-10-01/notes.txt", 100)
    wrong_date = obj("collections/2026-10-02/collections_20261001.csv", 100)
    old_stray = obj("collections/readme.md", 50)
    plan = plan_triggers("collections", [good, stray, wrong_date, old_stray], [good, stray, wrong_date], _no_zip)
    assert [t.run_key for t in plan.triggers] == [f"{good.key}@abc"]
    assert {s.key for s in plan.skipped} == {stray.key, wrong_date.key}  # the old stray was reported before


def test_processed_version_matches_exact_files_and_modification_times():
    loan = obj(TAPE.format("Loan Data"), 100)
    archive = obj("cascade/2026-09-30/tape.zip", 200)
    catalog = {"versions": {
        "v1": {"tables": {"loan_data": {"landing_key": loan.key, "mtime": 100, "size": 10}}, "superseded": []},
        "v2": {"tables": {"loan_data": {"landing_key": f"{archive.key}!Abaco - Loan Tape_Loan Data_Table.csv",
                                        "mtime": 200}}, "superseded": []},
    }}
    assert processed_version(catalog, [loan]) == "v1"
    assert processed_version(catalog, [obj(loan.key, 101)]) is None  # re-sent: a new modification time
    assert processed_version(catalog, [obj(loan.key, 100, size_bytes=11)]) is None  # other bytes, same mtime
    assert processed_version(catalog, [loan, obj(TAPE.format("Collateral"), 100)]) is None
    assert processed_version(catalog, [archive]) == "v2"


def test_local_landing_store_lists_like_a_bucket(tmp_path):
    from abaco_assets.lib.landing import scan_landing
    from abaco_assets.lib.storage import LocalLandingStore

    day = tmp_path / "collections" / "2026-10-01"
    day.mkdir(parents=True)
    (day / "collections_20261001.csv").write_bytes(b"payment_id\n")
    (day / ".upload.tmp").write_bytes(b"partial")
    (tmp_path / "README.txt").write_text("hi")
    listed = list(LocalLandingStore(tmp_path).list_objects())
    assert [item.key for item in listed] == ["README.txt", "collections/2026-10-01/.upload.tmp",
                                             "collections/2026-10-01/collections_20261001.csv"]
    assert listed[2].etag == hashlib.md5(b"payment_id\n").hexdigest()
    scan = scan_landing(tmp_path)
    assert [f.key for f in scan.files] == ["collections/2026-10-01/collections_20261001.csv"]
    assert [s.key for s in scan.skipped] == ["README.txt"]
    assert scan.files[0].read() == b"payment_id\n"


def test_storage_urls_pick_the_backend_and_map_keys():
    from abaco_assets.lib.object_store import GcsPrefix, S3Prefix
    from abaco_assets.lib.storage import LocalZone, parse_object_url, zone_at

    assert parse_object_url("/data/landing") is None
    location = parse_object_url("s3://abaco-landing/feeds/prod/")
    assert (location.bucket, location.prefix) == ("abaco-landing", "feeds/prod/")
    s3 = zone_at("s3://abaco-landing/feeds/prod")
    assert isinstance(s3, S3Prefix) and s3.locate("raw/x.csv") == "s3://abaco-landing/feeds/prod/raw/x.csv"
    gcs = zone_at("gs://abaco-partner")
    assert isinstance(gcs, GcsPrefix) and gcs.locate("cascade/a.csv") == "gs://abaco-partner/cascade/a.csv"
    assert isinstance(zone_at("relative/folder"), LocalZone)
    with pytest.raises(ValueError, match="unsupported"):
        zone_at("ftp://host/x")
    with pytest.raises(ValueError, match="no bucket"):
        zone_at("s3:///prefix")


def test_the_same_sensor_watches_a_local_folder_for_dagster_dev(tmp_path):
    """mtime/ctime and the content MD5 stand in for LastModified and the ETag; a fresh cursor passes
    over deliveries the catalog already holds (no run would change anything)."""
    import dagster as dg

    from abaco_assets.defs.ingest.sensors import sensor_for
    from abaco_assets.lib.deliveries import Zones, process_delivery
    from abaco_assets.lib.landing import scan_landing
    from abaco_assets.resources import AbacoSettings
    from abaco_assets_tests.fixtures.landing_writer import write_collections

    landing, data = tmp_path / "landing", tmp_path / "data"
    day = dt.date(2026, 10, 30)
    row = dict(payment_id="P1", loan_id="L1", received_date="2026-10-30", amount="10.00", channel="cash",
               is_recovery="false")
    path = write_collections(landing, day, [row])
    settings = AbacoSettings(landing_root=str(landing), data_dir=str(data))
    with dg.instance_for_test() as instance:
        def tick(cursor=None):
            result = sensor_for("collections")(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                                       resources={"settings": settings}))
            return [r.partition_key for r in result.run_requests or []], result.cursor

        requested, cursor = tick()
        assert requested == ["2026-10-30"]
        path.write_bytes(path.read_bytes())  # copied again, identical bytes
        assert tick(cursor)[0] == []
        write_collections(landing, day, [row, {**row, "payment_id": "P2"}])
        requested, cursor = tick(cursor)
        assert requested == ["2026-10-30"]

        process_delivery(scan_landing(landing).files, zones=Zones(data), pii_key=b"k", run_id="test")
        assert tick(None)[0] == []  # a new cursor (e.g. a fresh instance) starts nothing twice
