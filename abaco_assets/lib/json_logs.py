"""JSON-lines logs that Loki (or any log store) can slice by run, asset, partition and event.

One JSON object per line with flat fields, to stdout and to ``$ABACO_DATA/logs/abaco.jsonl``
(appended under an exclusive lock, so the CLI, sensors and run workers can share the file):

    ts level logger message service run_id job step_key asset_key partition request_id
    event dagster_event ...event fields (check_name, passed, severity, dataset_hashes, row_count,
    status, source, rows_rejected, freshness_lag_hours, ...)

Two producers use this module:

* Dagster's log stream of a run (``defs/observability/json_logger.py``: a ``@dg.logger`` and a
  ``logging.Handler`` for dagster.yaml), fed records that carry ``dagster_meta``;
* ``observe_run``'s summary lines (``event`` = run_finished, check_evaluated, delivery_verdict,
  freshness_evaluated), from which the pipeline SLOs are computed (docs/observability.md).

Level from ``ABACO_LOG_LEVEL`` (default INFO); ``ABACO_LOG_STDOUT=0`` keeps stdout quiet.
No Dagster imports: the Dagster record attributes are read by name.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Mapping

from abaco_assets.lib.storage import append_line

SERVICE = "abaco"
OBSERVABILITY_LOGGER = "abaco.observability"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def log_level_from_env(env: Mapping[str, str] | None = None, default: str = "INFO") -> int:
    env = os.environ if env is None else env
    name = (env.get("ABACO_LOG_LEVEL") or default).upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def stdout_from_env(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("ABACO_LOG_STDOUT", "1").lower() not in ("0", "false", "no")


def log_file(data_dir: Path) -> Path:
    return Path(data_dir) / "logs" / "abaco.jsonl"


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from_tags(tags: Mapping[str, str] | None, run_id: str | None) -> str | None:
    """What ties runs to the request that caused them: the CLI invocation, backfill, or sensor run key."""
    tags = tags or {}
    for key in ("abaco/request_id", "dagster/backfill", "dagster/run_key"):
        if tags.get(key):
            return tags[key]
    return run_id


def partition_from_tags(tags: Mapping[str, str] | None) -> str | None:
    tags = tags or {}
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


def _dagster_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Fields from a record that went through Dagster's log manager (``record.dagster_meta``)."""
    meta = getattr(record, "dagster_meta", None)
    if not isinstance(meta, Mapping):
        return {}
    tags = meta.get("job_tags") or {}
    fields: dict[str, Any] = {
        "run_id": meta.get("run_id"), "job": meta.get("job_name"), "step_key": meta.get("step_key"),
        "message": meta.get("orig_message"), "partition": partition_from_tags(tags),
        "request_id": request_id_from_tags(tags, meta.get("run_id")),
    }
    event = meta.get("dagster_event")
    if event is not None:
        fields.update(_event_fields(event))
    return fields


def _event_fields(event: Any) -> dict[str, Any]:
    """The interesting parts of a DagsterEvent, read by attribute name."""
    fields: dict[str, Any] = {"dagster_event": getattr(event, "event_type_value", None)}
    data = getattr(event, "event_specific_data", None)
    materialization = getattr(data, "materialization", None)
    if materialization is not None:
        fields["asset_key"] = materialization.asset_key.to_user_string()
        fields["partition"] = materialization.partition or None
        metadata = {k: getattr(v, "value", v) for k, v in (materialization.metadata or {}).items()}
        if isinstance(metadata.get("input_sha256"), Mapping):
            fields["dataset_hashes"] = dict(metadata["input_sha256"])
        for key, name in (("dagster/row_count", "row_count"), ("contract", "contract"),
                          ("accepted", "deliveries_accepted"), ("rejected", "deliveries_rejected")):
            if key in metadata:
                fields[name] = metadata[key]
    elif data is not None and hasattr(data, "check_name") and hasattr(data, "passed"):
        fields.update(asset_key=data.asset_key.to_user_string(), check_name=data.check_name,
                      passed=bool(data.passed), severity=getattr(data.severity, "value", str(data.severity)),
                      blocking=bool(getattr(data, "blocking", False)))
        if getattr(data, "partition", None):
            fields["partition"] = data.partition
    elif data is not None and getattr(data, "asset_key", None) is not None:
        fields["asset_key"] = data.asset_key.to_user_string()
    error = getattr(data, "error", None)
    if error is not None:
        fields["error"] = getattr(error, "message", str(error)).strip()[:2000]
    return fields


class JsonFormatter(logging.Formatter):
    """``logging`` record -> one flat JSON object; extra fields come from ``extra={"abaco": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": SERVICE,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in _dagster_fields(record).items() if v is not None})
        extra = getattr(record, "abaco", None)
        if isinstance(extra, Mapping):
            payload.update({k: v for k, v in extra.items() if v is not None})
        for key, value in vars(record).items():  # plain `extra=` keys
            if key not in _STANDARD and key not in ("abaco", "dagster_meta", "dagster_event",
                                                    "dagster_event_batch_metadata") and key not in payload:
                payload[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class JsonLinesHandler(logging.Handler):
    """Append JSON lines to ``path`` under an exclusive lock, and optionally echo them to stdout.

    Usable from dagster.yaml (``python_logs.dagster_handler_config.handlers``): ``path`` defaults
    to ``$ABACO_DATA/logs/abaco.jsonl`` resolved when the first record arrives.
    """

    def __init__(self, path: str | Path | None = None, stdout: bool | None = None, level: int | str = logging.NOTSET):
        super().__init__(level=level)
        self._path = Path(path) if path else None
        self.stdout = stdout_from_env() if stdout is None else stdout
        self.setFormatter(JsonFormatter())

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = log_file(Path(os.environ.get("ABACO_DATA") or "./data").resolve())
        return self._path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_line(self.path, line.encode("utf-8"))
            if self.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
        except Exception:
            self.handleError(record)


def json_logger(name: str, data_dir: Path, *, level: int | None = None, stdout: bool | None = None) -> logging.Logger:
    """A logger writing JSON lines for ``data_dir``; idempotent (one handler per file and stdout choice)."""
    logger = logging.getLogger(name)
    logger.setLevel(log_level_from_env() if level is None else level)
    logger.propagate = False
    path = log_file(data_dir).resolve()
    stdout = stdout_from_env() if stdout is None else stdout
    for handler in list(logger.handlers):
        if isinstance(handler, JsonLinesHandler):
            if handler.path == path and handler.stdout == stdout:
                return logger
            logger.removeHandler(handler)
    logger.addHandler(JsonLinesHandler(path, stdout=stdout))
    return logger


def log_event(logger: logging.Logger, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: ``event`` names what happened (the SLO queries select on it)."""
    logger.log(level, message, extra={"abaco": {"event": event, **fields}})
