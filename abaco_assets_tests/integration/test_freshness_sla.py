"""The freshness SLA check and sensor, run through Dagster against a real catalog."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from abaco_assets.definitions import defs
from abaco_assets.defs.quality import freshness
from abaco_assets.defs.quality.freshness import freshness_sla_sensor, source_breaches
from abaco_assets.resources import AbacoSettings
from abaco_assets_tests.fixtures.landing_writer import customer, loan, write_tape
from abaco_assets.lib.deliveries import Zones, process_delivery
from abaco_assets.lib.landing import scan_landing

SV = ZoneInfo("America/El_Salvador")


@pytest.fixture()
def one_tape(data_dir, tmp_path):
    landing = tmp_path / "landing"
    write_tape(landing, dt.date(2026, 9, 30), {
        "loan_data": [loan("L1", "C1")], "customer_data": [customer("C1")],
        "payment_schedule": [], "historic_real_payment": []})
    scan = scan_landing(landing)
    outcome = process_delivery(scan.files, zones=Zones(data_dir), pii_key=b"k", run_id="test")
    assert outcome.accepted, outcome.message
    return data_dir


def test_missing_month_end_tape_is_a_breach_after_its_business_day_deadline(one_tape):
    settings = AbacoSettings(data_dir=str(one_tape))
    # October 2026 ends on a Saturday and Monday Nov 2 is a holiday: the tape is due Tue Nov 3, 09:00
    assert source_breaches(settings, "cascade", dt.datetime(2026, 11, 3, 8, 59, tzinfo=SV)) == []
    (late,) = source_breaches(settings, "cascade", dt.datetime(2026, 11, 3, 10, 0, tzinfo=SV))
    assert late.delivery_date == dt.date(2026, 10, 31) and late.hours_late == 1.0


def test_the_check_fails_with_warn_and_writes_the_artifact(one_tape, monkeypatch):
    fixed_now = dt.datetime(2026, 11, 3, 10, 0, tzinfo=SV)
    # only the freshness module's clock stops (patching datetime itself would leak into every
    # module imported while the test runs)
    monkeypatch.setattr(freshness, "_now", lambda: fixed_now)
    result = defs.resolve_job_def("freshness_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    evaluations = {e.asset_key.path[1]: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["cascade"].passed
    assert evaluations["cascade"].severity == dg.AssetCheckSeverity.WARN
    artifacts = list((one_tape / "logs" / "freshness").rglob("cascade.json"))
    assert artifacts and "2026-10-31" in artifacts[0].read_text()


def test_sensor_requests_one_evaluation_per_deadline(data_dir):
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()) as context:
        first = freshness_sla_sensor(context)
        assert isinstance(first, dg.RunRequest) and first.run_key.startswith("freshness-")
        context.update_cursor(first.run_key.removeprefix("freshness-"))
        assert isinstance(freshness_sla_sensor(context), dg.SkipReason)
