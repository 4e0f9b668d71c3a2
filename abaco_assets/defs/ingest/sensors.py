"""One sensor per source: a new or changed file in the landing store starts its ingest run.

Each tick lists the source's prefix (every page), keeps the objects the
cursor has not handled (``lib/sensor_cursor``), groups them into deliveries
(``lib/landing_triggers``) and requests one run of ``ingest_<source>_job``
per delivery date, with the partition taken from the key and
``run_key = key@ETag`` (for a Cascade delivery: every file's key and ETag).
Dagster never starts two runs with the same run key from one sensor, and
the ingestion itself is idempotent per content hash, so each file version is
processed exactly once even if a cursor is lost.

The same code watches a local folder (``dagster dev``), an S3 prefix or a
GCS prefix: the backend comes from ``AbacoSettings.landing_store()``.
"""

import dagster as dg

from contracts.registry import SOURCES
from abaco_assets.defs.partitions import delivery_date_partitions
from abaco_assets.lib.deliveries import load_catalog, needs_processing
from abaco_assets.lib.landing import zip_members
from abaco_assets.lib.landing_triggers import DeliveryTrigger, plan_triggers, processed_version
from abaco_assets.lib.sensor_cursor import LandingCursor
from abaco_assets.lib.storage import LandedObject, LandingStore
from abaco_assets.resources import AbacoSettings

SENSOR_INTERVAL_SECONDS = 60
TRIGGER_TAG = "abaco/trigger"
DELIVERY_TAG = "abaco/delivery"  # <source>/<date>: the run queue admits one run per value (dagster.yaml)
MAX_KEYS_IN_TAG = 5


def _zip_tables(store: LandingStore):
    def tables_in(item: LandedObject):
        with store.open_seekable(item.key) as handle:
            members, skipped = zip_members(handle, item.key)
        return {table for _, table, _ in members}, skipped

    return tables_in


def _run_request(trigger: DeliveryTrigger) -> dg.RunRequest:
    keys = [item.key for item in trigger.objects]
    return dg.RunRequest(
        run_key=trigger.run_key,
        partition_key=trigger.partition_key,
        tags={
            TRIGGER_TAG: "landing_sensor",
            DELIVERY_TAG: f"{trigger.source}/{trigger.partition_key}",
            "abaco/landing_keys": ", ".join(keys[:MAX_KEYS_IN_TAG]) + (" ..." if len(keys) > MAX_KEYS_IN_TAG else ""),
        },
    )


def evaluate_landing(context: dg.SensorEvaluationContext, settings: AbacoSettings, source: str) -> dg.SensorResult:
    """One tick for ``source``: the run requests and the advanced cursor."""
    store = settings.landing_store()
    lookback_seconds = settings.landing_lookback_seconds
    cursor = LandingCursor.from_json(context.cursor)
    listed = list(store.list_objects(f"{source}/"))
    fresh = cursor.fresh(listed, lookback_seconds)
    next_cursor = cursor.advance(listed, fresh, lookback_seconds).to_json()
    if not fresh:
        return dg.SensorResult(skip_reason=f"no new object under {store.locate(source + '/')} "
                                           f"({len(listed)} listed)", cursor=next_cursor)
    plan = plan_triggers(source, listed, fresh, _zip_tables(store))
    for skipped in plan.skipped:
        context.log.warning(f"skipped landing key {store.locate(skipped.key)}: {skipped.reason} "
                            "(left in place, not ingested)")
    for message in plan.waiting:
        context.log.info(message)
    zones = settings.zones()
    requests = []
    for trigger in plan.triggers:
        if not delivery_date_partitions.has_partition_key(trigger.partition_key):
            context.log.warning(f"skipped {source} delivery of {trigger.partition_key}: the date is outside the "
                                "partitions (before 2020-01-01 or in the future)")
            continue
        catalog = load_catalog(zones, source, trigger.delivery_date)
        version_id = processed_version(catalog, trigger.objects)
        if version_id is not None and not needs_processing(catalog, version_id, force=False):
            context.log.info(f"{source} delivery of {trigger.partition_key} is already ingested "
                             f"(version {version_id}); no run")
            continue
        context.log.info(f"{source} delivery of {trigger.partition_key}: requesting a run "
                         f"(run key {trigger.run_key})")
        requests.append(_run_request(trigger))
    return dg.SensorResult(run_requests=requests, cursor=next_cursor)


def build_landing_sensor(source: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{source}_landing_sensor",
        job_name=f"ingest_{source}_job",
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(f"Starts ingest_{source}_job for each new or changed {source} delivery in the landing "
                     "store (folder, S3 or GCS), one run per delivery version (run key = key@ETag)."),
        tags={"domain": "ingestion", "source": source},
    )
    def landing_sensor(context: dg.SensorEvaluationContext, settings: AbacoSettings) -> dg.SensorResult:
        return evaluate_landing(context, settings, source)

    return landing_sensor


ingest_sensors = [build_landing_sensor(source) for source in SOURCES]


def sensor_for(source: str) -> dg.SensorDefinition:
    return next(sensor for sensor in ingest_sensors if sensor.name == f"{source}_landing_sensor")

