"""The Dagster side of `abaco lineage <mart>.<column>` (the walk and the printing: lib/lineage_walk.py).

    from abaco_assets.defs.observability.lineage_command import LineageError, lineage_report
    report = lineage_report("kpi_portfolio_monthly.opb", defs, instance, data_dir)
    print(report.render())
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg

from abaco_assets.defs.observability.run_observer import Catalog, DatasetNamer, runs_dir
from abaco_assets.lib.lineage import code_revision
from abaco_assets.lib.lineage_walk import AssetStep, LineageReport, RawFile, walk_upstream


class LineageError(ValueError):
    """A mart or column that does not exist (the message lists what does)."""


def parse_target(target: str) -> tuple[str, str]:
    """``kpi_portfolio_monthly.opb`` or ``marts.kpi_portfolio_monthly.opb`` -> (mart, column)."""
    parts = target.strip().split(".")
    if len(parts) == 3 and parts[0] == "marts":
        parts = parts[1:]
    if len(parts) != 2 or not all(parts):
        raise LineageError(f"expected <mart>.<column> (e.g. kpi_portfolio_monthly.opb), got {target!r}")
    return parts[0], parts[1]


def _revision_of(data_dir: Path, run_id: str | None) -> str | None:
    if not run_id:
        return None
    path = runs_dir(data_dir) / f"{run_id}.json"
    try:
        return json.loads(path.read_text())["code_revision"]["revision"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lineage_report(target: str, defs: dg.Definitions, instance: dg.DagsterInstance, data_dir: Path,
                   env: dict[str, str] | None = None) -> LineageReport:
    import os

    mart, column = parse_target(target)
    graph = defs.resolve_asset_graph()
    mart_key = dg.AssetKey(["marts", mart])
    if not graph.has(mart_key):
        marts = sorted(k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "marts")
        raise LineageError(f"no mart {mart!r}; marts: {', '.join(marts)}")
    catalog = Catalog(data_dir)
    namer = DatasetNamer(graph, data_dir, dict(os.environ if env is None else env), catalog)
    columns = {c.name: c for c in namer.columns(mart_key)}
    if columns and column not in columns:
        raise LineageError(f"marts.{mart} has no column {column!r}; columns: {', '.join(columns)}")

    def parents(key: str) -> list[str]:
        node = graph.get(dg.AssetKey.from_user_string(key))
        return [p.to_user_string() for p in node.parent_keys if graph.has(p)]

    steps = []
    for key in walk_upstream(mart_key.to_user_string(), parents):
        event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
        run_id = event.run_id if event else None
        steps.append(AssetStep(
            key=key, parents=sorted(parents(key)), last_run_id=run_id,
            last_materialized_at=dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).isoformat(
                timespec="seconds") if event else None,
            code_revision=_revision_of(data_dir, run_id)))
    raw_files = {}
    for step in steps:
        path = step.key.split("/")
        if path[0] == "raw" and len(path) == 3:
            raw_files[step.key] = [
                RawFile(f["delivery_date"], f["sha256"], f.get("raw_key"), f.get("contract"), f.get("rows"),
                        f.get("version_id"), f.get("run_id"), f.get("landing_key"))
                for f in catalog.in_force(path[1], path[2])]
    found = columns.get(column)
    return LineageReport(target=f"marts.{mart}.{column}", mart_key=mart_key.to_user_string(), column=column,
                         column_description=found.description if found else None, steps=steps,
                         raw_files=raw_files, data_dir=str(Path(data_dir).resolve()),
                         current_revision=code_revision())
