"""Which deliveries the staging dbt tests read: those not yet tested under the current code.

A delivery's typed tables are write-once and passed the contract gate before promotion, so a
staging test that passed on a delivery keeps passing until the code that tests it changes (the
dbt project, the contracts). The ledger ``<ABACO_DATA>/dbt/tested_deliveries.json`` records, per
staging model, the delivery versions whose tests passed and the code fingerprint they passed
under; before each build the transform asset hands dbt the rest as ``ABACO_TEST_SCOPE``
(``dbt_project/macros/test_scope.sql`` turns it into each test's ``where``).

So a daily run tests one day, not the whole history. Everything is tested again when the code
changed, when a delivery is restated (its version in force changed), after a failed build
(nothing is recorded), and by a plain ``dbt build`` (the variable is unset).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from abaco_assets.lib.run_plan import Versions

SCOPE_VARIABLE = "ABACO_TEST_SCOPE"
LEDGER_NAME = "tested_deliveries.json"
# an environment string must stay well under the kernel's 128 KiB per-string limit
MAX_SCOPE_BYTES = 64_000


def staging_models(manifest_nodes: Mapping[str, dict]) -> dict[str, str]:
    """Staging model name -> the source it reads, from the dbt manifest."""
    models = {}
    for node in manifest_nodes.values():
        if node.get("resource_type") != "model" or node.get("fqn", [None, None])[1] != "staging":
            continue
        sources = {dep.split(".")[2] for dep in node.get("depends_on", {}).get("nodes", []) if dep.startswith("source.")}
        if len(sources) == 1:
            models[node["name"]] = sources.pop()
    return models


def pending(ledger: Mapping, code: str, in_force: Versions, models: Mapping[str, str]) -> dict[str, list[str]] | None:
    """Model -> the delivery dates its tests must read; None means every delivery (code changed, no ledger)."""
    if not ledger or ledger.get("code") != code:
        return None
    tested = ledger.get("models", {})
    return {model: sorted(day for day, version in in_force.get(source, {}).items()
                          if version is not None and tested.get(model, {}).get(day) != version)
            for model, source in models.items()}


def scope_variable(scope: Mapping[str, list[str]] | None) -> str | None:
    """The value of ABACO_TEST_SCOPE, or None (test everything) when there is none or it is too long."""
    if scope is None:
        return None
    text = json.dumps(scope, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_SCOPE_BYTES else None


def recorded(ledger: Mapping, code: str, in_force: Versions, models: Mapping[str, str],
             tested_models: Iterable[str]) -> dict:
    """The ledger after a build whose tests passed on ``tested_models`` (the deliveries in force before it)."""
    kept = dict(ledger.get("models", {})) if ledger.get("code") == code else {}
    for model in tested_models:
        kept[model] = {day: version for day, version in in_force.get(models[model], {}).items() if version is not None}
    return {"code": code, "models": dict(sorted(kept.items()))}


def describe(scope: Mapping[str, list[str]] | None) -> str:
    """One line for the run log: what the staging tests read, and why when it is every delivery."""
    if scope is None:
        return "staging tests read every delivery (no ledger for this code version)"
    if scope_variable(scope) is None:
        pending = sum(len(days) for days in scope.values())
        return (f"staging tests read every delivery ({pending:,} are not yet tested: too many to name in "
                f"{SCOPE_VARIABLE})")
    parts = [f"{model}: {len(days)} ({days[0]}{'..' + days[-1] if len(days) > 1 else ''})"
             for model, days in sorted(scope.items()) if days]
    return "staging tests read the deliveries not yet tested: " + ("; ".join(parts) or "none")
