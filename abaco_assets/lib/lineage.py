"""OpenLineage events for asset executions, built with openlineage-python's classes.

One OpenLineage *run* per asset per Dagster run: job = the asset key (namespace
``abaco``), a run id of its own, and a ParentRunFacet pointing at the Dagster run
(job = the Dagster job name), so Marquez/OpenMetadata show both the asset graph
and which Dagster run produced each version.  An auditor reads from the events:
the input file hashes, the contract versions, the row counts and the code revision.

Dataset naming (documented in docs/observability.md):

* landing files   namespace ``file://<ABACO_LANDING>``          name ``<source>/<table>``
* raw files       namespace ``file://<ABACO_DATA>/raw``          name ``<source>/<table>``
* warehouse       namespace ``duckdb://<ABACO_DATA>/warehouse.duckdb`` name ``<schema>.<table>``
  (BigQuery: ``bigquery`` + ``<project>.<schema>.<table>``; Snowflake:
  ``snowflake://<account>`` + ``<database>.<schema>.<table>``, OpenLineage's conventions)

Custom facets carry the ``abaco_`` prefix; their JSON schemas are in
docs/openlineage/facets/ and their ``_schemaURL`` is the schema's ``$id``.

Transport by configuration: ``OPENLINEAGE_URL`` (+ ``OPENLINEAGE_API_KEY``,
``OPENLINEAGE_ENDPOINT``) selects the HTTP transport; otherwise events are appended,
one JSON document per line, to ``$ABACO_DATA/logs/lineage/events.jsonl`` under an
exclusive file lock (several processes may emit at once).

No Dagster imports: the Dagster side (defs/observability) turns the event log of a
run into :class:`AssetExecution` values.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.uuid import generate_static_uuid

from abaco_assets.lib.storage import append_line

NAMESPACE = "abaco"
PRODUCER = "urn:abaco:abaco-assets"
FACET_SCHEMA_PREFIX = "urn:abaco:openlineage:facet"
REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "abaco-assets"


def facet_schema_id(name: str, version: str = "1-0-0") -> str:
    return f"{FACET_SCHEMA_PREFIX}:{name}:{version}"


class _AbacoFacet:
    """Our facets' schemaURL: the facet's own name in our schema document."""

    @classmethod
    def _get_schema(cls) -> str:
        return facet_schema_id(cls.__name__) + f"#/$defs/{cls.__name__}"


# ---------------------------------------------------------------------------------------------
# Custom facets (schemas: docs/openlineage/facets/<Name>.json)


@attr.define
class AbacoFile:
    delivery_date: str
    sha256: str
    key: str | None = attr.field(default=None)
    """Where the bytes are: the raw-zone key (raw dataset) or the landing key (landing dataset)."""
    version_id: str | None = attr.field(default=None)
    status: str | None = attr.field(default=None)
    contract: str | None = attr.field(default=None)
    rows: int | None = attr.field(default=None)


@attr.define
class AbacoFilesDatasetFacet(_AbacoFacet, DatasetFacet):
    """The files (by content hash) behind a file dataset in this run: one per delivery date."""

    files: list[AbacoFile] = attr.field(factory=list)


@attr.define
class AbacoContractDatasetFacet(_AbacoFacet, DatasetFacet):
    """The feed contract a raw dataset is validated against: ``cascade/loan_data`` ``v2``."""

    name: str
    version: str
    """The version the files of this run were validated with (the header picks it); when they used
    several, the newest of them."""
    declaredVersion: str | None = attr.field(default=None)  # noqa: N815  (the newest the asset declares)
    versionsUsed: list[str] = attr.field(factory=list)  # noqa: N815  (every version id used, e.g. cascade/loan_data@v1)


@attr.define
class AbacoCheckResult:
    name: str
    passed: bool
    severity: str
    blocking: bool = attr.field(default=False)
    description: str | None = attr.field(default=None)


@attr.define
class AbacoChecksDatasetFacet(_AbacoFacet, DatasetFacet):
    """Dagster asset checks evaluated on this dataset in the run (contracts, dbt tests, reconciliations)."""

    checks: list[AbacoCheckResult] = attr.field(factory=list)


@attr.define
class AbacoCodeRevisionRunFacet(_AbacoFacet, RunFacet):
    """The code that ran: a git SHA in a checkout, else the installed package version."""

    revision: str
    kind: str  # git | package | env
    packageVersion: str | None = attr.field(default=None)  # noqa: N815
    dirty: bool | None = attr.field(default=None)


@attr.define
class AbacoDagsterRunFacet(_AbacoFacet, RunFacet):
    """Where the asset ran in Dagster: run, job, step and partitions (a range run lists each)."""

    runId: str  # noqa: N815
    jobName: str  # noqa: N815
    stepKey: str | None = attr.field(default=None)  # noqa: N815
    partitions: list[str] = attr.field(factory=list)
    runUrl: str | None = attr.field(default=None)  # noqa: N815


CUSTOM_FACETS = (AbacoFilesDatasetFacet, AbacoContractDatasetFacet, AbacoChecksDatasetFacet,
                 AbacoCodeRevisionRunFacet, AbacoDagsterRunFacet)


# ---------------------------------------------------------------------------------------------
# What an asset execution looked like (filled from the Dagster event log by defs/observability)


@dataclass(frozen=True)
class Column:
    name: str
    type: str | None = None
    description: str | None = None


@dataclass
class DatasetRef:
    namespace: str
    name: str
    columns: list[Column] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    contract: str | None = None  # "cascade/loan_data@v2"
    contracts_used: list[str] = field(default_factory=list)
    row_count: int | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


@dataclass
class AssetExecution:
    asset_key: str  # "raw/cascade/loan_data"
    dagster_run_id: str
    dagster_job: str
    step_key: str | None
    started_at: dt.datetime
    ended_at: dt.datetime
    status: str  # COMPLETE | FAIL | ABORT
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    error: str | None = None
    stack_trace: str | None = None
    run_url: str | None = None

    @property
    def lineage_run_id(self) -> str:
        """Stable for one asset in one Dagster run (re-emitting gives the same id), time-ordered (UUIDv7)."""
        data = f"{self.dagster_run_id}/{self.step_key}/{self.asset_key}".encode()
        return str(generate_static_uuid(self.started_at, data))


# ---------------------------------------------------------------------------------------------
# Dataset naming


def raw_dataset(data_dir: Path, source: str, table: str) -> tuple[str, str]:
    return f"file://{Path(data_dir).resolve() / 'raw'}", f"{source}/{table}"


def landing_dataset(landing: Path, source: str, table: str) -> tuple[str, str]:
    return f"file://{Path(landing).resolve()}", f"{source}/{table}"


def warehouse_dataset(data_dir: Path, schema: str, table: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """The warehouse table as OpenLineage names it for the dbt target in use (ABACO_DBT_TARGET)."""
    env = os.environ if env is None else env
    target = env.get("ABACO_DBT_TARGET", "local")
    if target == "bigquery":
        return "bigquery", f"{env.get('ABACO_BQ_PROJECT', '')}.{schema}.{table}"
    if target == "snowflake":
        database = env.get("ABACO_SNOWFLAKE_DATABASE", "ABACO")
        return f"snowflake://{env.get('ABACO_SNOWFLAKE_ACCOUNT', '')}", f"{database}.{schema}.{table}"
    return f"duckdb://{Path(data_dir).resolve() / 'warehouse.duckdb'}", f"{schema}.{table}"


def split_contract_id(contract_id: str) -> tuple[str, str]:
    """``cascade/loan_data@v2`` -> (``cascade/loan_data``, ``v2``)."""
    name, _, version = contract_id.partition("@")
    return name, version or "unknown"


# ---------------------------------------------------------------------------------------------
# Code revision


@functools.lru_cache(maxsize=4)
def code_revision(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"revision", "kind", "packageVersion", "dirty"}``: ABACO_CODE_REVISION (set at image build)
    wins; else ``git rev-parse HEAD`` of the checkout this package runs from; else the package version."""
    package_version = _package_version()
    pinned = os.environ.get("ABACO_CODE_REVISION")
    if pinned:
        return {"revision": pinned, "kind": "env", "packageVersion": package_version, "dirty": None}
    if (repo_root / ".git").exists():
        try:
            sha = subprocess.run(["git", "-C", str(repo_root), "rev-parse", "HEAD"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            status = subprocess.run(["git", "-C", str(repo_root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            return {"revision": sha, "kind": "git", "packageVersion": package_version,
                    "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}
        except (OSError, subprocess.SubprocessError):
            pass
    return {"revision": package_version, "kind": "package", "packageVersion": package_version, "dirty": None}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def _dagster_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dagster")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------------------------
# Events


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _schema_facet(columns: Sequence[Column]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description,
                                                        ordinal_position=i)
                for i, c in enumerate(columns, start=1)],
        producer=PRODUCER,
    )


def _dataset_facets(ref: DatasetRef) -> dict[str, DatasetFacet]:
    facets: dict[str, DatasetFacet] = {}
    if ref.columns:
        facets["schema"] = _schema_facet(ref.columns)
    if ref.version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=ref.version,
                                                                                 producer=PRODUCER)
    if ref.files:
        facets["abaco_files"] = AbacoFilesDatasetFacet(
            files=[AbacoFile(**{k: v for k, v in f.items() if k in _FILE_FIELDS}) for f in ref.files],
            producer=PRODUCER)
    if ref.contract or ref.contracts_used:
        used = sorted(set(ref.contracts_used), key=_contract_order)
        name, declared = split_contract_id(ref.contract or used[-1])
        version = split_contract_id(used[-1])[1] if used else declared
        facets["abaco_contract"] = AbacoContractDatasetFacet(name=name, version=version,
                                                             declaredVersion=declared if ref.contract else None,
                                                             versionsUsed=used, producer=PRODUCER)
    if ref.checks:
        facets["abaco_checks"] = AbacoChecksDatasetFacet(
            checks=[AbacoCheckResult(**{k: v for k, v in c.items() if k in _CHECK_FIELDS}) for c in ref.checks],
            producer=PRODUCER)
    return facets


_FILE_FIELDS = {a.name for a in attr.fields(AbacoFile)}
_CHECK_FIELDS = {a.name for a in attr.fields(AbacoCheckResult)}


def _contract_order(contract_id: str) -> tuple[str, int]:
    name, version = split_contract_id(contract_id)
    digits = version.lower().removeprefix("v")
    return name, int(digits) if digits.isdigit() else -1


def _input(ref: DatasetRef) -> InputDataset:
    return InputDataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref))


def _output(ref: DatasetRef) -> OutputDataset:
    output_facets = {}
    if ref.row_count is not None:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=int(ref.row_count), fileCount=len(ref.files) or None, producer=PRODUCER)
    return OutputDataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref),
                         outputFacets=output_facets)


def _run_facets(execution: AssetExecution, revision: dict[str, Any], *, final: bool) -> dict[str, RunFacet]:
    facets: dict[str, RunFacet] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=execution.dagster_run_id),
            job=parent_run.Job(namespace=NAMESPACE, name=execution.dagster_job),
            root=parent_run.Root(run=parent_run.RootRun(runId=execution.dagster_run_id),
                                 job=parent_run.RootJob(namespace=NAMESPACE, name=execution.dagster_job)),
            producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=_dagster_version(), name="Dagster", openlineageAdapterVersion=revision.get("packageVersion"),
            producer=PRODUCER),
        "abaco_codeRevision": AbacoCodeRevisionRunFacet(
            revision=revision["revision"], kind=revision["kind"], packageVersion=revision.get("packageVersion"),
            dirty=revision.get("dirty"), producer=PRODUCER),
        "abaco_dagster": AbacoDagsterRunFacet(
            runId=execution.dagster_run_id, jobName=execution.dagster_job, stepKey=execution.step_key,
            partitions=list(execution.partitions), runUrl=execution.run_url, producer=PRODUCER),
    }
    window = _nominal_window(execution.partitions)
    if window:
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(nominalStartTime=window[0],
                                                                     nominalEndTime=window[1], producer=PRODUCER)
    if final and execution.status != "COMPLETE" and execution.error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=execution.error, programmingLanguage="python", stackTrace=execution.stack_trace,
            producer=PRODUCER)
    return facets


def _nominal_window(partitions: Sequence[str]) -> tuple[str, str] | None:
    """Daily partitions (delivery dates) -> [first day 00:00, last day + 1 00:00) in UTC."""
    try:
        days = sorted(dt.date.fromisoformat(p) for p in partitions)
    except ValueError:
        return None
    if not days:
        return None
    start = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    return _iso(start), _iso(end)


def _job(execution: AssetExecution) -> Job:
    return Job(namespace=NAMESPACE, name=execution.asset_key, facets={
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DAGSTER", jobType="ASSET",
                                                producer=PRODUCER),
    })


def build_events(execution: AssetExecution, revision: dict[str, Any] | None = None) -> tuple[RunEvent, RunEvent]:
    """START and COMPLETE/FAIL/ABORT of one asset execution.

    START names the datasets; the final event repeats them with what the run learned
    (row counts, file hashes, check results), as OpenLineage consumers merge facets per run.
    """
    revision = revision or code_revision()
    run_id = execution.lineage_run_id
    start = RunEvent(
        eventType=RunState.START,
        eventTime=_iso(execution.started_at),
        run=Run(runId=run_id, facets=_run_facets(execution, revision, final=False)),
        job=_job(execution),
        inputs=[InputDataset(namespace=ref.namespace, name=ref.name,
                             facets={"schema": _schema_facet(ref.columns)} if ref.columns else {})
                for ref in execution.inputs],
        outputs=[OutputDataset(namespace=ref.namespace, name=ref.name,
                               facets={"schema": _schema_facet(ref.columns)} if ref.columns else {})
                 for ref in execution.outputs],
        producer=PRODUCER,
    )
    final = RunEvent(
        eventType=RunState[execution.status],
        eventTime=_iso(max(execution.ended_at, execution.started_at)),
        run=Run(runId=run_id, facets=_run_facets(execution, revision, final=True)),
        job=_job(execution),
        inputs=[_input(ref) for ref in execution.inputs],
        outputs=[_output(ref) for ref in execution.outputs],
        producer=PRODUCER,
    )
    return start, final


def event_dict(event: RunEvent) -> dict[str, Any]:
    """The event exactly as a transport serializes it."""
    return Serde.to_dict(event)


# ---------------------------------------------------------------------------------------------
# Transports


class LockedJsonlFileTransport(FileTransport):
    """openlineage-python's file transport in append mode, with an exclusive lock per write.

    One event per line; writers in several processes (the CLI, sensors, run workers) never
    interleave their lines.
    """

    kind = "abaco_locked_file"

    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(FileConfig(log_file_path=str(path), append=True))

    def emit(self, event) -> None:  # type: ignore[override]
        append_line(self.config.log_file_path, (Serde.to_json(event) + "\n").encode("utf-8"))


def lineage_file(data_dir: Path) -> Path:
    return Path(data_dir) / "logs" / "lineage" / "events.jsonl"


def lineage_client(data_dir: Path, env: dict[str, str] | None = None) -> OpenLineageClient:
    """HTTP transport when OPENLINEAGE_URL is set (Marquez / OpenMetadata), else the local JSONL file."""
    env = os.environ if env is None else env
    url = env.get("OPENLINEAGE_URL")
    if url:
        config: dict[str, Any] = {"url": url, "endpoint": env.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
                                  "timeout": float(env.get("OPENLINEAGE_TIMEOUT", "5"))}
        if env.get("OPENLINEAGE_API_KEY"):
            config["auth"] = {"type": "api_key", "apiKey": env["OPENLINEAGE_API_KEY"]}
        transport = HttpTransport(HttpConfig.from_dict(config))
    else:
        transport = LockedJsonlFileTransport(lineage_file(data_dir))
    return OpenLineageClient(transport=transport)


def emit(client: OpenLineageClient, events: Iterable[RunEvent]) -> int:
    count = 0
    for event in events:
        client.emit(event)
        count += 1
    return count


def fingerprint(items: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:16]
