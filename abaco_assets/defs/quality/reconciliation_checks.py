"""Cross-feed reconciliation as asset checks on the daily feeds.

They run with the transform (after every feed is ingested, because a
collections date is reconciled against the tape that covers it, which may
arrive weeks later).  WARN by default; with severity ERROR they are
blocking, so a break stops staging and the marts in that run.
"""

import json

import dagster as dg

from abaco_assets.lib.deliveries import Zones
from abaco_assets.lib.markdown import markdown_table
from abaco_assets.lib.reconciliation import (
    Reconciliation, collections_inputs, collections_vs_cascade, delinquency_inputs, delinquency_vs_cascade,
    reconcile_changed,
)
from abaco_assets.lib.run_plan import in_force_versions
from abaco_assets.lib.storage import read_json_record
from abaco_assets.resources import AbacoSettings

MAX_ROWS_IN_METADATA = 20
CASCADE_DEPS = [dg.AssetKey(["raw", "cascade", "loan_data"]), dg.AssetKey(["raw", "cascade", "historic_real_payment"])]


def _artifact(settings: AbacoSettings, run_id: str, recon: Reconciliation) -> str:
    """Per-loan diffs, one file per run (no PII in them: ids, dates, amounts)."""
    zone = settings.zones().logs
    key = f"runs/_reconciliation/{run_id}/{recon.name}.json"
    rows = recon.breaks.to_dicts()
    zone.replace(key, json.dumps({"check": recon.name, "passed": recon.passed, "summary": recon.summary(),
                                  "checked_dates": recon.checked_dates, "pending_dates": recon.pending_dates,
                                  "breaks": rows}, indent=1, default=str).encode())
    return zone.locate(key)


def _result(context, settings: AbacoSettings, recon: Reconciliation) -> dg.AssetCheckResult:
    artifact = _artifact(settings, context.run.run_id, recon)
    (context.log.info if recon.passed else context.log.warning)(f"{recon.summary()} (diff: {artifact})")
    sample = recon.breaks.head(MAX_ROWS_IN_METADATA)
    return dg.AssetCheckResult(
        passed=recon.passed,
        severity=settings.reconciliation_check_severity(),
        description=recon.summary(),
        metadata={
            "checked_dates": recon.checked_dates,
            "unchanged_dates": recon.unchanged_dates,
            "pending_dates": recon.pending_dates,
            "breaks": recon.breaks.height,
            "diff_sample": dg.MetadataValue.md(markdown_table(sample)) if sample.height else "none",
            "diff_artifact": dg.MetadataValue.path(artifact),
            "remediation": "docs: compare the feed with the tape for the listed loans; re-send the wrong file",
        },
    )


@dg.asset_check(
    asset=dg.AssetKey(["raw", "collections", "collections"]),
    name="reconciles_with_cascade",
    blocking=True,
    additional_deps=CASCADE_DEPS,
    description="Cash per loan and date equals the Settled payments of that date in the covering Cascade tape "
                "(within 0.01). WARN by default; ABACO_RECONCILIATION_SEVERITY=ERROR makes it block the marts.",
)
def collections_reconcile(context: dg.AssetCheckExecutionContext, settings: AbacoSettings) -> dg.AssetCheckResult:
    zones = settings.zones()
    return _result(context, settings, _changed_only(zones, collections_vs_cascade,
                                                    collections_inputs(in_force_versions(zones))))


@dg.asset_check(
    asset=dg.AssetKey(["raw", "delinquency", "delinquency"]),
    name="reconciles_with_cascade",
    blocking=True,
    additional_deps=CASCADE_DEPS[:1],
    description="On dates with both a delinquency file and a tape: the same active loans, with equal days past due. "
                "WARN by default; ABACO_RECONCILIATION_SEVERITY=ERROR makes it block the marts.",
)
def delinquency_reconcile(context: dg.AssetCheckExecutionContext, settings: AbacoSettings) -> dg.AssetCheckResult:
    zones = settings.zones()
    return _result(context, settings, _changed_only(zones, delinquency_vs_cascade,
                                                    delinquency_inputs(in_force_versions(zones))))


def _changed_only(zones: Zones, compare, inputs) -> Reconciliation:
    """Compare only the dates whose deliveries changed since they reconciled cleanly (ledger in the catalog)."""
    key = f"_reconciled_{compare.__name__}.json"
    result, ledger = reconcile_changed(compare, zones.typed.path(""), inputs, read_json_record(zones.catalog.path(key)))
    zones.catalog.replace(key, json.dumps(ledger, indent=1).encode())
    return result


reconciliation_checks = [collections_reconcile, delinquency_reconcile]
