"""Raw assets: one per feed table, partitioned by delivery date.

One multi-asset per source, because a source's tables arrive and are judged
together (a Cascade delivery is all-or-nothing).  Materializing a partition
copies the landed bytes write-once into raw/, validates them against the
contract, and either promotes typed, masked Parquet or quarantines the
delivery.  The blocking ``contract`` check carries the verdict, so nothing
downstream runs on a rejected delivery within the same run.
"""

import datetime as dt
import json

import dagster as dg
from pydantic import Field

from contracts.derive import typed_columns
from contracts.registry import latest, tables_of
from abaco_assets.defs.partitions import delivery_date_partitions
from abaco_assets.lib.deliveries import (
    JUDGED_AGAINST_PREVIOUS,
    WORKERS,
    DeliveryOutcome,
    ensure_schema_files,
    in_order,
    process_delivery,
)
from abaco_assets.lib.landing import scan_landing
from abaco_assets.resources import AbacoSettings

MAX_VIOLATIONS_IN_METADATA = 20


class IngestConfig(dg.Config):
    force: bool = Field(
        default=False,
        description="Re-validate and re-promote versions that were already processed (same bytes).",
    )


LOAN_DATA = dg.AssetKey(["raw", "cascade", "loan_data"])
TAPE_HISTORY_CHECKS = [
    dg.AssetCheckSpec("completeness", asset=LOAN_DATA, blocking=True,
                      description="ERROR: every loan of the previous accepted tape is in this one (a tape is the "
                                  "full book; a truncated tape is not read as payoffs)"),
    dg.AssetCheckSpec("opb_roll_forward", asset=LOAN_DATA,
                      description="WARN: OPB(t-1) + disbursed - settled principal - write-offs = OPB(t) within 0.5 %"),
    dg.AssetCheckSpec("history_consistency", asset=LOAN_DATA,
                      description="WARN: disbursement fields unchanged, outstanding never increases (non-revolving), "
                                  "a written-off loan does not come back as Current"),
]


def _column_schema(source: str, table: str) -> dg.TableSchema:
    contract = latest(source, table)
    return dg.TableSchema(
        columns=[dg.TableColumn("delivery_date", "DATE", description="Delivery (as-of) date: the partition")]
        + [
            dg.TableColumn(name, "VARCHAR" if spec.pii == "hash" else spec.sql_type,
                           description=f"{spec.description} (header '{spec.header}'; {spec.describe_rule()})")
            for name, spec in typed_columns(contract)
        ]
    )


def _asset_spec(source: str, table: str) -> dg.AssetSpec:
    contract = latest(source, table)
    return dg.AssetSpec(
        key=["raw", source, table],
        group_name="ingest",
        description=(
            f"{contract.title} as delivered by '{source}': original bytes kept write-once in "
            f"`raw/{source}/{table}/<date>/<sha256>`, validated against {contract.contract_id()}, "
            "promoted as typed, PII-masked Parquet."
        ),
        kinds={"csv", "parquet"},
        owners=[contract.owner],
        tags={"domain": "ingestion", "source": source},
        metadata={"contract": contract.contract_id(), "dagster/column_schema": _column_schema(source, table),
                  "freshness_sla": contract.freshness.description if contract.freshness else "none"},
        freshness_policy=_freshness_policy(contract),
    )


def _freshness_policy(contract) -> dg.FreshnessPolicy | None:
    """The part of the contract's SLA a cron can express (the calendar sensor covers the rest)."""
    sla = contract.freshness
    if sla is None or sla.cron is None:
        return None
    return dg.FreshnessPolicy.cron(deadline_cron=sla.cron, lower_bound_delta=dt.timedelta(hours=24),
                                   timezone=sla.timezone)


def _write_validation_artifact(settings: AbacoSettings, run_id: str, outcome: DeliveryOutcome) -> str:
    key = f"runs/{outcome.delivery_date.isoformat()}/{run_id}/validation.json"
    zone = settings.zones().logs
    existing = json.loads(zone.read(key)) if zone.exists(key) else {"run_id": run_id, "deliveries": []}
    existing["deliveries"].append(outcome.to_record())
    zone.replace(key, json.dumps(existing, indent=1, default=str).encode())
    return zone.locate(key)


def build_ingest_assets(source: str) -> dg.AssetsDefinition:
    tables = tables_of(source)

    @dg.multi_asset(
        name=f"ingest_{source}",
        specs=[_asset_spec(source, table) for table in tables],
        check_specs=[
            dg.AssetCheckSpec(
                "contract",
                asset=dg.AssetKey(["raw", source, table]),
                blocking=True,
                description=(
                    f"The delivery passes {latest(source, table).contract_id()}: header, types, nulls, ranges, "
                    "enums, uniqueness, cross-column rules"
                    + (" and referential integrity across the tape (all-or-nothing)" if source == "cascade" else "")
                ),
            )
            for table in tables
        ] + [
            dg.AssetCheckSpec(
                "undeclared_pii", asset=dg.AssetKey(["raw", source, table]),
                description="WARN: a text column the contract does not declare PII holds e-mails, phones, "
                            "NIT/DUI tax ids or person names (offline patterns; counts only, never the values)",
            )
            for table in tables
        ] + (TAPE_HISTORY_CHECKS if source == "cascade" else []),
        partitions_def=delivery_date_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=False,
        op_tags={"domain": "ingestion"},
    )
    def ingest(context: dg.AssetExecutionContext, config: IngestConfig, settings: AbacoSettings):
        zones = settings.zones()
        ensure_schema_files(zones)
        pii_key = settings.pii_hmac_key()
        outcomes: list[DeliveryOutcome] = []

        def scans():
            for partition_key in context.partition_keys:
                delivery_date = dt.date.fromisoformat(partition_key)
                scan = scan_landing(settings.landing_store(), source=source, delivery_date=delivery_date)
                for skipped in scan.skipped:
                    context.log.warning(f"skipped landing key {skipped.key}: {skipped.reason}")
                if scan.files:
                    yield scan

        def process(scan) -> tuple[DeliveryOutcome, str]:
            outcome = process_delivery(scan.files, zones=zones, pii_key=pii_key, run_id=context.run_id,
                                       containers=scan.containers, force=config.force,
                                       audit=lambda records: settings.audit_many(context, records))
            return outcome, _write_validation_artifact(settings, context.run_id, outcome)

        # independent deliveries two at a time; the run's events are logged here, in date order: each
        # rejection as it comes, the accepted deliveries in one line (a 731-day range is 731 of them)
        workers = 1 if source in JUDGED_AGAINST_PREVIOUS else WORKERS
        accepted = []
        for outcome, artifact in in_order(process, scans(), workers=workers):
            verdict = "(already processed) " if outcome.previously_processed else ""
            if outcome.accepted:
                accepted.append(f"{outcome.delivery_date} {verdict}version {outcome.version_id}")
            else:
                context.log.error(f"{verdict}{outcome.message} (validation report: {artifact})")
            outcomes.append(outcome)
        if accepted:
            context.log.info(f"{source}: {len(accepted)} {'delivery' if len(accepted) == 1 else 'deliveries'} "
                             f"accepted: {'; '.join(accepted)}")
        if not outcomes:
            raise dg.Failure(
                f"No {source} delivery found under {settings.landing_store().locate(source)} for "
                f"{', '.join(context.partition_keys[:3])}{'...' if len(context.partition_keys) > 3 else ''}",
            )
        for table in tables:
            key = dg.AssetKey(["raw", source, table])
            # Each partition's event names its own file and rows. The range's summary is small: Dagster
            # copies it onto every partition's event (a 731-day range once stored 731 copies of a map
            # of 731 hashes, 46 MB in the event log).
            for o in outcomes:
                if table in o.tables:
                    context.add_asset_metadata(_delivery_metadata(o, table), asset_key=key,
                                               partition_key=o.delivery_date.isoformat())
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "deliveries": len(outcomes),
                    "accepted": sum(o.accepted for o in outcomes),
                    "rejected": sum(not o.accepted for o in outcomes),
                    "contract": latest(source, table).contract_id(),
                    "typed_path": str(zones.typed.path(f"{source}/{table}")),
                },
            )
        for table in tables:
            failing = [o for o in outcomes if not o.accepted]
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(["raw", source, table]),
                check_name="contract",
                passed=not failing,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "checked_deliveries": len(outcomes),
                    "rejected": dg.MetadataValue.json(
                        [{"date": o.delivery_date.isoformat(), "status": o.status, "message": o.message,
                          "violation_counts": o.tables[table].violation_counts if table in o.tables else {},
                          "quarantine": o.tables[table].quarantine_key if table in o.tables else None}
                         for o in failing]
                    ),
                    "violations_sample": dg.MetadataValue.json(
                        [v for o in failing for v in o.violations][:MAX_VIOLATIONS_IN_METADATA]
                    ),
                },
            )
        if source == "cascade":
            yield from _tape_history_check_results(outcomes)
        for table in tables:
            findings = [dict(f, date=o.delivery_date.isoformat()) for o in outcomes for f in o.pii_findings
                        if f["table"] == table]
            yield dg.AssetCheckResult(
                asset_key=dg.AssetKey(["raw", source, table]), check_name="undeclared_pii", passed=not findings,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"findings": dg.MetadataValue.json(findings[:MAX_VIOLATIONS_IN_METADATA]),
                          "remediation": "Declare the column PII in its contract (pii='hash' or 'drop') or ask "
                                         "the source to stop sending personal data in it."})


    return ingest


def _delivery_metadata(outcome: DeliveryOutcome, table: str) -> dict:
    """One delivery's table on its partition's materialization: the bytes read and the rows promoted."""
    return {
        "delivery_status": outcome.status,
        "dagster/row_count": outcome.tables[table].rows if outcome.accepted else 0,
        "input_sha256": dg.MetadataValue.json({outcome.delivery_date.isoformat(): outcome.tables[table].sha256}),
    }


def _tape_history_check_results(outcomes: list[DeliveryOutcome]):
    """One result per tape-history check over the run's deliveries (a range run judges them together)."""
    for spec in TAPE_HISTORY_CHECKS:
        evaluated = [(o, rule) for o in outcomes for rule in o.rules if rule["name"] == spec.name]
        failing = [(o, rule) for o, rule in evaluated if not rule["passed"]]
        yield dg.AssetCheckResult(
            asset_key=LOAN_DATA,
            check_name=spec.name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.ERROR if spec.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "evaluated_tapes": len(evaluated),
                "first_tape_without_predecessor": sum(not o.rules for o in outcomes),
                "failures": dg.MetadataValue.json(
                    [{"date": o.delivery_date.isoformat(), "message": rule["message"],
                      "details": rule["details"][:MAX_VIOLATIONS_IN_METADATA]} for o, rule in failing]
                ),
                "measures": dg.MetadataValue.json({o.delivery_date.isoformat(): rule["measures"]
                                                   for o, rule in evaluated if rule["measures"]}),
            },
        )


ingest_assets = [build_ingest_assets(source) for source in ("cascade", "collections", "delinquency")]
