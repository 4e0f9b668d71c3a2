"""Write the artefacts derived from the contracts into the repo (dbt sources).

``python -m contracts.render`` regenerates them; a unit test fails when the
committed file differs from what the contracts say, so nobody edits a
column by hand in two places.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from contracts.derive import render_dbt_sources
from contracts.registry import all_latest

DBT_SOURCES_PATH = Path(__file__).resolve().parent.parent / "dbt_project" / "models" / "sources.yml"
HEADER = "# GENERATED from contracts/ by `python -m contracts.render`. Do not edit by hand.\n"


def dbt_sources_text() -> str:
    return HEADER + yaml.safe_dump(render_dbt_sources(all_latest()), sort_keys=False, width=120)


def main() -> None:
    DBT_SOURCES_PATH.write_text(dbt_sources_text())
    print(f"wrote {DBT_SOURCES_PATH}")


if __name__ == "__main__":
    main()
