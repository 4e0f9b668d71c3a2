"""Sensors that observe runs launched from the UI, schedules or the daemon (``abaco run`` calls
``observe_run`` itself; observing twice is harmless, see run_observer).

* run status sensors (success, failure, canceled): lineage, SLO lines and alerts of each run;
* ``alert_on_failed_checks``: reads the latest execution of every asset check, so a failed
  blocking check, reconciliation or freshness check alerts within a minute even while a long run
  is still going (``observe_run`` on an unfinished run raises its alerts only).
"""

import json

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from abaco_assets.defs.observability.run_observer import observe_run


def _defs() -> dg.Definitions:
    from abaco_assets.definitions import defs  # at evaluation time: definitions.py imports this module

    return defs


def _observe(context) -> dg.SkipReason:
    run = context.dagster_run
    observation = observe_run(context.instance, run.run_id, _defs())
    for error in observation.errors:
        context.log.warning(f"observability of run {run.run_id}: {error}")
    return dg.SkipReason(
        f"run {run.run_id}: {observation.lineage_events} lineage events"
        f"{' (already observed)' if observation.already_observed else ''}, "
        f"{len(observation.alerts_sent)} new alerts")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="observe_successful_runs",
                      default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                      description="OpenLineage events, SLO log lines and (check) alerts of every successful run.")
def observe_successful_runs(context: dg.RunStatusSensorContext):
    return _observe(context)


@dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds=30,
                       description="Lineage (FAIL events) and one alert per failed run (Slack / e-mail / outbox).")
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    return _observe(context)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, name="observe_canceled_runs",
                      default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                      description="Closes the lineage of a canceled run (ABORT events).")
def observe_canceled_runs(context: dg.RunStatusSensorContext):
    return _observe(context)


def _latest_check_executions(instance: dg.DagsterInstance) -> dict[str, tuple[int, str, bool]]:
    """check key -> (execution record id, run id, failed) of the latest execution of every check.

    Works on every event log storage (the default SQLite one is sharded by run, so a global
    cursor over check-evaluation events is not available there).
    """
    keys = list(_defs().resolve_asset_graph().asset_check_keys)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {key.to_user_string(): (record.id, record.run_id,
                                   record.status == AssetCheckExecutionRecordStatus.FAILED)
            for key, record in latest.items()}


@dg.sensor(name="alert_on_failed_checks", default_status=dg.DefaultSensorStatus.RUNNING,
           minimum_interval_seconds=60,
           description="Alerts on failed blocking, reconciliation and freshness checks as soon as they are "
                       "recorded, without waiting for the run to end.")
def alert_on_failed_checks(context: dg.SensorEvaluationContext):
    latest = _latest_check_executions(context.instance)
    seen = {key: record_id for key, (record_id, _, _) in latest.items()}
    if context.cursor is None:  # start from now: history was (or will be) covered by the run sensors
        context.update_cursor(json.dumps(seen, sort_keys=True))
        return dg.SkipReason("cursor initialised at the latest check executions")
    previous = json.loads(context.cursor)
    new = {key: value for key, value in latest.items() if value[0] > previous.get(key, -1)}
    if not new:
        return dg.SkipReason("no new check evaluation")
    failed_runs = sorted({run_id for _, run_id, failed in new.values() if failed and run_id})
    for run_id in failed_runs:
        observation = observe_run(context.instance, run_id, _defs())
        for error in observation.errors:
            context.log.warning(f"observability of run {run_id}: {error}")
    context.update_cursor(json.dumps({**previous, **seen}, sort_keys=True))
    return dg.SkipReason(f"{len(new)} new check executions, {len(failed_runs)} runs with failed checks")


observability_sensors = [observe_successful_runs, alert_on_run_failure, observe_canceled_runs, alert_on_failed_checks]
