"""The board pack as a Dagster asset: one self-contained HTML report per month_end under $ABACO_DATA/reports.

Why one asset for every month_end rather than a partition per month: a pack
is rebuilt from the marts in well under a second, and after a restatement
every month's pack must change together; a materialization that covers them
all (the PDF only for the latest month, chromium is the slow part) keeps them
consistent without a partition backfill. A month's pack is rendered again only
when the rows it shows or the renderer changed (board_pack.inputs.json beside it).

The rendering is pure (abaco_assets/lib/board_pack.py); this wrapper picks
the folders from the ``settings`` resource at run time and reports paths,
fingerprints and missing sections as metadata.
"""

import datetime as dt

import hashlib

import dagster as dg

from abaco_assets.lib.board_pack import available_month_ends, reading, write_board_pack
from abaco_assets.resources import AbacoSettings

BOARD_PACK = dg.AssetKey(["reporting", "board_pack"])
MART_DEPS = [dg.AssetKey(["marts", name]) for name in (
    "kpi_portfolio_monthly", "kpi_roll_rates", "kpi_vintage_curves",
    "board_monthly_pack", "risk_top_obligors", "risk_par_ladder_by_segment")]
# metric_covenants writes metrics.metric_borrowing_base too.
METRIC_DEPS = [dg.AssetKey(["metrics", name]) for name in (
    "metric_cashflow_projection", "metric_covenants", "metric_expected_credit_loss")]


class BoardPackConfig(dg.Config):
    """month_end: YYYY-MM-DD or YYYY-MM to render one pack (default: every month_end of the marts)."""

    month_end: str = ""
    pdf: bool = True


def _chosen_month_ends(available: list[dt.date], wanted: str) -> list[dt.date]:
    if not wanted:
        return available
    chosen = [day for day in available if day.isoformat() == wanted or day.strftime("%Y-%m") == wanted]
    if not chosen:
        raise dg.Failure(f"no month_end {wanted!r} in marts.kpi_portfolio_monthly "
                         f"(available: {', '.join(day.isoformat() for day in available) or 'none'})")
    return chosen


def _code_revision() -> str | None:
    """The code revision for the pack's header, when the lineage helper is available."""
    try:
        from abaco_assets.lib.lineage import code_revision
    except ImportError:
        return None
    revision = code_revision()
    suffix = " (uncommitted changes)" if revision.get("dirty") else ""
    return f"{revision['revision']}{suffix}" if revision.get("revision") else None


@dg.asset(
    key=BOARD_PACK,
    deps=[*MART_DEPS, *METRIC_DEPS],
    group_name="reporting",
    kinds={"html", "pdf"},
    owners=["team:board"],
    tags={"domain": "reporting"},
    description="Self-contained HTML board pack per month_end (inline SVG charts, no network, no script) in "
                "$ABACO_DATA/reports/<month_end>/board_pack.html, and a PDF of the latest month when chromium "
                "is installed: OPB and disbursements, PAR ladder, vintage curves, roll-rate heat map, "
                "cashflow projection, covenants, concentration, expected credit loss.",
)
def board_pack(context: dg.AssetExecutionContext, config: BoardPackConfig,
               settings: AbacoSettings) -> dg.MaterializeResult:
    data_dir = settings.data()
    warehouse = data_dir / "warehouse.duckdb"
    available = available_month_ends(warehouse)
    if not available:
        raise dg.Failure(f"no KPI marts in {warehouse}: materialize the marts before the board pack")
    month_ends = _chosen_month_ends(available, config.month_end)
    latest = month_ends[-1]
    revision = _code_revision()
    results = []
    with reading(warehouse) as connection:  # one read-only connection for every month's pack
        for month_end in month_ends:
            results.append(write_board_pack(
                warehouse, data_dir / "reports", month_end, pdf=config.pdf and month_end == latest,
                code_revision=revision, run_id=context.run.run_id, keep_if_unchanged=True, connection=connection))
    records = []
    for result in results:
        month_end = result.month_end
        records.append(dict(action="read", dataset="marts/kpi_portfolio_monthly", partition=month_end.isoformat(),
                            content_hash=result.data_fingerprint, detail="board pack inputs (marts and metrics)"))
        for report in (result.html_path, result.pdf_path):
            if report is not None and result.rewritten:
                records.append(dict(action="write", dataset=f"reports/{report.name}", partition=month_end.isoformat(),
                                    content_hash=hashlib.sha256(report.read_bytes()).hexdigest()))
        if result.pdf_note:
            context.log.info(result.pdf_note)
    settings.audit_many(context, records)  # one chained block for every month's pack
    newest = results[-1]
    rewritten = [result.month_end.isoformat() for result in results if result.rewritten]
    context.log.info(f"board packs of {len(results)} month-ends: {len(rewritten)} rendered, the others unchanged "
                     f"(same rows, same renderer); latest {newest.html_path}")
    metadata = {
        "latest_month_end": latest.isoformat(),
        "latest_report": dg.MetadataValue.path(str(newest.html_path)),
        "latest_pdf": (dg.MetadataValue.path(str(newest.pdf_path)) if newest.pdf_path
                       else (newest.pdf_note or "not requested")),
        "month_ends": [result.month_end.isoformat() for result in results],
        "rendered_month_ends": rewritten,
        "data_fingerprint": newest.data_fingerprint,
        "sections_not_yet_computed": list(newest.sections_missing),
        "dagster/row_count": len(results),
    }
    return dg.MaterializeResult(metadata=metadata)


reporting_assets = [board_pack]
