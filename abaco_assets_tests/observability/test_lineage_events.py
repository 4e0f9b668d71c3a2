"""OpenLineage events built from asset executions: valid against the official schema, START before
the end, the parent facet on the Dagster run, and both transports (JSONL file, HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pytest

from abaco_assets.lib.lineage import AssetExecution, Column, DatasetRef, build_events, event_dict, emit, \
    lineage_client, lineage_file, raw_dataset, warehouse_dataset
from abaco_assets_tests.observability.local_servers import HttpSink
from abaco_assets_tests.observability.openlineage_schema import validation_errors

SHA = "a" * 64
T0 = dt.datetime(2026, 11, 3, 14, 0, tzinfo=dt.timezone.utc)
REVISION = {"revision": "0123456789abcdef0123456789abcdef01234567", "kind": "git", "packageVersion": "0.1.0",
            "dirty": False}


def raw_execution(tmp_path, status="COMPLETE") -> AssetExecution:
    namespace, name = raw_dataset(tmp_path, "cascade", "loan_data")
    output = DatasetRef(namespace, name, columns=[Column("loan_id", "VARCHAR", "Cascade loan id")],
                        files=[{"delivery_date": "2026-10-31", "sha256": SHA, "key": f"cascade/loan_data/2026-10-31/{SHA}.csv",
                                "version_id": "0f0f0f0f0f0f0f0f", "status": "accepted",
                                "contract": "cascade/loan_data@v1", "rows": 100}],
                        contract="cascade/loan_data@v2", contracts_used=["cascade/loan_data@v1"], row_count=100,
                        checks=[{"name": "contract", "passed": status == "COMPLETE", "severity": "ERROR",
                                 "blocking": True}])
    return AssetExecution("raw/cascade/loan_data", str(uuid.uuid4()), "ingest_cascade_job", "ingest_cascade",
                          T0, T0 + dt.timedelta(seconds=3), status, outputs=[output], partitions=["2026-10-31"],
                          error=None if status == "COMPLETE" else "blocking check contract failed",
                          run_url="http://127.0.0.1:3000/runs/x")


def mart_execution(tmp_path) -> AssetExecution:
    parent_ns, parent_name = warehouse_dataset(tmp_path, "intermediate", "int_loan_month_panel", {})
    ns, name = warehouse_dataset(tmp_path, "marts", "kpi_portfolio_monthly", {})
    return AssetExecution("marts/kpi_portfolio_monthly", str(uuid.uuid4()), "transform_job", "abaco_dbt_models",
                          T0, T0 + dt.timedelta(seconds=20), "FAIL",
                          inputs=[DatasetRef(parent_ns, parent_name, version="abc")],
                          outputs=[DatasetRef(ns, name, columns=[Column("opb", "DECIMAL(18,2)")])],
                          error="dbt test failed", stack_trace="Traceback ...")


def test_events_validate_against_the_official_schema(tmp_path):
    for execution in (raw_execution(tmp_path), raw_execution(tmp_path, "FAIL"), mart_execution(tmp_path)):
        for event in build_events(execution, REVISION):
            assert validation_errors(event_dict(event)) == []


def test_the_validator_rejects_a_broken_event(tmp_path):
    start, final = build_events(raw_execution(tmp_path), REVISION)
    broken = event_dict(final)
    broken["run"]["runId"] = "not-a-uuid"
    broken["outputs"][0]["facets"]["abaco_files"]["files"][0]["sha256"] = "nope"
    del broken["run"]["facets"]["parent"]["job"]["name"]
    errors = validation_errors(broken)
    assert any("runId" in e or "uuid" in e for e in errors)
    assert any("abaco_files" in e for e in errors) and any("parent" in e for e in errors)


def test_start_precedes_the_end_with_one_run_id_and_the_dagster_run_as_parent(tmp_path):
    execution = raw_execution(tmp_path)
    start, final = (event_dict(e) for e in build_events(execution, REVISION))
    assert (start["eventType"], final["eventType"]) == ("START", "COMPLETE")
    assert start["eventTime"] <= final["eventTime"]
    assert start["run"]["runId"] == final["run"]["runId"] != execution.dagster_run_id
    assert start["job"] == {**start["job"], "namespace": "abaco", "name": "raw/cascade/loan_data"}
    parent = final["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == execution.dagster_run_id and parent["job"]["name"] == "ingest_cascade_job"
    assert final["run"]["facets"]["abaco_codeRevision"]["revision"] == REVISION["revision"]
    output = final["outputs"][0]
    assert output["namespace"] == f"file://{tmp_path.resolve()}/raw" and output["name"] == "cascade/loan_data"
    assert output["facets"]["abaco_files"]["files"][0]["sha256"] == SHA
    assert output["facets"]["abaco_contract"]["version"] == "v1"  # the version the file was validated with
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 100
    # the same execution gives the same ids: re-emitting is idempotent for consumers
    assert event_dict(build_events(execution, REVISION)[0])["run"]["runId"] == start["run"]["runId"]


def test_failed_execution_carries_the_error(tmp_path):
    _, final = (event_dict(e) for e in build_events(mart_execution(tmp_path), REVISION))
    assert final["eventType"] == "FAIL"
    assert final["run"]["facets"]["errorMessage"]["message"] == "dbt test failed"
    assert final["outputs"][0]["namespace"] == f"duckdb://{tmp_path.resolve()}/warehouse.duckdb"
    assert final["outputs"][0]["name"] == "marts.kpi_portfolio_monthly"


def test_file_transport_appends_one_event_per_line_from_concurrent_writers(tmp_path):
    executions = [raw_execution(tmp_path) for _ in range(8)]

    def write(execution):
        emit(lineage_client(tmp_path, env={}), build_events(execution, REVISION))

    threads = [threading.Thread(target=write, args=(e,)) for e in executions]
    [t.start() for t in threads]
    [t.join() for t in threads]
    lines = lineage_file(tmp_path).read_text().splitlines()
    assert len(lines) == 16
    events = [json.loads(line) for line in lines]
    assert {e["run"]["runId"] for e in events} == {e.lineage_run_id for e in executions}


@pytest.fixture()
def marquez():
    sink = HttpSink().start()
    yield sink
    sink.stop()


def test_http_transport_when_openlineage_url_is_set(tmp_path, marquez):
    env = {"OPENLINEAGE_URL": marquez.url, "OPENLINEAGE_API_KEY": "s3cret"}
    emit(lineage_client(tmp_path, env=env), build_events(raw_execution(tmp_path), REVISION))
    assert [r.path for r in marquez.received] == ["/api/v1/lineage"] * 2
    assert marquez.received[0].headers["Authorization"] == "Bearer s3cret"
    assert [r.json()["eventType"] for r in marquez.received] == ["START", "COMPLETE"]
    assert all(validation_errors(r.json()) == [] for r in marquez.received)
    assert not lineage_file(tmp_path).exists()
