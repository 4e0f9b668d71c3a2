"""The staging tests read only the deliveries not yet tested under the current code."""

import json

from abaco_assets.lib import test_scope
from abaco_assets.lib.dbt_manifest import MANIFEST
from abaco_assets.lib.storage import read_json_record

MODELS = {"stg_cascade__loan_data": "cascade", "stg_cascade__customer_data": "cascade",
          "stg_collections__collections": "collections"}
IN_FORCE = {"cascade": {"2026-09-30": "v1", "2026-10-31": "v2"},
            "collections": {"2026-11-01": "c1", "2026-11-02": "c2", "2026-11-03": None}}


def test_the_staging_models_and_their_sources_come_from_the_manifest(dbt_manifest):
    models = test_scope.staging_models(json.loads(MANIFEST.read_text())["nodes"])
    assert models["stg_cascade__loan_data"] == "cascade"
    assert models["stg_collections__collections"] == "collections"
    assert models["stg_delinquency__delinquency"] == "delinquency"
    assert all(name.startswith("stg_") for name in models)


def test_without_a_ledger_of_this_code_every_delivery_is_tested():
    assert test_scope.pending({}, "code", IN_FORCE, MODELS) is None
    recorded = test_scope.recorded({}, "old", IN_FORCE, MODELS, MODELS)
    assert test_scope.pending(recorded, "new", IN_FORCE, MODELS) is None  # the code changed
    assert test_scope.scope_variable(None) is None
    assert "every delivery" in test_scope.describe(None)


def test_only_new_and_restated_deliveries_are_pending_after_a_passing_build():
    ledger = test_scope.recorded({}, "code", IN_FORCE, MODELS, MODELS)
    assert test_scope.pending(ledger, "code", IN_FORCE, MODELS) == {model: [] for model in MODELS}
    later = {"cascade": {**IN_FORCE["cascade"], "2026-10-31": "v2-restated", "2026-11-30": "v3"},
             "collections": {**IN_FORCE["collections"], "2026-11-04": "c4"}}
    assert test_scope.pending(ledger, "code", later, MODELS) == {
        "stg_cascade__loan_data": ["2026-10-31", "2026-11-30"],
        "stg_cascade__customer_data": ["2026-10-31", "2026-11-30"],
        "stg_collections__collections": ["2026-11-04"],  # a date with nothing in force is not tested
    }
    variable = test_scope.scope_variable(test_scope.pending(ledger, "code", later, MODELS))
    assert json.loads(variable)["stg_collections__collections"] == ["2026-11-04"]
    assert "stg_collections__collections: 1 (2026-11-04)" in test_scope.describe(json.loads(variable))


def test_a_model_whose_tests_did_not_run_keeps_its_pending_deliveries():
    ledger = test_scope.recorded({}, "code", IN_FORCE, MODELS, MODELS)
    later = {**IN_FORCE, "cascade": {**IN_FORCE["cascade"], "2026-11-30": "v3"}}
    # only the loan tape's tests ran (a partial selection): customer data stays pending
    partial = test_scope.recorded(ledger, "code", later, MODELS, ["stg_cascade__loan_data"])
    assert test_scope.pending(partial, "code", later, MODELS) == {
        "stg_cascade__loan_data": [], "stg_cascade__customer_data": ["2026-11-30"], "stg_collections__collections": []}
    # a partial build under new code keeps nothing of the old code's ledger
    fresh = test_scope.recorded(ledger, "new", later, MODELS, ["stg_cascade__loan_data"])
    assert set(fresh["models"]) == {"stg_cascade__loan_data"}
    assert test_scope.pending(fresh, "new", later, MODELS)["stg_cascade__customer_data"] == ["2026-09-30", "2026-10-31",
                                                                                          "2026-11-30"]


def test_a_scope_too_long_for_the_environment_tests_everything():
    many = {"stg_collections__collections": [f"day-{n:06d}" for n in range(10_000)]}
    assert test_scope.scope_variable(many) is None
    assert test_scope.describe(many) == ("staging tests read every delivery (10,000 are not yet tested: "
                                         "too many to name in ABACO_TEST_SCOPE)")


def test_an_unreadable_ledger_counts_as_none(tmp_path):
    path = tmp_path / test_scope.LEDGER_NAME
    assert read_json_record(path) == {}
    path.write_text("{not json")
    assert read_json_record(path) == {}
    path.write_text("[1, 2]")
    assert read_json_record(path) == {}
