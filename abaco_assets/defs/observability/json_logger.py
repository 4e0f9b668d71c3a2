"""The JSON-lines log stream of Dagster runs (fields and files: lib/json_logs.py).

Two ways in, same output:

* ``json_logger``: a ``@dg.logger`` for Definitions(loggers=...) and a run's run_config
  (``{"loggers": {"json": {"config": {...}}}}``); Dagster instantiates a logger only when
  the run config names it.
* ``JsonLinesHandler`` in dagster.yaml (``python_logs.dagster_handler_config``): every run of
  the instance, whatever its run config, which suits runs launched from the UI or the daemon.

Dagster's own event log and compute logs are untouched: this is one more consumer.
"""

import logging

import dagster as dg

from abaco_assets.lib.json_logs import JsonLinesHandler, log_file, log_level_from_env, stdout_from_env
from abaco_assets.resources import data_dir_from_env


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, description="Default: ABACO_LOG_LEVEL or INFO."),
        "stdout": dg.Field(bool, is_required=False, description="Echo JSON lines to stdout "
                                                                "(default: ABACO_LOG_STDOUT, on)."),
        "path": dg.Field(str, is_required=False, description="Default: $ABACO_DATA/logs/abaco.jsonl."),
    },
    description="JSON lines (run id, asset key, partition, dataset hashes, request id) to stdout and "
                "$ABACO_DATA/logs/abaco.jsonl, for Loki and the SLO dashboard.",
)
def json_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config or {}
    level = logging.getLevelName(config["log_level"].upper()) if config.get("log_level") else log_level_from_env()
    logger = logging.Logger(f"abaco.dagster.{init_context.run_id or 'run'}", level=level)
    handler = JsonLinesHandler(config.get("path") or log_file(data_dir_from_env()),
                               stdout=config["stdout"] if "stdout" in config else stdout_from_env())
    logger.addHandler(handler)
    return logger


# The loggers to give Definitions: Dagster's console logger stays (cli.py configures its level).
observability_loggers = {"console": dg.colored_console_logger, "json": json_logger}
