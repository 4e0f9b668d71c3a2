"""After a run: OpenLineage events, alerts and SLO log lines, from the run's Dagster event log.

``observe_run(instance, run_id, defs)`` is the one entry point, called by ``abaco run`` after
each in-process run and by the run-status sensors for runs launched from the UI or the daemon.
It is idempotent: the lineage events and SLO lines of a run are written once (a record under
``$ABACO_DATA/logs/lineage/runs/<run_id>.json`` marks the run as observed, and is what
``abaco lineage`` reads to tell which code revision a run had); alerts deduplicate themselves
per incident (lib/alerts.py).  Observability never fails a run or the CLI: errors are
collected in the returned ``Observation`` and logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
from dagster._core.events import DagsterEventType

from abaco_assets.lib import alerts as alerting
from abaco_assets.lib.json_logs import OBSERVABILITY_LOGGER, json_logger, log_event, partition_from_tags, \
    request_id_from_tags
from abaco_assets.lib.lineage import AssetExecution, Column, DatasetRef, build_events, code_revision, emit, \
    fingerprint, landing_dataset, lineage_client, raw_dataset, warehouse_dataset
from abaco_assets.resources import data_dir_from_env, landing_from_env

RECONCILIATION_CHECK = "reconciles_with_cascade"
FRESHNESS_CHECK = "freshness_sla"
VOLATILE_METADATA = {"Execution Duration", "invocation_id", "artifact", "diff_artifact", "evaluated_at"}
_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# What the event log says


@dataclass
class StepFacts:
    key: str
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    status: str | None = None  # SUCCESS | FAILURE | SKIPPED
    error: str | None = None
    stack: str | None = None


@dataclass
class MaterializationFacts:
    asset_key: dg.AssetKey
    step_key: str | None
    first_at: dt.datetime
    last_at: dt.datetime
    partitions: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckFacts:
    asset_key: dg.AssetKey
    check_name: str
    passed: bool
    severity: str
    blocking: bool
    description: str | None
    metadata: dict[str, Any]
    partition: str | None
    step_key: str | None
    at: dt.datetime


@dataclass
class RunFacts:
    run: dg.DagsterRun
    steps: dict[str, StepFacts] = field(default_factory=dict)
    materializations: dict[tuple[str | None, dg.AssetKey], MaterializationFacts] = field(default_factory=dict)
    failed_to_materialize: dict[dg.AssetKey, str | None] = field(default_factory=dict)
    planned: set[dg.AssetKey] = field(default_factory=set)
    checks: list[CheckFacts] = field(default_factory=list)
    run_error: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> str:
        return self.run.status.value

    @property
    def partition(self) -> str | None:
        return partition_from_tags(self.run.tags)


def _at(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value) if isinstance(value, dg.MetadataValue) else value


def _error_text(error: Any) -> tuple[str | None, str | None]:
    """(deepest cause's message, full text) of a SerializableErrorInfo."""
    if error is None:
        return None, None
    deepest = error
    while getattr(deepest, "cause", None) is not None:
        deepest = deepest.cause
    return (deepest.message or error.message or "").strip()[:1000], error.to_string()[:8000]


def read_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunFacts:
    facts = RunFacts(run)
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind, at, data = event.event_type, _at(entry.timestamp), event.event_specific_data
        if kind == DagsterEventType.RUN_START:
            facts.started_at = at
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED):
            facts.ended_at = at
            if kind == DagsterEventType.RUN_FAILURE:
                facts.run_error = _error_text(getattr(data, "error", None))[0] or event.message
        elif kind == DagsterEventType.STEP_START:
            facts.steps.setdefault(event.step_key, StepFacts(event.step_key)).started_at = at
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED):
            step = facts.steps.setdefault(event.step_key, StepFacts(event.step_key))
            step.ended_at, step.status = at, kind.value.removeprefix("STEP_")
            if kind == DagsterEventType.STEP_FAILURE:
                step.error, step.stack = _error_text(getattr(data, "error", None))
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            facts.planned.add(data.asset_key)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = data.materialization
            key = (event.step_key, materialization.asset_key)
            found = facts.materializations.get(key)
            if found is None:
                found = facts.materializations[key] = MaterializationFacts(materialization.asset_key, event.step_key,
                                                                           at, at)
            found.last_at = at
            if materialization.partition and materialization.partition not in found.partitions:
                found.partitions.append(materialization.partition)
            metadata = {k: _plain(v) for k, v in (materialization.metadata or {}).items()}
            if materialization.partition:
                # a range run's partitions each name their own input file and rows: the run's are all of them
                hashes, rows = metadata.pop("input_sha256", None), metadata.pop("dagster/row_count", None)
                if isinstance(hashes, Mapping):
                    found.metadata["input_sha256"] = {**found.metadata.get("input_sha256", {}), **hashes}
                if isinstance(rows, int):
                    found.metadata["dagster/row_count"] = found.metadata.get("dagster/row_count", 0) + rows
            found.metadata.update(metadata)
        elif kind == DagsterEventType.ASSET_FAILED_TO_MATERIALIZE:
            facts.failed_to_materialize[data.asset_key] = getattr(data, "partition", None)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            facts.checks.append(CheckFacts(
                data.asset_key, data.check_name, bool(data.passed), data.severity.value, bool(data.blocking),
                data.description, {k: _plain(v) for k, v in (data.metadata or {}).items()}, data.partition,
                event.step_key, at))
    return facts


# ---------------------------------------------------------------------------------------------
# Datasets of an asset


class Catalog:
    """The delivery catalog ($ABACO_DATA/catalog/<source>/<date>.json), read once per observation."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "catalog"
        self._by_source: dict[str, dict[str, dict[str, Any]]] = {}

    def source(self, source: str) -> dict[str, dict[str, Any]]:
        if source not in self._by_source:
            self._by_source[source] = {path.stem: json.loads(path.read_text())
                                       for path in sorted((self.root / source).glob("*.json"))}
        return self._by_source[source]

    def file(self, source: str, table: str, day: str, sha256: str) -> dict[str, Any] | None:
        """The version record of one table's file, by content hash."""
        for version_id, record in self.source(source).get(day, {}).get("versions", {}).items():
            table_record = record.get("tables", {}).get(table)
            if table_record and table_record.get("sha256") == sha256:
                return {"delivery_date": day, "sha256": sha256, "raw_key": table_record.get("raw_key"),
                        "landing_key": table_record.get("landing_key"), "version_id": version_id,
                        "status": record.get("status"), "contract": table_record.get("contract"),
                        "rows": table_record.get("rows"), "run_id": record.get("run_id"),
                        "in_force": self.source(source)[day].get("in_force") == version_id}
        return None

    def in_force(self, source: str, table: str) -> list[dict[str, Any]]:
        """Every delivery of ``source`` with a version in force, and ``table``'s file in it (oldest first)."""
        files = []
        for day, catalog in self.source(source).items():
            version_id = catalog.get("in_force")
            record = catalog.get("versions", {}).get(version_id) if version_id else None
            table_record = (record or {}).get("tables", {}).get(table)
            if table_record:
                files.append({"delivery_date": day, "sha256": table_record.get("sha256"),
                              "raw_key": table_record.get("raw_key"), "landing_key": table_record.get("landing_key"),
                              "version_id": version_id, "status": record.get("status"),
                              "contract": table_record.get("contract"), "rows": table_record.get("rows"),
                              "run_id": record.get("run_id"), "processed_at": record.get("processed_at")})
        return files


class DatasetNamer:
    """Asset key -> OpenLineage dataset, with the schema from the asset's column metadata."""

    def __init__(self, asset_graph, data_dir: Path, env: Mapping[str, str], catalog: Catalog):
        self.graph, self.data_dir, self.env, self.catalog = asset_graph, Path(data_dir), env, catalog
        self._warehouse_columns: dict[tuple[str, str], list[Column]] | None = None

    def node(self, key: dg.AssetKey):
        return self.graph.get(key) if self.graph.has(key) else None

    def spec_metadata(self, key: dg.AssetKey) -> dict[str, Any]:
        node = self.node(key)
        return {k: _plain(v) for k, v in (node.metadata if node else {}).items()}

    def table_of(self, key: dg.AssetKey, metadata: Mapping[str, Any] | None = None) -> tuple[str, str]:
        table_name = (metadata or {}).get("dagster/table_name") or self.spec_metadata(key).get("dagster/table_name")
        if isinstance(table_name, str) and table_name.count(".") >= 1:
            parts = table_name.split(".")
            return parts[-2], parts[-1]
        path = key.path
        return (path[0], path[-1]) if len(path) > 1 else ("main", path[0])

    def columns(self, key: dg.AssetKey) -> list[Column]:
        schema = self.spec_metadata(key).get("dagster/column_schema")
        declared = [Column(c.name, None if c.type in ("?", "", None) else c.type, c.description)
                    for c in getattr(schema, "columns", [])]
        if key.path[0] == "raw":
            return declared
        found = self.warehouse_columns().get(self.table_of(key), [])
        if not declared:
            return found
        types = {c.name: c.type for c in found}
        return [Column(c.name, c.type or types.get(c.name), c.description) for c in declared]

    def warehouse_columns(self) -> dict[tuple[str, str], list[Column]]:
        """Column types as the DuckDB warehouse has them (dbt YAML leaves most types unset)."""
        if self._warehouse_columns is None:
            self._warehouse_columns = {}
            path = self.data_dir / "warehouse.duckdb"
            if self.env.get("ABACO_DBT_TARGET", "local") in ("local", "duckdb") and path.exists():
                try:
                    import duckdb

                    with duckdb.connect(str(path), read_only=True) as con:
                        rows = con.execute("select table_schema, table_name, column_name, data_type from "
                                           "information_schema.columns order by table_schema, table_name, "
                                           "ordinal_position").fetchall()
                    for schema, table, column, data_type in rows:
                        self._warehouse_columns.setdefault((schema, table), []).append(Column(column, data_type))
                except Exception as error:  # a writer holding the lock: types stay unknown
                    _log.debug("warehouse columns unavailable: %s", error)
        return self._warehouse_columns

    def dataset(self, key: dg.AssetKey, *, with_version: bool = False) -> DatasetRef:
        if key.path[0] == "raw" and len(key.path) == 3:
            namespace, name = raw_dataset(self.data_dir, key.path[1], key.path[2])
            ref = DatasetRef(namespace, name, columns=self.columns(key),
                             contract=self.spec_metadata(key).get("contract"))
            if with_version:  # as an input: the files in force now, which is what the consumer read
                in_force = self.catalog.in_force(key.path[1], key.path[2])
                ref.version = fingerprint(f"{f['delivery_date']}={f['sha256']}" for f in in_force) if in_force else None
                ref.contracts_used = [f["contract"] for f in in_force if f.get("contract")]
            return ref
        schema, table = self.table_of(key)
        namespace, name = warehouse_dataset(self.data_dir, schema, table, dict(self.env))
        return DatasetRef(namespace, name, columns=self.columns(key))


def _raw_files(catalog: Catalog, key: dg.AssetKey, hashes: Mapping[str, str]) -> list[dict[str, Any]]:
    source, table = key.path[1], key.path[2]
    files = []
    for day, sha in sorted(hashes.items()):
        found = catalog.file(source, table, day, sha) or {"delivery_date": day, "sha256": sha}
        files.append(found)
    return files


def build_executions(facts: RunFacts, defs: dg.Definitions, data_dir: Path, env: Mapping[str, str],
                     landing: Path | None = None) -> list[AssetExecution]:
    """One AssetExecution per asset materialized (or failed) in the run, in the order they started."""
    graph = defs.resolve_asset_graph()
    catalog = Catalog(data_dir)
    namer = DatasetNamer(graph, data_dir, env, catalog)
    landing = landing or landing_from_env()
    checks_by_asset: dict[dg.AssetKey, list[CheckFacts]] = defaultdict(list)
    for check in facts.checks:
        checks_by_asset[check.asset_key].append(check)
    url = alerting.run_url(facts.run_id, env)

    entries: list[tuple[str | None, dg.AssetKey, MaterializationFacts | None]] = [
        (step_key, key, found) for (step_key, key), found in facts.materializations.items()]
    materialized = {key for _, key, _ in entries}
    failed_steps = {k for k, s in facts.steps.items() if s.status == "FAILURE"}
    for key in sorted(set(facts.failed_to_materialize) | facts.planned, key=lambda k: k.to_user_string()):
        if key in materialized or not graph.has(key):
            continue
        step_key = graph.get(key).assets_def.node_def.name
        if step_key in failed_steps or key in facts.failed_to_materialize:
            entries.append((step_key, key, None))

    executions = []
    for step_key, key, found in entries:
        step = facts.steps.get(step_key or "") or StepFacts(step_key or "")
        started = step.started_at or (found.first_at if found else None) or facts.started_at or dt.datetime.now(
            dt.timezone.utc)
        blocking_failures = [c for c in checks_by_asset.get(key, [])
                             if not c.passed and c.blocking and c.severity == "ERROR"]
        if found is None:
            status = "FAIL" if step.status == "FAILURE" or facts.status == "FAILURE" else "ABORT"
            error = step.error or facts.run_error or "the asset was not materialized"
            ended = step.ended_at or facts.ended_at or started
        elif blocking_failures:
            status = "FAIL"
            first = blocking_failures[0]
            error = f"blocking check {first.check_name} failed: {first.description or 'see the check metadata'}"
            ended = max(found.last_at, first.at)
        else:
            status, error, ended = "COMPLETE", None, found.last_at
        metadata = found.metadata if found else {}
        output = namer.dataset(key)
        output.row_count = metadata.get("dagster/row_count")
        output.checks = [{"name": c.check_name, "passed": c.passed, "severity": c.severity, "blocking": c.blocking,
                          "description": (c.description or None) and c.description[:500]}
                         for c in checks_by_asset.get(key, [])]
        outputs = [output]
        inputs: list[DatasetRef] = []
        if key.path[0] == "raw" and len(key.path) == 3:
            output.contract = metadata.get("contract") or output.contract
            hashes = metadata.get("input_sha256") or {}
            files = _raw_files(catalog, key, hashes) if isinstance(hashes, Mapping) else []
            output.files = [{**f, "key": f.get("raw_key")} for f in files]
            output.contracts_used = [f["contract"] for f in files if f.get("contract")]
            namespace, name = landing_dataset(landing, key.path[1], key.path[2])
            inputs.append(DatasetRef(namespace, name, files=[{**f, "key": f.get("landing_key")} for f in files]))
        else:
            parents = graph.get(key).parent_keys if graph.has(key) else set()
            inputs = [namer.dataset(parent, with_version=True) for parent in sorted(parents, key=lambda k: k.to_user_string())]
            schema, own_table = namer.table_of(key, metadata)
            for meta_key, value in metadata.items():  # extra tables a Python metric writes: "<table>_rows"
                if meta_key.endswith("_rows") and meta_key[:-5] != own_table and isinstance(value, int):
                    namespace, name = warehouse_dataset(data_dir, schema, meta_key[:-5], dict(env))
                    outputs.append(DatasetRef(namespace, name, row_count=value,
                                              columns=namer.warehouse_columns().get((schema, meta_key[:-5]), [])))
        partitions = list(found.partitions) if found and found.partitions else (
            [facts.failed_to_materialize[key]] if facts.failed_to_materialize.get(key) else [])
        executions.append(AssetExecution(
            asset_key=key.to_user_string(), dagster_run_id=facts.run_id, dagster_job=facts.run.job_name,
            step_key=step_key, started_at=started, ended_at=ended, status=status, inputs=inputs, outputs=outputs,
            partitions=sorted(partitions), error=error, stack_trace=step.stack if found is None else None,
            run_url=url))
    executions.sort(key=lambda e: (e.started_at, e.ended_at, e.asset_key))
    return executions


def ordered_events(executions: list[AssetExecution], revision: dict[str, Any]) -> list:
    """All START and final events of a run in time order (a START always precedes its own end)."""
    timeline = []
    for index, execution in enumerate(executions):
        start, final = build_events(execution, revision)
        timeline.append((execution.started_at, 0, index, start))
        timeline.append((max(execution.ended_at, execution.started_at), 1, index, final))
    timeline.sort(key=lambda item: item[:3])
    return [event for *_, event in timeline]


# ---------------------------------------------------------------------------------------------
# Alerts


def _read_json(path: Any) -> Any:
    try:
        return json.loads(Path(str(path)).read_text())
    except (OSError, ValueError, TypeError):
        return None


def _stable_metadata(check: CheckFacts, run_id: str) -> dict[str, Any]:
    stable = {}
    for key, value in check.metadata.items():
        if key in VOLATILE_METADATA:
            continue
        text = json.dumps(value, sort_keys=True, default=str).replace(run_id, "<run>")
        stable[key] = text
    return stable


def _date_span(days: list[str]) -> str | None:
    days = sorted(set(d for d in days if d))
    if not days:
        return None
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


def _strip_exception_class(message: str) -> str:
    """``dagster._core.definitions.events.Failure: No delivery`` -> ``No delivery``."""
    return re.sub(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Failure): ", "", message.strip())


def _asset_label(assets: list[str], failed: list[StepFacts], job: str) -> str:
    """One asset, ``raw/cascade/*`` for a multi-asset step, else the failed step (or job) name."""
    if len(assets) == 1:
        return assets[0]
    prefix = os.path.commonprefix([a.split("/") for a in assets]) if assets else []
    if prefix:
        return "/".join(prefix) + "/*"
    return failed[0].key if failed else job


def _contract_rejections(check: CheckFacts) -> list[Mapping[str, Any]]:
    rejected = check.metadata.get("rejected")
    return [r for r in rejected if isinstance(r, Mapping)] if isinstance(rejected, list) else []


def _rejected_with_a_sibling(checks: list[CheckFacts]) -> list[CheckFacts]:
    """Failed ``contract`` checks whose own file had no violation, when a sibling's file had some.

    A delivery is all-or-nothing: one bad table rejects every table of the tape.  The alert is
    about the table that broke its contract, not five alerts for one bad file.
    """
    failed = [c for c in checks if c.check_name == "contract" and not c.passed]
    primary = [c for c in failed if any(r.get("violation_counts") for r in _contract_rejections(c))]
    return [c for c in failed if c not in primary] if primary else failed[1:]


def alerts_for_run(facts: RunFacts, defs: dg.Definitions) -> list[alerting.Alert]:
    found: list[alerting.Alert] = []
    explained_failure = False
    job = facts.run.job_name
    secondary = {id(c) for c in _rejected_with_a_sibling(facts.checks)}
    for check in facts.checks:
        if check.passed:
            continue
        if id(check) in secondary:  # a Cascade table rejected only because another table of its tape failed
            explained_failure = True
            continue
        asset = check.asset_key.to_user_string()
        if check.check_name == RECONCILIATION_CHECK:
            artifact = _read_json(check.metadata.get("diff_artifact")) or {}
            breaks = artifact.get("breaks") or []
            fingerprint_basis = breaks or [check.description, check.metadata.get("breaks")]
            details = [check.description or "reconciliation failed"]
            details += [", ".join(f"{k}={v}" for k, v in row.items()) for row in breaks[:5]]
            if len(breaks) > 5:
                details.append(f"... {len(breaks) - 5} more breaks in {check.metadata.get('diff_artifact')}")
            elif check.metadata.get("diff_artifact"):
                details.append(f"diff: {check.metadata.get('diff_artifact')}")
            found.append(alerting.Alert(
                alerting.RECONCILIATION_BREAK, asset, _date_span([str(r.get("date")) for r in breaks]),
                check.description or f"{asset} does not reconcile with the Cascade tape", facts.run_id,
                alerting.fingerprint_of(fingerprint_basis), details, job=job, check=check.check_name))
            explained_failure |= check.severity == "ERROR"
        elif check.check_name == FRESHNESS_CHECK:
            artifact = _read_json(check.metadata.get("artifact")) or {}
            breaches = artifact.get("breaches") or [
                {"delivery_date": m.group(1), "message": message}
                for message in (check.metadata.get("late_deliveries") or [])
                for m in [re.search(r"for (\d{4}-\d{2}-\d{2})", str(message))] if m]
            breaches = sorted((b for b in breaches if b.get("delivery_date")), key=lambda b: b["delivery_date"])
            if breaches:
                # One incident per outage: identified by the oldest delivery still missing, so a feed that
                # stays down does not alert every evaluation, and a new gap (or a new outage) does.
                oldest = breaches[0]
                span = _date_span([b["delivery_date"] for b in breaches])
                details = [f"{len(breaches)} deliveries late: {span}", f"SLA: {check.metadata.get('sla')}"]
                details += [b.get("message") or b["delivery_date"] for b in breaches[-3:]]
                found.append(alerting.Alert(
                    alerting.FRESHNESS_BREACH, asset, oldest["delivery_date"],
                    oldest.get("message") or f"the {oldest['delivery_date']} delivery is late", facts.run_id,
                    alerting.fingerprint_of(["late-since", oldest["delivery_date"]]), details, job=job,
                    check=check.check_name))
        elif check.blocking and check.severity == "ERROR":
            rejected = check.metadata.get("rejected") if isinstance(check.metadata.get("rejected"), list) else []
            partition = _date_span([str(r.get("date")) for r in rejected if isinstance(r, Mapping)]) or \
                check.partition or facts.partition
            details = [str(r.get("message")) for r in rejected if isinstance(r, Mapping) and r.get("message")][:5]
            quarantined = [str(r.get("quarantine")) for r in rejected if isinstance(r, Mapping) and r.get("quarantine")]
            if quarantined:
                details.append("quarantined: " + ", ".join(quarantined[:3]))
            summary = (details[0] if details else None) or check.description or f"check {check.check_name} failed"
            found.append(alerting.Alert(
                alerting.BLOCKING_CHECK, asset, partition, summary, facts.run_id,
                alerting.fingerprint_of([check.description, _stable_metadata(check, facts.run_id)]),
                details, job=job, check=check.check_name))
            explained_failure = True
    if facts.status == "FAILURE" and not explained_failure:
        failed = [s for s in facts.steps.values() if s.status == "FAILURE"]
        graph = defs.resolve_asset_graph()
        assets = sorted({node.key.to_user_string() for node in graph.asset_nodes
                         if node.assets_def.node_def.name in {s.key for s in failed}})
        summary = _strip_exception_class((failed[0].error if failed else None) or facts.run_error
                                         or f"run of {job} failed")
        details = [f"failed step {s.key}: {s.error}" for s in failed[:5]]
        found.append(alerting.Alert(alerting.RUN_FAILURE, _asset_label(assets, failed, job), facts.partition,
                                    summary, facts.run_id,
                                    facts.run_id, details, job=job))
    return found


# ---------------------------------------------------------------------------------------------
# SLO log lines


def _slo_lines(facts: RunFacts, data_dir: Path, logger: logging.Logger) -> None:
    base = {"run_id": facts.run_id, "job": facts.run.job_name,
            "request_id": request_id_from_tags(facts.run.tags, facts.run_id),
            "trigger": facts.run.tags.get("abaco/trigger") or facts.run.tags.get("dagster/sensor_name")}
    duration = ((facts.ended_at - facts.started_at).total_seconds()
                if facts.started_at and facts.ended_at else None)
    level = logging.INFO if facts.status == "SUCCESS" else logging.ERROR
    log_event(logger, "run_finished", f"run {facts.run_id} of {facts.run.job_name}: {facts.status}", level,
              status=facts.status, duration_s=duration, partition=facts.partition,
              failed_steps=[k for k, s in facts.steps.items() if s.status == "FAILURE"] or None, **base)
    for check in facts.checks:
        log_event(logger, "check_evaluated",
                  f"check {check.asset_key.to_user_string()}:{check.check_name} "
                  f"{'passed' if check.passed else 'FAILED'}",
                  logging.INFO if check.passed else logging.WARNING,
                  asset_key=check.asset_key.to_user_string(), check_name=check.check_name, passed=check.passed,
                  severity=check.severity, blocking=check.blocking, partition=check.partition, **base)
        if check.check_name == FRESHNESS_CHECK:
            artifact = _read_json(check.metadata.get("artifact")) or {}
            lag = max((float(b.get("hours_late") or 0) for b in artifact.get("breaches") or []), default=0.0)
            log_event(logger, "freshness_evaluated", f"freshness of {check.asset_key.to_user_string()}: "
                      f"{'on time' if check.passed else f'{lag:.1f} h late'}",
                      source=check.asset_key.path[1] if len(check.asset_key.path) > 1 else None,
                      asset_key=check.asset_key.to_user_string(), freshness_lag_hours=round(lag, 2),
                      late_deliveries=len(artifact.get("breaches") or []), passed=check.passed, **base)
    days = sorted({p for (_, key), m in facts.materializations.items() if key.path[0] == "raw" for p in m.partitions})
    seen = set()
    for day in days:
        artifact = _read_json(data_dir / "logs" / "runs" / day / facts.run_id / "validation.json") or {}
        for delivery in artifact.get("deliveries") or []:
            for table, record in (delivery.get("tables") or {}).items():
                marker = (delivery.get("source"), table, delivery.get("delivery_date"), record.get("sha256"))
                if marker in seen:
                    continue
                seen.add(marker)
                accepted = delivery.get("status") == "accepted"
                rows = int(record.get("rows") or 0)
                log_event(logger, "delivery_verdict",
                          f"{delivery.get('source')}/{table} {delivery.get('delivery_date')}: {delivery.get('status')}",
                          logging.INFO if accepted else logging.WARNING,
                          source=delivery.get("source"), table=table, asset_key=f"raw/{delivery.get('source')}/{table}",
                          partition=delivery.get("delivery_date"), status=delivery.get("status"), rows=rows,
                          rows_accepted=rows if accepted else 0, rows_rejected=0 if accepted else rows,
                          sha256=record.get("sha256"), dataset_hashes={delivery.get("delivery_date"): record.get("sha256")},
                          contract=record.get("contract"), violation_counts=record.get("violation_counts") or None,
                          **base)


# ---------------------------------------------------------------------------------------------
# The entry point


@dataclass
class Observation:
    run_id: str
    status: str
    lineage_events: int = 0
    already_observed: bool = False
    alerts: list[alerting.Dispatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def alerts_sent(self) -> list[alerting.Alert]:
        return [d.alert for d in self.alerts if d.new]


def runs_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "logs" / "lineage" / "runs"


@contextlib.contextmanager
def _run_lock(data_dir: Path, run_id: str) -> Iterator[Path]:
    folder = runs_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder / f"{run_id}.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def observe_run(instance: dg.DagsterInstance, run_id: str, defs: dg.Definitions, *,
                data_dir: Path | None = None, env: Mapping[str, str] | None = None,
                log_to_stdout: bool | None = None, alerts: bool = True) -> Observation:
    """Emit the run's lineage (once), raise its alerts (once per incident), write its SLO lines (once)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(data_dir) if data_dir else data_dir_from_env()
    logger = json_logger(OBSERVABILITY_LOGGER, data_dir, stdout=log_to_stdout)
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"no run {run_id} in the Dagster instance at {instance.root_directory}")
    facts = read_run(instance, run)
    observation = Observation(run_id, facts.status)
    if run.is_finished:
        with _run_lock(data_dir, run_id) as record_path:
            if record_path.exists():
                observation.already_observed = True
            else:
                revision = code_revision()
                executions: list[AssetExecution] = []
                try:
                    executions = build_executions(facts, defs, data_dir, env)
                    events = ordered_events(executions, revision)
                    client = lineage_client(data_dir, env)
                    observation.lineage_events = emit(client, events)
                    client.close(timeout=10)
                except Exception as error:
                    observation.errors.append(f"lineage: {type(error).__name__}: {error}")
                    logger.exception("could not emit the lineage of run %s", run_id,
                                     extra={"abaco": {"event": "observability_error", "run_id": run_id}})
                try:
                    _slo_lines(facts, data_dir, logger)
                except Exception as error:
                    observation.errors.append(f"slo logs: {type(error).__name__}: {error}")
                    logger.exception("could not write the SLO lines of run %s", run_id)
                if not any(e.startswith("lineage") for e in observation.errors):
                    record_path.write_text(json.dumps({
                        "dagster_run_id": run_id, "job": run.job_name, "status": facts.status,
                        "observed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                        "started_at": facts.started_at.isoformat() if facts.started_at else None,
                        "ended_at": facts.ended_at.isoformat() if facts.ended_at else None,
                        "code_revision": revision, "lineage_events": observation.lineage_events,
                        "assets": {e.asset_key: {"lineage_run_id": e.lineage_run_id, "status": e.status}
                                   for e in executions},
                    }, indent=1))
    if alerts:
        try:
            for alert in alerts_for_run(facts, defs):
                dispatch = alerting.raise_alert(alert, data_dir, env=env)
                observation.alerts.append(dispatch)
                failed_routes = {k: v for k, v in dispatch.delivered.items() if v != "sent"}
                log_event(logger, "alert", f"{'ALERT' if dispatch.new else 'alert (already raised)'}: {alert.title}",
                          logging.ERROR if dispatch.new else logging.INFO, alert_kind=alert.kind,
                          alert_id=alert.alert_id, asset_key=alert.asset, partition=alert.partition,
                          run_id=run_id, new_incident=dispatch.new, routes=dispatch.delivered or None)
                if failed_routes:
                    observation.errors.append(f"alert {alert.alert_id}: {failed_routes}")
        except Exception as error:
            observation.errors.append(f"alerts: {type(error).__name__}: {error}")
            logger.exception("could not raise the alerts of run %s", run_id)
    return observation

