"""Manual runs in production must say who launched them, why, and under which ticket.

The open-source Dagster UI has no login of its own; it sits behind an authenticating proxy
(helm/README.md), and the audit trail records the run tags ``abaco/principal``,
``abaco/purpose`` and ``abaco/ticket``. This module makes those tags mandatory for manual
runs when ``ABACO_ENV=prod``, in two places:

* ``GuardedQueuedRunCoordinator`` (the instance's run coordinator, dagster.prod.yaml and
  helm/values.yaml) refuses the launch before the run is queued: the UI shows the reason in
  the launch dialog, the run is marked failed with the reason in its event log, and nothing
  executes. It also takes the principal from the proxy's identity header, so a user cannot
  launch in someone else's name.
* ``launch_guard_sensor`` (a run-status sensor for Definitions) cancels a queued manual run
  without the tags. It is the backstop for an instance that was configured with the plain
  QueuedRunCoordinator by mistake; the coordinator is the guard that leaves no window.

Runs started by schedules, sensors and automation conditions are not manual and carry
their origin in Dagster's own tags; a re-execution or a backfill launched by a person is
manual and inherits the tags it was launched with.

The environment is read when a run is submitted, never at import time.
"""

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

PRINCIPAL_TAG = "abaco/principal"
PURPOSE_TAG = "abaco/purpose"
TICKET_TAG = "abaco/ticket"
REQUIRED_LAUNCH_TAGS = (PRINCIPAL_TAG, PURPOSE_TAG, TICKET_TAG)

# Tags Dagster sets on the runs it starts by itself.
AUTOMATED_ORIGIN_TAGS = (
    "dagster/schedule_name",
    "dagster/sensor_name",
    "dagster/auto_materialize",
    "dagster/from_automation_condition",
    "dagster/asset_evaluation_id",
)

# oauth2-proxy as a reverse proxy sends X-Forwarded-Email; behind ingress-nginx's
# auth_request it is the X-Auth-Request-Email response header passed upstream.
DEFAULT_PRINCIPAL_HEADERS = ("X-Forwarded-Email", "X-Auth-Request-Email")
# A tracker key such as RISK-142 or CHG-2041.
DEFAULT_TICKET_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$"


def guard_enabled(environment: str | None = None) -> bool:
    """The guard applies in production only (ABACO_ENV=prod, read now)."""
    return (environment if environment is not None else os.environ.get("ABACO_ENV", "local")) == "prod"


def is_manual_run(tags: Mapping[str, str]) -> bool:
    return not any(tag in tags for tag in AUTOMATED_ORIGIN_TAGS)


def launch_tag_violations(
    tags: Mapping[str, str],
    *,
    authenticated_principal: str | None = None,
    ticket_pattern: str = DEFAULT_TICKET_PATTERN,
) -> list[str]:
    """Everything wrong with a manual run's tags, as sentences a person can act on."""
    problems = []
    for tag in REQUIRED_LAUNCH_TAGS:
        if tag == PRINCIPAL_TAG and authenticated_principal:
            continue  # stamped from the proxy's header
        if not str(tags.get(tag, "")).strip():
            problems.append(f"tag {tag} is missing")
    claimed = str(tags.get(PRINCIPAL_TAG, "")).strip()
    if authenticated_principal and claimed and claimed.lower() != authenticated_principal.lower():
        problems.append(
            f"tag {PRINCIPAL_TAG}={claimed!r} does not match the signed-in user {authenticated_principal!r}"
        )
    ticket = str(tags.get(TICKET_TAG, "")).strip()
    if ticket and not re.fullmatch(ticket_pattern, ticket):
        problems.append(f"tag {TICKET_TAG}={ticket!r} is not a ticket key (expected e.g. RISK-142)")
    return problems


def refusal_message(problems: Sequence[str]) -> str:
    return (
        "Manual runs in production need the tags "
        + ", ".join(REQUIRED_LAUNCH_TAGS)
        + " (who launches, why, which ticket): "
        + "; ".join(problems)
        + ". Add them in the launchpad's tag editor or with --tags."
    )


class LaunchRefused(dg.DagsterInvariantViolationError):
    """Raised by the coordinator; Dagster marks the run failed and the UI shows the message."""


class GuardedQueuedRunCoordinator(dg.QueuedRunCoordinator):
    """The stock run queue, plus the production launch guard at submission."""

    def __init__(
        self,
        principal_headers: Sequence[str] | None = None,
        ticket_pattern: str | None = None,
        **queued_kwargs: Any,
    ):
        self._principal_headers = tuple(principal_headers or DEFAULT_PRINCIPAL_HEADERS)
        self._ticket_pattern = ticket_pattern or DEFAULT_TICKET_PATTERN
        super().__init__(**queued_kwargs)

    @classmethod
    def config_type(cls):
        return {
            **super().config_type(),
            "principal_headers": dg.Field(
                [str], is_required=False,
                description="Request headers, in order, that carry the proxy-authenticated user.",
            ),
            "ticket_pattern": dg.Field(
                str, is_required=False, description="Regular expression a ticket key must match."
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]):
        queued = {key: value for key, value in config_value.items()
                  if key not in ("principal_headers", "ticket_pattern")}
        return cls(
            inst_data=inst_data,
            principal_headers=config_value.get("principal_headers"),
            ticket_pattern=config_value.get("ticket_pattern"),
            **queued,
        )

    def authenticated_principal(self, context: dg.SubmitRunContext) -> str | None:
        for header in self._principal_headers:
            value = context.get_request_header(header)
            if value and value.strip():
                return value.strip()
        return None

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        if guard_enabled() and is_manual_run(run.tags):
            principal = self.authenticated_principal(context)
            problems = launch_tag_violations(
                run.tags, authenticated_principal=principal, ticket_pattern=self._ticket_pattern
            )
            if problems:
                raise LaunchRefused(refusal_message(problems))
            if principal and not run.tags.get(PRINCIPAL_TAG):
                self._instance.add_run_tags(run.run_id, {PRINCIPAL_TAG: principal})
                run = self._instance.get_run_by_id(run.run_id) or run
                context = dg.SubmitRunContext(run, workspace=context.workspace)
        return super().submit_run(context)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.QUEUED,
    name="launch_guard_sensor",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Production: cancels queued manual runs that lack abaco/principal, abaco/purpose, abaco/ticket.",
)
def launch_guard_sensor(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    if not guard_enabled() or not is_manual_run(run.tags):
        return dg.SkipReason("not a manual run in production")
    problems = launch_tag_violations(run.tags)
    if not problems:
        return dg.SkipReason(f"run {run.run_id} carries its launch tags")
    message = "Canceled by launch_guard_sensor. " + refusal_message(problems)
    context.instance.report_engine_event(message, run)
    context.instance.run_coordinator.cancel_run(run.run_id)
    context.log.warning("%s (run %s)", message, run.run_id)
    return dg.SkipReason(f"canceled run {run.run_id}: " + "; ".join(problems))
