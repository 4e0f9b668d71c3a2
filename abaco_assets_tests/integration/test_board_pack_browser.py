"""The board pack opened in a real browser: Debian's headless chromium, driven over the DevTools pipe.

Asserts that the page renders (title, headline tiles, every chart drawn with
a real size), that each chart section holds its SVG, that nothing is logged
as an error and that the only request the page makes is for the file
itself. A full-page screenshot is kept next to the report (under pytest's
tmp dir) as the test artifact.

Chromium is never downloaded here: install Debian's package with
.ci/browser.sh. Without it the tests skip, unless ABACO_REQUIRE_BROWSER=1
(CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from abaco_assets.lib.board_pack import CHART_SECTIONS, write_board_pack
from abaco_assets_tests.fixtures.board_pack_warehouse import write_board_pack_warehouse
from abaco_assets_tests.fixtures.department_portfolio import build_department_warehouse
from abaco_assets_tests.integration.headless_chromium import DevToolsPipe, find_chromium, open_page

# Per section: the SVG charts it must draw.
EXPECTED_SVGS = {section: 1 for section in CHART_SECTIONS}

INSPECT_PAGE = """JSON.stringify({
  title: document.title,
  tiles: document.querySelectorAll('#headline .tile').length,
  sections: Object.fromEntries([...document.querySelectorAll('section.panel')].map(section => [section.id, {
    svgs: section.querySelectorAll('svg').length,
    drawn: [...section.querySelectorAll('svg')].every(svg => {
      const box = svg.getBoundingClientRect(); return box.width > 200 && box.height > 60; }),
    shapes: section.querySelectorAll('svg rect, svg polyline, svg circle').length,
    missing: section.querySelectorAll('.missing').length,
  }])),
  externalReferences: document.querySelectorAll('[src], [href], link, script, iframe, object, embed').length,
  textLength: document.body.innerText.length,
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "Debian's chromium is not installed: run .ci/browser.sh"
        if os.environ.get("ABACO_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _open(chromium: str, html_path: Path, screenshot: Path):
    with DevToolsPipe(chromium) as browser:
        page = open_page(browser, html_path.resolve().as_uri())
        inspection = json.loads(page.evaluate(INSPECT_PAGE))
        page.screenshot(screenshot)
        return inspection, page.report()


def _assert_clean(report, html_path: Path) -> None:
    assert report.console_errors == []
    assert report.exceptions == []
    assert report.log_errors == []
    assert report.failed_requests == []
    assert report.requested_urls == [html_path.resolve().as_uri()]


def test_board_pack_renders_every_chart_without_errors(chromium, tmp_path):
    warehouse = write_board_pack_warehouse(tmp_path / "data" / "warehouse.duckdb")
    result = write_board_pack(warehouse, tmp_path / "data" / "reports", pdf=True)
    screenshot = result.html_path.with_name("board_pack.png")
    inspection, report = _open(chromium, result.html_path, screenshot)
    print(f"board pack screenshot: {screenshot}")

    assert inspection["title"] == "Abaco board pack, March 2026"
    assert inspection["tiles"] == 8
    assert inspection["externalReferences"] == 0
    assert inspection["textLength"] > 1500
    for section, count in EXPECTED_SVGS.items():
        found = inspection["sections"][section]
        assert found["svgs"] == count, section
        assert found["drawn"] and found["shapes"] > 0, section
        assert found["missing"] == 0, section
    assert inspection["sections"]["covenants"]["missing"] == 0
    _assert_clean(report, result.html_path)
    assert screenshot.stat().st_size > 20_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # printed with the same chromium (no download): a real PDF beside the HTML
    assert result.pdf_path == result.html_path.with_suffix(".pdf")
    assert result.pdf_path.read_bytes()[:5] == b"%PDF-"


def test_board_pack_of_the_dbt_built_marts(chromium, tmp_path_factory, tmp_path):
    """The real marts (dbt build of the crafted portfolio): charts from them, metric panels labelled missing."""
    data_dir = build_department_warehouse(tmp_path_factory)
    result = write_board_pack(data_dir / "warehouse.duckdb", tmp_path / "reports", pdf=False)
    inspection, report = _open(chromium, result.html_path, tmp_path / "board_pack_dbt.png")
    assert inspection["title"] == "Abaco board pack, April 2025"
    for section in ("opb-trend", "par-ladder", "vintage-curves", "concentration"):
        assert inspection["sections"][section]["svgs"] == 1 and inspection["sections"][section]["drawn"], section
    # April 2025 follows a month without a tape: no roll rates, said so
    assert inspection["sections"]["roll-rates"] == {"svgs": 0, "drawn": True, "shapes": 0, "missing": 1}
    # the Python metrics are not in a dbt-only warehouse
    for section in ("cashflow", "covenants", "credit-loss"):
        assert inspection["sections"][section]["missing"] == 1, section
    _assert_clean(report, result.html_path)


def test_the_harness_sees_errors_and_requests(chromium, tmp_path):
    """A page that misbehaves on purpose: the checks above would catch each fault."""
    canary = tmp_path / "canary.html"
    canary.write_text("<!DOCTYPE html><html><head><title>canary</title></head><body>"
                      "<img src='http://127.0.0.1:9/pixel.png' alt=''>"
                      "<script>console.error('broken chart'); undefined_function();</script></body></html>")
    _, report = _open(chromium, canary, tmp_path / "canary.png")
    assert any("broken chart" in message for message in report.console_errors)
    assert report.exceptions
    assert "http://127.0.0.1:9/pixel.png" in report.requested_urls
