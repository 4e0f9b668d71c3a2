"""Declarative automation of everything downstream of the raw feeds.

When a landing sensor's run materializes a raw partition, staging and the
marts follow by themselves: ``transform_automation_sensor`` evaluates the
condition below on every tick and requests the models whose inputs changed,
in one run (the dbt assets can be subset).

Why the condition is not plain ``eager()``:

* the raw assets are daily-partitioned and the models are not, so "any
  dependency missing" is always true (most days have no delivery): that
  clause is dropped, the rest of eager (an update since the last request,
  nothing upstream or of its own in progress) stays;
* a rejected delivery still records a materialization with a failed
  blocking ``contract`` check.  Within a run the failed check stops the
  downstream steps; across runs only the condition can, so the models wait
  while any upstream blocking check (of any partition) has failed against
  the latest materialization, and go again once a good restatement passes.
  ``all_deps_blocking_checks_passed()`` is not used: it also waits for
  blocking checks that have not run against the latest materialization, and
  some never run in an automated run (the cross-feed reconciliation checks
  run in ``transform_job``; dbt tests of a model not built yet), so a new
  raw partition would never reach the marts.  "No blocking check failed" is
  the rule the platform needs, and it is what this condition states;
* ``~in_progress`` and ``~any_deps_in_progress`` (from eager) keep two runs of
  the same asset from overlapping, and keep the marts from building while a
  delivery is still being ingested; the run queue's ``domain=transform``
  limit (dagster.yaml) serializes transform runs on the DuckDB file.
"""

import dagster as dg

AUTOMATION_SENSOR_INTERVAL_SECONDS = 60


def no_failed_blocking_check_upstream() -> dg.AutomationCondition:
    return (~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    )).with_label("no_failed_blocking_check_upstream")


def downstream_of_raw() -> dg.AutomationCondition:
    """The condition of every staging, intermediate, mart (and metric) asset."""
    eager_partitioned_parents = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    return (eager_partitioned_parents & no_failed_blocking_check_upstream()).with_label(
        "eager_unless_upstream_blocking_check_failed")


transform_automation_sensor = dg.AutomationConditionSensorDefinition(
    "transform_automation_sensor",
    target=dg.AssetSelection.groups("staging", "marts", "metrics"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_SENSOR_INTERVAL_SECONDS,
    run_tags={"domain": "transform", "abaco/trigger": "automation"},
    description="Rebuilds staging, marts and metrics after new raw partitions, unless an upstream blocking "
                "check is failing (declarative automation).",
)
