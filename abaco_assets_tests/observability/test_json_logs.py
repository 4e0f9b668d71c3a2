"""JSON-lines logs of a Dagster run: run id, asset key, partition, dataset hashes, request id."""

import json
import logging

import dagster as dg

from abaco_assets.defs.observability import observability_loggers
from abaco_assets.lib.json_logs import json_logger, log_event

HASH = "c" * 64


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["2026-10-31"]), key=["raw", "demo", "table"])
def demo_raw(context: dg.AssetExecutionContext):
    context.log.info("validating")
    return dg.MaterializeResult(metadata={"dagster/row_count": 3, "contract": "demo/table@v1",
                                          "input_sha256": dg.MetadataValue.json({"2026-10-31": HASH})})


def test_the_dagster_logger_writes_structured_lines(tmp_path, capsys):
    path = tmp_path / "abaco.jsonl"
    defs = dg.Definitions(assets=[demo_raw], jobs=[dg.define_asset_job("demo_job")], loggers=observability_loggers)
    result = defs.resolve_job_def("demo_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key="2026-10-31", tags={"abaco/request_id": "req-42"},
        run_config={"loggers": {"json": {"config": {"path": str(path), "stdout": True, "log_level": "DEBUG"}},
                                "console": {"config": {"log_level": "CRITICAL"}}}})
    assert result.success
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines and all(line["run_id"] == result.run_id and line["request_id"] == "req-42" for line in lines)
    materialized = [line for line in lines if line.get("dagster_event") == "ASSET_MATERIALIZATION"]
    assert materialized == [{**materialized[0], "asset_key": "raw/demo/table", "partition": "2026-10-31",
                             "dataset_hashes": {"2026-10-31": HASH}, "row_count": 3, "contract": "demo/table@v1"}]
    assert any(line["message"] == "validating" and line["level"] == "INFO" for line in lines)
    assert any(line.get("dagster_event") == "PIPELINE_SUCCESS" for line in lines)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(printed) == len(lines)  # the same lines on stdout (Loki / kubectl logs)


def test_observability_lines_respect_the_level_and_quiet_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABACO_LOG_LEVEL", "WARNING")
    logger = json_logger("abaco.test.levels", tmp_path, stdout=False)
    log_event(logger, "run_finished", "ok", logging.INFO, status="SUCCESS")
    log_event(logger, "run_finished", "failed", logging.ERROR, status="FAILURE", run_id="r1")
    (line,) = [json.loads(x) for x in (tmp_path / "logs" / "abaco.jsonl").read_text().splitlines()]
    assert line["event"] == "run_finished" and line["status"] == "FAILURE" and line["level"] == "ERROR"
    assert capsys.readouterr().out == ""
