"""Freshness SLAs from the contracts, made visible and raised.

* Where a cron expresses the SLA, the raw asset carries a Dagster
  ``FreshnessPolicy`` (applied in ``raw_assets``), shown in the UI.
* The full SLA (weekends, El Salvador holidays, "first business day after
  month-end") is evaluated by the ``freshness_sla`` check of each source's
  primary raw asset.  ``freshness_sla_sensor`` launches those checks after
  every deadline; a breach fails the check (WARN), is logged and written to
  ``$ABACO_DATA/logs/freshness/``.  The alerting layer routes it.
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg

from contracts.registry import latest
from abaco_assets.lib.business_calendar import TIMEZONE
from abaco_assets.lib.k8s_run_config import k8s_run_tags
from abaco_assets.lib.deliveries import accepted_dates
from abaco_assets.lib.freshness import Breach, breaches, expectations
from abaco_assets.resources import AbacoSettings

PRIMARY_TABLE = {"cascade": "loan_data", "collections": "collections", "delinquency": "delinquency"}
LOOKBACK_DAYS = 40


def _now() -> dt.datetime:
    """The current time in the business calendar's zone (one place, so tests can stop the clock)."""
    return dt.datetime.now(ZoneInfo(TIMEZONE))


def source_breaches(settings: AbacoSettings, source: str, now: dt.datetime) -> list[Breach]:
    sla = latest(source, PRIMARY_TABLE[source]).freshness
    accepted = accepted_dates(settings.zones(), source)
    if not accepted:
        return []  # the feed has not started: nothing is owed yet
    expected = expectations(source, sla.shape, sla.deadline, now, LOOKBACK_DAYS)
    return breaches(expected, set(accepted), now, not_before=accepted[0])


def _record(settings: AbacoSettings, run_id: str, source: str, now: dt.datetime, late: list[Breach]) -> str:
    zone = settings.zones().logs
    key = f"freshness/{now.date().isoformat()}/{run_id}/{source}.json"
    zone.replace(key, json.dumps({
        "source": source, "evaluated_at": now.isoformat(), "breaches": [
            {"delivery_date": b.delivery_date.isoformat(), "deadline": b.deadline.isoformat(),
             "hours_late": b.hours_late, "message": b.message()} for b in late]}, indent=1).encode())
    return zone.locate(key)


def _build_check(source: str) -> dg.AssetChecksDefinition:
    sla = latest(source, PRIMARY_TABLE[source]).freshness

    @dg.asset_check(
        asset=dg.AssetKey(["raw", source, PRIMARY_TABLE[source]]),
        name="freshness_sla",
        description=f"SLA: {sla.description} ({TIMEZONE}, weekends and national holidays excluded).",
    )
    def freshness_sla(context: dg.AssetCheckExecutionContext, settings: AbacoSettings) -> dg.AssetCheckResult:
        now = _now()
        late = source_breaches(settings, source, now)
        artifact = _record(settings, context.run.run_id, source, now, late)
        for breach in late:
            context.log.error(f"FRESHNESS SLA BREACH: {breach.message()}")
        return dg.AssetCheckResult(
            passed=not late,
            severity=dg.AssetCheckSeverity.WARN,
            description=late[0].message() if late else f"every {source} delivery due by now was accepted",
            metadata={
                "sla": sla.description,
                "late_deliveries": dg.MetadataValue.json([b.message() for b in late]),
                "artifact": dg.MetadataValue.path(artifact),
            },
        )

    return freshness_sla


freshness_checks = [_build_check(source) for source in PRIMARY_TABLE]

freshness_job = dg.define_asset_job(
    name="freshness_job",
    selection=dg.AssetSelection.checks(*freshness_checks),
    description="Evaluate every source's delivery SLA on the business-day calendar.",
    tags=k8s_run_tags("compliance"),
)


def latest_passed_deadline(now: dt.datetime) -> dt.datetime | None:
    deadlines = [
        e.deadline
        for source in PRIMARY_TABLE
        for e in expectations(source, latest(source, PRIMARY_TABLE[source]).freshness.shape,
                              latest(source, PRIMARY_TABLE[source]).freshness.deadline, now, lookback_days=7)
    ]
    return max(deadlines, default=None)


@dg.sensor(
    job=freshness_job,
    minimum_interval_seconds=900,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each SLA deadline (business-day calendar, America/El_Salvador), evaluate freshness.",
)
def freshness_sla_sensor(context: dg.SensorEvaluationContext):
    now = _now()
    deadline = latest_passed_deadline(now)
    if deadline is None or context.cursor == deadline.isoformat():
        return dg.SkipReason("no SLA deadline passed since the last evaluation")
    context.update_cursor(deadline.isoformat())
    return dg.RunRequest(run_key=f"freshness-{deadline.isoformat()}", tags={"abaco/trigger": "freshness_sla"})
