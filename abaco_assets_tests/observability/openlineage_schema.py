"""Validate emitted OpenLineage events against the official JSON schemas, offline.

The spec files are vendored in ``abaco_assets_tests/fixtures/openlineage_spec/`` (see its README);
this platform's own facets have their schemas in ``docs/openlineage/facets/``.  Every schema is
registered under its ``$id``; an event is validated against ``<core $id>#/$defs/RunEvent`` and
each facet in it against the schema its ``_schemaURL`` names (which must be registered: an
unknown facet schema fails the test).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO / "abaco_assets_tests" / "fixtures" / "openlineage_spec"
CUSTOM_DIR = REPO / "docs" / "openlineage" / "facets"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@lru_cache(maxsize=1)
def registry() -> Registry:
    resources = []
    for path in [*SPEC_DIR.rglob("*.json"), *CUSTOM_DIR.glob("*.json")]:
        document = json.loads(path.read_text())
        resources.append((document["$id"], Resource.from_contents(document)))
    return Registry().with_resources(resources)


def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from (("run." + k, v) for k, v in (event.get("run", {}).get("facets") or {}).items())
    yield from (("job." + k, v) for k, v in (event.get("job", {}).get("facets") or {}).items())
    for side in ("inputs", "outputs"):
        for dataset in event.get(side) or []:
            for group in ("facets", "inputFacets", "outputFacets"):
                for name, facet in (dataset.get(group) or {}).items():
                    yield f"{side}[{dataset['name']}].{group}.{name}", facet


def validation_errors(event: dict[str, Any]) -> list[str]:
    """Every way ``event`` breaks the spec (empty when it is valid)."""
    errors = [f"RunEvent: {e.json_path}: {e.message}" for e in _validator(f"{CORE_ID}#/$defs/RunEvent").iter_errors(event)]
    if not event.get("schemaURL", "").startswith(CORE_ID):
        errors.append(f"schemaURL {event.get('schemaURL')!r} is not the vendored spec {CORE_ID}")
    for where, facet in facets_of(event):
        schema_url = facet.get("_schemaURL", "")
        document_id = schema_url.split("#")[0]
        try:
            registry().get_or_retrieve(document_id)
        except Exception:
            errors.append(f"{where}: schema {schema_url!r} is not vendored")
            continue
        errors += [f"{where}: {e.json_path}: {e.message}" for e in _validator(schema_url).iter_errors(facet)]
    return errors
