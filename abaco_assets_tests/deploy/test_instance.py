"""The production instance (dagster.prod.yaml) on a real PostgreSQL server.

Runs are created and submitted the way the webserver does it (from the code location's
remote job, through instance.submit_run and the configured coordinator), and the queue is
processed by one pass of Dagster's own queue daemon. The launcher only records launches,
so a launched run stays in progress until the test ends it.
"""

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType

from abaco_assets.defs.compliance.launch_guard import (
    PRINCIPAL_TAG,
    LaunchRefused,
    launch_guard_sensor,
)
from abaco_assets_tests.deploy import instance_support
from abaco_assets_tests.deploy.instance_support import create_run, finish, process_queue, submit
from abaco_assets_tests.deploy.queue_location import WRITER_POOL

PROD_YAML = instance_support.REPO_ROOT / instance_support.PROD_INSTANCE_FILE
LAUNCH_TAGS = {"abaco/principal": "ana@abaco.example", "abaco/purpose": "restate March tape",
               "abaco/ticket": "RISK-142"}


def jobs_of(instance, run_ids):
    return Counter(instance.get_run_by_id(run_id).job_name for run_id in run_ids)


def queued(instance):
    return jobs_of(instance, [r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))])


def test_connection_settings_are_environment_references_only():
    config = yaml.safe_load(PROD_YAML.read_text())
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    for field in ("hostname", "port", "username", "password", "db_name"):
        assert set(postgres_db[field]) == {"env"}, f"{field} must come from the environment"


def test_runs_events_and_schedules_live_in_postgres(prod_instance, queue, prod_env):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(prod_instance.run_storage, PostgresRunStorage)
    assert isinstance(prod_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(prod_instance.schedule_storage, PostgresScheduleStorage)
    run = submit(queue, create_run(queue, "ingest_job"))
    # A second instance built from the same file and environment sees the run and its events:
    # the state is in the server, not in the process.
    other = instance_support.production_instance(Path(prod_instance.root_directory + "-second"))
    try:
        assert other.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.QUEUED
        enqueued = other.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_ENQUEUED).records
        assert len(enqueued) == 1
    finally:
        other.dispose()


def test_each_domain_has_its_own_lane_and_a_backlog_starves_no_one(prod_instance, queue):
    # A backlog of ingestion runs is queued first, then transform and compliance work.
    runs = [submit(queue, create_run(queue, job)) for job in
            ["ingest_job"] * 5 + ["transform_job"] * 2 + ["evidence_job"] * 3]
    assert all(run.status == dg.DagsterRunStatus.QUEUED for run in runs)

    first = process_queue(queue)
    # Plain FIFO with 6 slots would launch 5 ingestion runs and 1 transform run.
    assert jobs_of(prod_instance, first) == {"ingest_job": 3, "transform_job": 1, "evidence_job": 2}
    assert queued(prod_instance) == {"ingest_job": 2, "transform_job": 1, "evidence_job": 1}

    # Nothing finished: every lane is full, nothing more starts.
    assert process_queue(queue) == []

    # A failed ingestion run frees an ingestion slot only; the transform lane (limit 1) stays
    # closed until its own run ends.
    ingestion_run = next(run_id for run_id in first if prod_instance.get_run_by_id(run_id).job_name == "ingest_job")
    finish(prod_instance, ingestion_run)
    assert jobs_of(prod_instance, process_queue(queue)) == {"ingest_job": 1}

    transform_run = next(run_id for run_id in first if prod_instance.get_run_by_id(run_id).job_name == "transform_job")
    finish(prod_instance, transform_run)
    assert jobs_of(prod_instance, process_queue(queue)) == {"transform_job": 1}


def test_one_warehouse_writer_at_a_time_across_domains(prod_instance, queue, tmp_path):
    # The chart's hook writes the pool limits into the instance, with the dagster CLI.
    # (pools > default_limit alone would apply only from the queue's second sighting of the pool.)
    assert instance_support.apply_pool_limits_with_cli(tmp_path / "cli_home") == {WRITER_POOL: 1}

    transform = submit(queue, create_run(queue, "transform_job"))
    audit_table = submit(queue, create_run(queue, "audit_table_job"))
    evidence = submit(queue, create_run(queue, "evidence_job"))

    launched = process_queue(queue)
    # The compliance lane has room for two runs, but the audit table writes the warehouse
    # while the transform run holds the writer pool: it waits in the queue (no process, no pod).
    assert set(launched) == {transform.run_id, evidence.run_id}
    assert prod_instance.get_run_by_id(audit_table.run_id).status == dg.DagsterRunStatus.QUEUED
    assert prod_instance.event_log_storage.get_concurrency_info(WRITER_POOL).slot_count == 1

    assert process_queue(queue) == []
    finish(prod_instance, transform.run_id)
    assert process_queue(queue) == [audit_table.run_id]


def test_production_refuses_manual_runs_without_launch_tags(prod_instance, queue, monkeypatch):
    monkeypatch.setenv("ABACO_ENV", "prod")

    untagged = create_run(queue, "transform_job")
    with pytest.raises(LaunchRefused, match="abaco/purpose"):
        submit(queue, untagged)
    refused = prod_instance.get_run_by_id(untagged.run_id)
    assert refused.status == dg.DagsterRunStatus.FAILURE
    log = "\n".join(record.event_log_entry.message for record in
                    prod_instance.get_records_for_run(untagged.run_id).records)
    assert "abaco/ticket" in log  # the reason is in the run's own event log
    assert process_queue(queue) == []  # and it never reaches the queue

    tagged = submit(queue, create_run(queue, "transform_job", tags=LAUNCH_TAGS))
    assert tagged.status == dg.DagsterRunStatus.QUEUED

    # Behind the proxy the principal is the signed-in user; claiming someone else is refused.
    proxied = submit(queue, create_run(queue, "evidence_job", tags={"abaco/purpose": "evidence pack",
                                                                     "abaco/ticket": "AUD-7"}),
                     headers={"X-Forwarded-Email": "luis@abaco.example"})
    assert proxied.status == dg.DagsterRunStatus.QUEUED
    assert prod_instance.get_run_by_id(proxied.run_id).tags[PRINCIPAL_TAG] == "luis@abaco.example"
    with pytest.raises(LaunchRefused, match="does not match the signed-in user"):
        submit(queue, create_run(queue, "evidence_job", tags=LAUNCH_TAGS),
               headers={"X-Forwarded-Email": "luis@abaco.example"})

    # Runs that Dagster starts by itself (sensors, schedules, automation) are not manual.
    by_sensor = submit(queue, create_run(queue, "ingest_job", tags={"dagster/sensor_name": "landing_sensor"}))
    assert by_sensor.status == dg.DagsterRunStatus.QUEUED


def test_outside_production_the_guard_stays_out_of_the_way(prod_instance, queue):
    run = submit(queue, create_run(queue, "transform_job"))  # ABACO_ENV=local
    assert run.status == dg.DagsterRunStatus.QUEUED


def test_sensor_cancels_untagged_runs_on_an_instance_without_the_guard(prod_env, tmp_path, monkeypatch):
    plain_queue = {"run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}}
    instance = instance_support.production_instance(tmp_path / "home", overrides=plain_queue)
    try:
        with instance_support.queue_workspace(instance) as context:
            monkeypatch.setenv("ABACO_ENV", "prod")
            untagged = submit(context, create_run(context, "transform_job"))
            tagged = submit(context, create_run(context, "transform_job", tags=LAUNCH_TAGS))
            for run in (untagged, tagged):
                event = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_ENQUEUED).records[0]
                sensor_context = dg.build_run_status_sensor_context(
                    sensor_name="launch_guard_sensor", dagster_instance=instance,
                    dagster_run=instance.get_run_by_id(run.run_id),
                    dagster_event=event.event_log_entry.dagster_event,
                )
                launch_guard_sensor(sensor_context)
            assert instance.get_run_by_id(untagged.run_id).status == dg.DagsterRunStatus.CANCELED
            assert instance.get_run_by_id(tagged.run_id).status == dg.DagsterRunStatus.QUEUED
    finally:
        instance.dispose()
