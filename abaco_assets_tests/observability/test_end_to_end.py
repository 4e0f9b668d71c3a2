"""End to end: `abaco generate` -> the jobs in-process -> observe_run -> lineage, logs, alerts, `abaco lineage`.

One small landing (100 loans, 2 month-end tapes) is run once for the module; the alert test then
provokes one incident of each kind against a real SMTP server and an HTTP "Slack" on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from abaco_assets_tests.conftest import environment, run_abaco
from abaco_assets_tests.observability.openlineage_schema import validation_errors

pytestmark = pytest.mark.e2e
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class Pipeline:
    landing: Path
    data: Path
    instance: object
    defs: object
    runs: list  # DagsterRun, oldest first
    observations: dict

    def events(self) -> list[dict]:
        return [json.loads(line) for line in (self.data / "logs/lineage/events.jsonl").read_text().splitlines()]

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in (self.data / "logs/abaco.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("observability-e2e")
    landing, data = root / "landing", root / "data"
    with environment({"ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "ABACO_LOG_STDOUT": "0",
                      "ABACO_LANDING": None}):
        generated = run_abaco("generate", "--out", str(landing), "--loans", "100", "--months", "2", "--seed", "3",
                              "--delinquency-cadence", "month-end")
        assert generated.returncode == 0, generated.stderr
        import dagster as dg

        from abaco_assets.cli import _run
        from abaco_assets.definitions import defs
        from abaco_assets.defs.observability import observe_run

        assert _run(landing, data, False) in (0, 1)
        instance = dg.DagsterInstance.get()
        runs = [record.dagster_run for record in reversed(instance.get_run_records())]
        # `abaco run` may already observe its runs (cli wiring); observing again must be harmless
        observations = {run.run_id: observe_run(instance, run.run_id, defs, log_to_stdout=False) for run in runs}
        yield Pipeline(landing, data, instance, defs, runs, observations)


def test_the_runs_were_observed_without_errors(pipeline):
    jobs = [run.job_name for run in pipeline.runs]
    # a tape and its month-end delinquency file land on the same date: one run of ingest_job covers both
    assert "transform_job" in jobs and "ingest_job" in jobs and "ingest_collections_job" in jobs
    assert all(run.status.value == "SUCCESS" for run in pipeline.runs)
    assert all(not o.errors for o in pipeline.observations.values()), pipeline.observations
    for run in pipeline.runs:
        record = json.loads((pipeline.data / "logs/lineage/runs" / f"{run.run_id}.json").read_text())
        assert record["code_revision"]["revision"] and record["job"] == run.job_name


def test_every_event_validates_and_each_asset_starts_before_it_ends(pipeline):
    events = pipeline.events()
    errors = {f"{e['job']['name']} {e['eventType']}": validation_errors(e) for e in events}
    assert not {k: v for k, v in errors.items() if v}
    by_run = defaultdict(list)
    for event in events:
        by_run[event["run"]["runId"]].append(event)
    dagster_runs = {run.run_id: run.job_name for run in pipeline.runs}
    for run_id, pair in by_run.items():
        assert [e["eventType"] for e in pair] == ["START", "COMPLETE"], pair[0]["job"]["name"]
        assert pair[0]["eventTime"] <= pair[1]["eventTime"]
        parent = pair[1]["run"]["facets"]["parent"]
        assert dagster_runs[parent["run"]["runId"]] == parent["job"]["name"]
        assert run_id not in dagster_runs
    assets = {e["job"]["name"] for e in events}
    assert {"raw/cascade/loan_data", "raw/collections/collections", "staging/stg_cascade__loan_data",
            "intermediate/int_loan_month_panel", "marts/kpi_portfolio_monthly",
            "metrics/metric_cashflow_projection"} <= assets


def test_raw_datasets_carry_file_hashes_and_contracts(pipeline):
    completes = [e for e in pipeline.events() if e["eventType"] == "COMPLETE" and e["job"]["name"].startswith("raw/")]
    assert len(completes) == 5 * 2 + 1 + 2  # 5 Cascade tables x 2 tapes, 1 collections range, 2 delinquency
    for event in completes:
        _, source, table = event["job"]["name"].split("/")
        (output,) = event["outputs"]
        assert (output["namespace"], output["name"]) == (f"file://{pipeline.data.resolve()}/raw", f"{source}/{table}")
        files = output["facets"]["abaco_files"]["files"]
        assert files and output["outputFacets"]["outputStatistics"]["rowCount"] == sum(f["rows"] for f in files)
        for item in files:
            assert hashlib.sha256((pipeline.data / "raw" / item["key"]).read_bytes()).hexdigest() == item["sha256"]
            assert item["status"] == "accepted"
        contract = output["facets"]["abaco_contract"]
        assert contract["name"] == f"{source}/{table}" and contract["version"].startswith("v")
        assert set(contract["versionsUsed"]) == {f["contract"] for f in files}
        (landing,) = event["inputs"]
        assert landing["namespace"] == f"file://{pipeline.landing.resolve()}"
        assert {f["sha256"] for f in landing["facets"]["abaco_files"]["files"]} == {f["sha256"] for f in files}
        assert any(c["name"] == "contract" and c["passed"] for c in output["facets"]["abaco_checks"]["checks"])
    collections = next(e for e in completes if e["job"]["name"] == "raw/collections/collections")
    assert len(collections["run"]["facets"]["abaco_dagster"]["partitions"]) == 61  # one run for the range
    # each partition's materialization names its own file; the range's lineage gathers all of them
    assert len(collections["outputs"][0]["facets"]["abaco_files"]["files"]) == 61


def test_each_partition_of_a_range_run_records_its_own_delivery(pipeline):
    import dagster as dg

    key = dg.AssetKey(["raw", "collections", "collections"])
    records = pipeline.instance.fetch_materializations(key, limit=100).records
    assert len(records) == 61
    for record in records:
        metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert list(metadata["input_sha256"]) == [record.partition_key]  # its own file, not the range's map
        catalog = json.loads((pipeline.data / "catalog" / "collections" / f"{record.partition_key}.json").read_text())
        table = catalog["versions"][catalog["in_force"]]["tables"]["collections"]
        assert metadata["input_sha256"][record.partition_key] == table["sha256"]
        assert metadata["dagster/row_count"] == table["rows"]
        assert metadata["delivery_status"] == "accepted" and metadata["deliveries"] == 61  # plus the range summary


def test_dbt_models_have_their_upstream_tables_as_inputs(pipeline):
    completes = {e["job"]["name"]: e for e in pipeline.events() if e["eventType"] == "COMPLETE"}
    warehouse = f"duckdb://{pipeline.data.resolve()}/warehouse.duckdb"
    staging = completes["staging/stg_cascade__loan_data"]
    assert [(i["namespace"], i["name"]) for i in staging["inputs"]] == [
        (f"file://{pipeline.data.resolve()}/raw", "cascade/loan_data")]
    assert staging["inputs"][0]["facets"]["version"]["datasetVersion"]
    assert staging["outputs"][0]["namespace"] == warehouse
    mart = completes["marts/kpi_portfolio_monthly"]
    assert mart["outputs"][0]["name"] == "marts.kpi_portfolio_monthly"
    assert "intermediate.int_loan_month_panel" in {i["name"] for i in mart["inputs"]}
    columns = {f["name"]: f for f in mart["outputs"][0]["facets"]["schema"]["fields"]}
    assert columns["opb"]["description"] and columns["opb"]["type"]  # from dbt YAML + the warehouse
    assert mart["run"]["facets"]["abaco_codeRevision"]["kind"] in ("git", "package", "env")
    cashflow = completes["metrics/metric_cashflow_projection"]
    assert {o["name"] for o in cashflow["outputs"]} >= {"metrics.metric_cashflow_projection",
                                                      "metrics.metric_cashflow_assumptions"}


def test_slo_lines_are_in_the_json_log(pipeline):
    lines = pipeline.log_lines()
    finished = [line for line in lines if line.get("event") == "run_finished"]
    assert {line["run_id"] for line in finished} == {run.run_id for run in pipeline.runs}
    assert all(line["status"] == "SUCCESS" and line["request_id"] for line in finished)
    verdicts = [line for line in lines if line.get("event") == "delivery_verdict"]
    assert len(verdicts) == 5 * 2 + 61 + 2
    assert all(line["rows_rejected"] == 0 and len(line["sha256"]) == 64 and line["partition"] for line in verdicts)
    assert any(line.get("event") == "check_evaluated" and line["check_name"] == "reconciles_with_cascade"
               for line in lines)


def test_lineage_walks_a_kpi_back_to_its_files(pipeline):
    from abaco_assets.defs.observability.lineage_command import lineage_report

    report = lineage_report("kpi_portfolio_monthly.opb", pipeline.defs, pipeline.instance, pipeline.data)
    assert report.target == "marts.kpi_portfolio_monthly.opb" and report.column_description
    assert "raw/cascade/loan_data" in report.raw_assets
    transform = next(run for run in pipeline.runs if run.job_name == "transform_job")
    mart = report.step("marts/kpi_portfolio_monthly")
    assert mart.last_run_id == transform.run_id and mart.code_revision
    loan_files = report.raw_files["raw/cascade/loan_data"]
    assert [f.delivery_date for f in loan_files] == ["2026-09-30", "2026-10-31"]
    for item in loan_files:
        assert hashlib.sha256((pipeline.data / "raw" / item.raw_key).read_bytes()).hexdigest() == item.sha256
        assert item.contract.startswith("cascade/loan_data@v") and item.run_id
    text = report.render()
    assert all(f.sha256 in text for files in report.raw_files.values() for f in files)
    assert "raw/cascade/loan_data" in text and transform.run_id in text


def _titles(slack, smtp):
    return ([r.json()["blocks"][0]["text"]["text"] for r in slack.received],
            [str(m["Subject"]).strip().removeprefix("[abaco] ") for m in smtp.messages])


def test_each_alert_kind_fires_once_per_incident(pipeline, alert_env, slack, smtp, monkeypatch):
    import dagster as dg
    import polars as pl

    from abaco_assets.defs.observability import observe_run
    from abaco_assets.defs.quality import freshness

    defs, instance = pipeline.defs, pipeline.instance

    def observe(result):
        observation = observe_run(instance, result.run_id, defs, env=alert_env, log_to_stdout=False)
        assert not observation.errors, observation.errors
        return [a.title for a in observation.alerts_sent]

    def sent_since(count):
        slack_titles, mail_titles = _titles(slack, smtp)
        assert slack_titles == mail_titles
        return slack_titles[count:]

    # 1. blocking check: a restated tape with a renamed header is rejected (one alert, for the broken table)
    tape = pipeline.landing / "cascade" / "2026-10-31"
    original = tape / "Abaco - Loan Tape_Loan Data_Table.csv"
    (tape / "Abaco - Loan Tape_Loan Data_Table (2).csv").write_bytes(
        original.read_bytes().replace(b"Outstanding Loan Value", b"Outstanding Value", 1))
    ingest = defs.resolve_job_def("ingest_cascade_job")
    for attempt in range(2):  # the same bad bytes again: same incident
        result = ingest.execute_in_process(instance=instance, partition_key="2026-10-31", raise_on_error=False,
                                           run_config=QUIET)
        assert not result.success
        titles = observe(result)
        assert titles == (["Blocking check failed: raw/cascade/loan_data [2026-10-31] (contract)"]
                          if attempt == 0 else [])
    assert len(sent_since(0)) == 1

    # 2. reconciliation break: a collections amount that the tape does not have, seen by two runs
    check = dg.AssetCheckKey(dg.AssetKey(["raw", "collections", "collections"]), "reconciles_with_cascade")
    recon = defs.resolve_job_def("transform_job").get_subset(asset_selection=set(), asset_check_selection={check})
    typed = [path for path in sorted((pipeline.data / "typed/collections/collections").glob("2026-*/data.parquet"))
             if pl.read_parquet(path).height]

    def bump(path):
        frame = pl.read_parquet(path)
        frame.with_columns((pl.col("amount") + pl.when(pl.int_range(pl.len()) == 0).then(100).otherwise(0))
                           .alias("amount")).write_parquet(path)
        # changed behind the catalog's back (a restatement would bring a new version): forget which
        # dates reconciled cleanly, so the check compares every date again
        for ledger in (pipeline.data / "catalog").glob("_reconciled_*.json"):
            ledger.unlink()

    bump(typed[3])
    new = [observe(recon.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET))
           for _ in range(2)]
    assert new[0] == [f"Reconciliation break: raw/collections/collections [{typed[3].parent.name}] "
                      f"(reconciles_with_cascade)"] and new[1] == []
    bump(typed[5])  # a different break: a new incident
    (titles,) = [observe(recon.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET))]
    assert len(titles) == 1 and titles[0].startswith("Reconciliation break: raw/collections/collections")
    assert len(sent_since(1)) == 2

    # 3. freshness: on Nov 10 the collections and delinquency files since early November are late
    fixed_now = dt.datetime(2026, 11, 10, 10, 0, tzinfo=ZoneInfo("America/El_Salvador"))

    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed_now.astimezone(tz)

    monkeypatch.setattr(freshness.dt, "datetime", FrozenDatetime)
    freshness_job = defs.resolve_job_def("freshness_job")
    first = observe(freshness_job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET))
    again = observe(freshness_job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET))
    assert sorted(t.split(" [")[0] for t in first) == ["Freshness SLA breach: raw/collections/collections",
                                                        "Freshness SLA breach: raw/delinquency/delinquency"]
    assert again == []
    assert len(sent_since(3)) == 2

    # 4. run failure: no delivery for the date (not a check): one alert per failed run, once
    failed = ingest.execute_in_process(instance=instance, partition_key="2026-10-15", raise_on_error=False,
                                       run_config=QUIET)
    assert observe(failed) == ["Run failed: raw/cascade/* [2026-10-15]"]
    assert observe(failed) == []  # the same run observed again (cli + sensor)
    other = ingest.execute_in_process(instance=instance, partition_key="2026-10-16", raise_on_error=False,
                                      run_config=QUIET)
    assert observe(other) == ["Run failed: raw/cascade/* [2026-10-16]"]
    assert len(sent_since(5)) == 2

    # what was received carries the links
    body = smtp.messages[-1].get_content()
    assert f"Run: https://dagster.example.org/runs/{other.run_id}" in body
    assert "Runbook: https://docs.example.org/runbooks/incident-response.md#run-failure" in body
    assert "No cascade delivery found" in body
    state = json.loads((pipeline.data / "logs/alerts/state.json").read_text())
    assert len(state["incidents"]) == 7


def test_the_sensors_observe_runs_launched_elsewhere(pipeline):
    import dagster as dg

    from abaco_assets.defs.observability.sensors import alert_on_failed_checks, observe_successful_runs

    run = pipeline.runs[-1]
    context = dg.build_run_status_sensor_context(
        sensor_name="observe_successful_runs", dagster_instance=pipeline.instance, dagster_run=run,
        dagster_event=pipeline.instance.all_logs(run.run_id)[-1].dagster_event)
    result = observe_successful_runs(context)
    assert "already observed" in str(result)

    with dg.build_sensor_context(instance=pipeline.instance) as context:
        assert "initialised" in str(alert_on_failed_checks(context))  # starts from now, no replay
        assert "no new check evaluation" in str(alert_on_failed_checks(context))
    with dg.build_sensor_context(instance=pipeline.instance, cursor="{}") as context:
        result = alert_on_failed_checks(context)  # replays the latest executions: incidents already alerted
        assert "runs with failed checks" in str(result) and json.loads(context.cursor)
    state_path = pipeline.data / "logs/alerts/state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        assert all(entry["routes"].get("outbox") == "sent" for entry in state["incidents"].values())
