"""The launch guard's rules, without an instance (the Postgres-backed tests are in deploy/test_instance.py)."""

from abaco_assets.defs.compliance.launch_guard import (
    GuardedQueuedRunCoordinator,
    guard_enabled,
    is_manual_run,
    launch_tag_violations,
)

COMPLETE = {"abaco/principal": "ana@abaco.example", "abaco/purpose": "month-end close", "abaco/ticket": "FIN-88"}


def test_only_production_is_guarded(monkeypatch):
    monkeypatch.setenv("ABACO_ENV", "prod")
    assert guard_enabled()
    monkeypatch.setenv("ABACO_ENV", "local")
    assert not guard_enabled()
    monkeypatch.delenv("ABACO_ENV")
    assert not guard_enabled()


def test_runs_started_by_dagster_itself_are_not_manual():
    assert is_manual_run({"domain": "transform"})
    assert is_manual_run({"dagster/backfill": "abc", **COMPLETE})  # a person launched the backfill
    for origin in ("dagster/schedule_name", "dagster/sensor_name", "dagster/from_automation_condition"):
        assert not is_manual_run({origin: "x"})


def test_violations_name_each_missing_or_malformed_tag():
    assert launch_tag_violations(COMPLETE) == []
    assert launch_tag_violations({}) == [f"tag {tag} is missing" for tag in ("abaco/principal", "abaco/purpose",
                                                                           "abaco/ticket")]
    assert launch_tag_violations({**COMPLETE, "abaco/purpose": "   "}) == ["tag abaco/purpose is missing"]
    assert "not a ticket key" in launch_tag_violations({**COMPLETE, "abaco/ticket": "see slack"})[0]


def test_the_proxy_identity_stands_in_for_and_overrules_the_principal_tag():
    tags = {"abaco/purpose": "restatement", "abaco/ticket": "RISK-142"}
    assert launch_tag_violations(tags, authenticated_principal="luis@abaco.example") == []
    problems = launch_tag_violations({**tags, "abaco/principal": "ceo@abaco.example"},
                                     authenticated_principal="luis@abaco.example")
    assert problems == ["tag abaco/principal='ceo@abaco.example' does not match the signed-in user "
                        "'luis@abaco.example'"]


def test_the_coordinator_accepts_the_queued_coordinators_config_plus_its_own():
    coordinator = GuardedQueuedRunCoordinator.from_config_value(
        None, {"dequeue_use_threads": True, "dequeue_num_workers": 4, "principal_headers": ["X-Auth-Request-Email"],
               "ticket_pattern": r"^CHG-\d+$"})
    assert coordinator.dequeue_use_threads and coordinator.dequeue_num_workers == 4
    assert coordinator._principal_headers == ("X-Auth-Request-Email",)
