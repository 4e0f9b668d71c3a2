"""The metric store: every KPI with its formula, owner, SLA and the model column that computes it.

Why it is read from YAML here rather than from dbt's manifest: the Dagster
translator needs the entries while the code location loads (to attach them as
asset metadata), and the Python metric tables are not in the manifest at all.
Three files hold the store, one vocabulary:

* ``dbt_project/models/marts/_metric_store.yml`` and
  ``dbt_project/models/departments/_metric_store.yml``: dbt's semantic layer.
  A semantic model per mart gives the mart's grain (``config.meta.grain``),
  its dimensions and one measure per KPI column; a metric per KPI carries the
  catalog entry in ``config.meta``. The model and column of a KPI are read
  from its measure (``expr`` or name) and the measure's semantic model
  (``model: ref(...)``), so they are written once.
* ``dbt_project/metric_store/python_metrics.yml``: the Python metric tables
  of schema ``metrics`` (not dbt models, so outside the semantic layer).

The loader checks what it can without a warehouse (unique names, measures
that exist, references to declared models only, no column claimed by two
KPIs); ``abaco_assets_tests/integration/test_metric_store.py`` checks the
rest against the dbt manifest and a built warehouse.

Pure: reads files, imports no Dagster.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_STORE_FILES = ("models/marts/_metric_store.yml", "models/departments/_metric_store.yml")
PYTHON_STORE_FILE = "metric_store/python_metrics.yml"

DBT_SCHEMA = "marts"
"""Every dbt model of the store is a table of schema marts (dbt_project.yml)."""
PYTHON_SCHEMA = "metrics"

Unit = Literal["usd", "ratio", "count", "months", "boolean"]
Additivity = Literal["additive", "semi_additive", "non_additive"]
Engine = Literal["dbt", "python"]
Role = Literal["computes", "cut", "publishes"]

_REF = re.compile(r"""^\s*ref\(\s*['"]([A-Za-z0-9_]+)['"]\s*\)\s*$""")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MetricStoreError(ValueError):
    """The store's YAML contradicts itself (a typo, a duplicate, a reference to nothing)."""


class FreshnessSla(BaseModel):
    """When a KPI must be current; ``cadence`` uses the SLA shapes of ``abaco_assets.lib.freshness``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cadence: Literal["month_end", "business_daily"]
    deadline: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
    timezone: str
    description: str


class ColumnRef(BaseModel):
    """A column of a warehouse table: ``schema_name.model.column``."""

    model_config = ConfigDict(frozen=True)

    schema_name: str
    model: str
    column: str

    @classmethod
    def parse(cls, text: str, default_schema: str = DBT_SCHEMA) -> "ColumnRef":
        """``model.column`` (schema marts) or ``schema.model.column``."""
        parts = text.strip().split(".")
        if len(parts) == 2:
            parts = [default_schema, *parts]
        if len(parts) != 3 or not all(_IDENTIFIER.match(part) for part in parts):
            raise MetricStoreError(f"{text!r} is not a model.column or schema.model.column reference")
        return cls(schema_name=parts[0], model=parts[1], column=parts[2])

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.model}.{self.column}"


class ModelEntry(BaseModel):
    """A table the store describes: its grain and dimensions (the non-KPI columns)."""

    model_config = ConfigDict(frozen=True)

    name: str
    schema_name: str
    engine: Engine
    description: str = ""
    grain: tuple[str, ...]
    dimensions: tuple[str, ...] = ()

    def key_columns(self) -> set[str]:
        return {*self.grain, *self.dimensions}


class KpiDefinition(BaseModel):
    """One KPI of the catalog, typed; what the Dagster asset of its model carries as metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str
    description: str
    formula: str
    unit: Unit
    owner: str = Field(pattern=r"^team:[a-z][a-z0-9_-]*$")
    consumers: tuple[str, ...] = ()
    freshness_sla: FreshnessSla
    additivity: Additivity
    engine: Engine
    computed_by: ColumnRef
    cut_in: tuple[ColumnRef, ...] = ()
    """The same column in the marts that repeat the KPI inside a cut (segment, product_type)."""
    published_in: tuple[ColumnRef, ...] = ()
    """Other columns carrying the same figure (department marts, Python metric tables)."""
    grain: tuple[str, ...]
    dimensions: tuple[str, ...] = ()

    @field_validator("consumers")
    @classmethod
    def _consumers_are_teams(cls, consumers: tuple[str, ...]) -> tuple[str, ...]:
        for consumer in consumers:
            if not re.match(r"^team:[a-z][a-z0-9_-]*$", consumer):
                raise ValueError(f"consumer {consumer!r} is not a team:<name>")
        return consumers

    def columns(self) -> tuple[tuple[Role, ColumnRef], ...]:
        """Every column carrying this KPI, with the role the column plays."""
        return (("computes", self.computed_by), *(("cut", ref) for ref in self.cut_in),
                *(("publishes", ref) for ref in self.published_in))

    def metadata_entry(self, role: Role, ref: ColumnRef) -> dict[str, Any]:
        return {
            "kpi": self.name,
            "label": self.label,
            "model": ref.model,
            "column": ref.column,
            "role": role,
            "computed_by": str(self.computed_by),
            "formula": self.formula,
            "unit": self.unit,
            "owner": self.owner,
            "consumers": list(self.consumers),
            "grain": list(self.grain),
            "dimensions": list(self.dimensions),
            "additivity": self.additivity,
            "freshness_sla": self.freshness_sla.description,
            "freshness_deadline": f"{self.freshness_sla.cadence} {self.freshness_sla.deadline} "
                                  f"{self.freshness_sla.timezone}",
        }


class MetricStore(BaseModel):
    """All KPIs and the tables they live in, cross-checked on construction."""

    model_config = ConfigDict(frozen=True)

    kpis: tuple[KpiDefinition, ...]
    models: dict[str, ModelEntry]

    def kpi(self, name: str) -> KpiDefinition:
        for definition in self.kpis:
            if definition.name == name:
                return definition
        raise KeyError(f"no KPI {name!r} in the metric store")

    def column_usages(self, model_name: str) -> list[tuple[KpiDefinition, Role, ColumnRef]]:
        """(KPI, role, column) for every KPI column of one model, in store order."""
        return [(kpi, role, ref) for kpi in self.kpis for role, ref in kpi.columns() if ref.model == model_name]

    def referenced_columns(self) -> dict[str, set[str]]:
        """model -> every column the store names in it (KPI columns, grain, dimensions)."""
        found: dict[str, set[str]] = {name: set(entry.key_columns()) for name, entry in self.models.items()}
        for kpi in self.kpis:
            for _, ref in kpi.columns():
                found.setdefault(ref.model, set()).add(ref.column)
        return found

    def validate_references(self) -> "MetricStore":
        """Raise MetricStoreError on duplicates and on references to undeclared models."""
        names = [kpi.name for kpi in self.kpis]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise MetricStoreError(f"KPI names defined twice: {duplicates}")
        claimed: dict[tuple[str, str], str] = {}
        for kpi in self.kpis:
            for _, ref in kpi.columns():
                entry = self.models.get(ref.model)
                if entry is None:
                    raise MetricStoreError(f"KPI {kpi.name} names {ref}, but no semantic model or metric table "
                                           f"declares {ref.model}")
                if entry.schema_name != ref.schema_name:
                    raise MetricStoreError(f"KPI {kpi.name} names {ref}, but {ref.model} is in schema "
                                           f"{entry.schema_name}")
                if ref.column in entry.key_columns():
                    raise MetricStoreError(f"KPI {kpi.name} names {ref}, a grain/dimension column of {ref.model}")
                owner = claimed.setdefault((ref.model, ref.column), kpi.name)
                if owner != kpi.name:
                    raise MetricStoreError(f"{ref} is claimed by two KPIs: {owner} and {kpi.name}")
        return self


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise MetricStoreError(f"metric store file {path} is missing")
    with path.open() as handle:
        # libyaml's loader when the wheel has it (5x faster at code-location load); same safe subset
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def _ref_model(text: str, where: str) -> str:
    match = _REF.match(text or "")
    if not match:
        raise MetricStoreError(f"{where}: model must be ref('<model>'), got {text!r}")
    return match.group(1)


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    return dict((node.get("config") or {}).get("meta") or {})


def _dbt_entries(documents: Iterable[tuple[str, dict[str, Any]]]) -> tuple[list[KpiDefinition], list[ModelEntry]]:
    """KPIs and models of dbt's semantic layer YAML."""
    measures: dict[str, tuple[str, str]] = {}  # measure -> (model, column)
    models: list[ModelEntry] = []
    semantic_model_of: dict[str, dict[str, Any]] = {}
    model_meta: dict[str, dict[str, Any]] = {}
    metrics: list[tuple[str, dict[str, Any]]] = []
    for source, document in documents:
        for semantic_model in document.get("semantic_models") or []:
            where = f"{source}: semantic model {semantic_model.get('name')}"
            model = _ref_model(semantic_model.get("model", ""), where)
            meta = _meta(semantic_model)
            grain = tuple(meta.get("grain") or ())
            if not grain:
                raise MetricStoreError(f"{where}: config.meta.grain is required")
            dimensions = tuple(dimension.get("expr") or dimension["name"]
                               for dimension in semantic_model.get("dimensions") or [])
            models.append(ModelEntry(name=model, schema_name=DBT_SCHEMA, engine="dbt",
                                     description=semantic_model.get("description", ""),
                                     grain=grain, dimensions=tuple(d for d in dimensions if d not in grain)))
            semantic_model_of[model] = semantic_model
            model_meta[model] = meta
            for cut_column, cut_model in (meta.get("cuts") or {}).items():
                models.append(ModelEntry(name=cut_model, schema_name=DBT_SCHEMA, engine="dbt",
                                         description=f"{model} cut by {cut_column}",
                                         grain=(*grain, cut_column)))
            for measure in semantic_model.get("measures") or []:
                column = measure.get("expr") or measure["name"]
                if not _IDENTIFIER.match(column):
                    raise MetricStoreError(f"{where}: measure {measure['name']} must name a column, got {column!r}")
                if measure["name"] in measures:
                    raise MetricStoreError(f"{where}: measure {measure['name']} is defined twice")
                measures[measure["name"]] = (model, column)
        metrics += [(source, metric) for metric in document.get("metrics") or []]

    kpis = []
    for source, metric in metrics:
        where = f"{source}: metric {metric.get('name')}"
        if metric.get("type") != "simple":
            raise MetricStoreError(f"{where}: only simple metrics map to one column (type {metric.get('type')!r})")
        measure_name = (metric.get("type_params") or {}).get("measure")
        if isinstance(measure_name, dict):
            measure_name = measure_name.get("name")
        if measure_name not in measures:
            raise MetricStoreError(f"{where}: measure {measure_name!r} is not defined by any semantic model")
        model, column = measures[measure_name]
        meta = _meta(metric)
        semantic_model = semantic_model_of[model]
        cuts = model_meta[model].get("cuts") or {}
        dimensions = tuple(dimension.get("expr") or dimension["name"]
                           for dimension in semantic_model.get("dimensions") or [])
        grain = tuple(model_meta[model]["grain"])
        try:
            kpis.append(KpiDefinition(
                name=metric["name"], label=metric.get("label") or metric["name"],
                description=metric.get("description", ""), formula=meta.get("formula", ""),
                unit=meta.get("unit"), owner=meta.get("owner", ""), consumers=tuple(meta.get("consumers") or ()),
                freshness_sla=meta.get("freshness_sla"), additivity=meta.get("additivity"), engine="dbt",
                computed_by=ColumnRef(schema_name=DBT_SCHEMA, model=model, column=column),
                cut_in=tuple(ColumnRef(schema_name=DBT_SCHEMA, model=cut_model, column=column)
                             for cut_model in cuts.values()),
                published_in=tuple(ColumnRef.parse(text) for text in meta.get("published_in") or ()),
                grain=grain,
                dimensions=tuple(dict.fromkeys([*(d for d in dimensions if d not in grain), *cuts])),
            ))
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            raise MetricStoreError(f"{where}: {error}") from error
    return kpis, models


def _python_entries(source: str, document: dict[str, Any]) -> tuple[list[KpiDefinition], list[ModelEntry]]:
    """KPIs and tables of the Python metrics YAML."""
    models = [ModelEntry(name=table["name"], schema_name=PYTHON_SCHEMA, engine="python",
                         description=table.get("description", ""), grain=tuple(table["grain"]),
                         dimensions=tuple(table.get("dimensions") or ()))
              for table in document.get("tables") or []]
    tables = {model.name: model for model in models}
    kpis = []
    for metric in document.get("metrics") or []:
        where = f"{source}: metric {metric.get('name')}"
        table = tables.get(metric.get("table", ""))
        if table is None:
            raise MetricStoreError(f"{where}: table {metric.get('table')!r} is not declared under tables:")
        try:
            kpis.append(KpiDefinition(
                name=metric["name"], label=metric.get("label") or metric["name"],
                description=metric.get("description", ""), formula=metric.get("formula", ""),
                unit=metric.get("unit"), owner=metric.get("owner", ""),
                consumers=tuple(metric.get("consumers") or ()), freshness_sla=metric.get("freshness_sla"),
                additivity=metric.get("additivity"), engine="python",
                computed_by=ColumnRef(schema_name=PYTHON_SCHEMA, model=table.name, column=metric["column"]),
                published_in=tuple(ColumnRef.parse(text) for text in metric.get("published_in") or ()),
                grain=table.grain, dimensions=table.dimensions,
            ))
        except ValueError as error:
            raise MetricStoreError(f"{where}: {error}") from error
    return kpis, models


def build_metric_store(dbt_documents: Iterable[tuple[str, dict[str, Any]]],
                       python_document: tuple[str, dict[str, Any]]) -> MetricStore:
    """The store from already-parsed YAML documents (``(source name, document)`` pairs)."""
    dbt_kpis, dbt_models = _dbt_entries(dbt_documents)
    python_kpis, python_models = _python_entries(*python_document)
    models: dict[str, ModelEntry] = {}
    for entry in [*dbt_models, *python_models]:
        if entry.name in models:
            raise MetricStoreError(f"model {entry.name} is declared twice in the metric store")
        models[entry.name] = entry
    return MetricStore(kpis=(*dbt_kpis, *python_kpis), models=models).validate_references()


@lru_cache(maxsize=4)
def _load_cached(dbt_project_dir: Path, stamp: tuple[float, ...]) -> MetricStore:
    del stamp  # part of the cache key only: an edited file is re-read
    dbt_documents = [(name, _read_yaml(dbt_project_dir / name)) for name in DBT_STORE_FILES]
    python_document = (PYTHON_STORE_FILE, _read_yaml(dbt_project_dir / PYTHON_STORE_FILE))
    return build_metric_store(dbt_documents, python_document)


def load_metric_store(dbt_project_dir: Path | None = None) -> MetricStore:
    """The project's metric store (parsed once per process while the files do not change)."""
    project = Path(dbt_project_dir or DBT_PROJECT_DIR).resolve()
    files = [project / name for name in (*DBT_STORE_FILES, PYTHON_STORE_FILE)]
    stamp = tuple(path.stat().st_mtime if path.exists() else -1.0 for path in files)
    return _load_cached(project, stamp)


def metadata_for_model(model_name: str, store: MetricStore | None = None) -> dict[str, Any]:
    """Asset metadata for the dbt model or metric table ``model_name``: its KPIs, owners and SLA.

    ``{}`` for a model without KPIs (staging, intermediate). Values are plain
    JSON-able Python (Dagster turns the list into a JSON metadata value):

    * ``abaco/kpis``: one entry per KPI column of the model: kpi, label,
      model, column, role (computes: the model is the KPI's source of truth;
      cut: the KPI inside a segment/product cut; publishes: a copy proven
      equal by a test), computed_by, formula, unit, owner, consumers, grain,
      dimensions, additivity, freshness_sla, freshness_deadline;
    * ``abaco/kpi_owners``: the owners of those KPIs, comma-separated;
    * ``abaco/freshness_sla``: the SLA(s) of the KPIs the model computes.
    """
    return metadata_for_models([model_name], store)


def metadata_for_models(model_names: Iterable[str], store: MetricStore | None = None) -> dict[str, Any]:
    """``metadata_for_model`` of several tables written by one asset (metric_covenants also writes
    metric_borrowing_base), merged into one set of keys."""
    store = store or load_metric_store()
    usages = [usage for name in model_names for usage in store.column_usages(name)]
    if not usages:
        return {}
    computed = [kpi for kpi, role, _ in usages if role == "computes"] or [kpi for kpi, _, _ in usages]
    return {
        "abaco/kpis": [kpi.metadata_entry(role, ref) for kpi, role, ref in usages],
        "abaco/kpi_owners": ", ".join(sorted({kpi.owner for kpi, _, _ in usages})),
        "abaco/freshness_sla": "; ".join(dict.fromkeys(kpi.freshness_sla.description for kpi in computed)),
    }


def owners_for_model(model_name: str, store: MetricStore | None = None) -> list[str]:
    """Dagster owners of a model: the owners of the KPIs it is the source of truth for."""
    store = store or load_metric_store()
    return sorted({kpi.owner for kpi, role, _ in store.column_usages(model_name) if role == "computes"})
