"""`abaco lineage <mart>.<column>`: from a KPI back to the files, contracts, runs and code behind it.

Pure: the caller (defs/observability/lineage_command.py) supplies the asset graph's parent
relation, the catalog's files in force and what the Dagster instance knows of each asset's
last materialization.  The walk is dataset-level: every raw table upstream of the mart
(the dbt manifest gives the edges); the column is checked to exist in the mart and its
definition is shown, but which upstream columns feed it is not computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable


@dataclass
class RawFile:
    delivery_date: str
    sha256: str
    raw_key: str | None
    contract: str | None
    rows: int | None
    version_id: str | None
    run_id: str | None
    landing_key: str | None = None


@dataclass
class AssetStep:
    key: str
    parents: list[str]
    last_run_id: str | None = None
    last_materialized_at: str | None = None
    code_revision: str | None = None


@dataclass
class LineageReport:
    target: str
    mart_key: str
    column: str
    column_description: str | None
    steps: list[AssetStep]
    raw_files: dict[str, list[RawFile]] = field(default_factory=dict)
    data_dir: str | None = None
    current_revision: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_assets(self) -> list[str]:
        return [s.key for s in self.steps if s.key.startswith("raw/")]

    def step(self, key: str) -> AssetStep:
        return next(s for s in self.steps if s.key == key)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [f"{self.target}  ({self.mart_key})"]
        if self.column_description:
            lines.append(f"  {self.column_description}")
        mart = self.step(self.mart_key)
        lines.append(f"  last built by run {mart.last_run_id or '(never materialized)'}"
                     + (f" at {mart.last_materialized_at}" if mart.last_materialized_at else "")
                     + (f", code revision {mart.code_revision}" if mart.code_revision else ""))
        lines += ["", "upstream (dataset-level, from the asset graph / dbt manifest):"]
        lines += ["  " + line for line in render_tree(self.mart_key, {s.key: s.parents for s in self.steps}.get)]
        lines += ["", "last materialization of each asset:"]
        for step in self.steps:
            lines.append(f"  {step.key:<52} run {step.last_run_id or '-':<36} "
                         f"{step.last_materialized_at or ''}"
                         + (f"  code {step.code_revision[:12]}" if step.code_revision else ""))
        lines += ["", "raw files in force (accepted deliveries; sha256 of the bytes as received):"]
        for raw in self.raw_assets:
            files = self.raw_files.get(raw, [])
            contracts = sorted({f.contract for f in files if f.contract})
            lines.append(f"  {raw}: {len(files)} deliveries, contracts {', '.join(contracts) or '-'}")
            for item in files:
                lines.append(f"    {item.delivery_date}  sha256 {item.sha256}  {item.contract or '-'}  "
                             f"rows {item.rows if item.rows is not None else '-'}  run {item.run_id or '-'}")
                if item.raw_key:
                    lines.append(f"      {self.data_dir + '/raw/' if self.data_dir else 'raw/'}{item.raw_key}")
        if self.current_revision:
            lines += ["", f"code revision of this checkout: {self.current_revision.get('revision')} "
                          f"({self.current_revision.get('kind')})"]
        return "\n".join(lines)


def walk_upstream(start: str, parents: Callable[[str], Iterable[str] | None]) -> list[str]:
    """Every asset upstream of ``start`` (included), breadth first, each once."""
    order, queue, seen = [], [start], {start}
    while queue:
        key = queue.pop(0)
        order.append(key)
        for parent in sorted(parents(key) or []):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return order


def render_tree(start: str, parents: Callable[[str], Iterable[str] | None]) -> list[str]:
    """An indented tree; an asset reached twice is expanded once and marked the second time."""
    lines: list[str] = []
    expanded: set[str] = set()

    def visit(key: str, depth: int) -> None:
        above = sorted(parents(key) or [])
        marker = "" if depth == 0 else "<- "
        if key in expanded and above:
            lines.append(f"{'   ' * depth}{marker}{key} (see above)")
            return
        lines.append(f"{'   ' * depth}{marker}{key}")
        expanded.add(key)
        for parent in above:
            visit(parent, depth + 1)

    visit(start, 0)
    return lines
