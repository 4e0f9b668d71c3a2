"""The board pack on a crafted warehouse: one self-contained file per month_end, every panel, formatted numbers.

The rendering in a real browser is abaco_assets_tests/integration/test_board_pack_browser.py;
here the HTML is checked as text (fast, no chromium).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import duckdb
import pytest

from abaco_assets.lib import board_pack
from abaco_assets.lib.board_pack import (
    CHART_SECTIONS,
    available_month_ends,
    format_percent,
    format_usd,
    nice_ticks,
    read_board_data,
    report_path,
    write_board_pack,
)
from abaco_assets_tests.fixtures.board_pack_warehouse import LATEST, MONTH_ENDS, write_board_pack_warehouse

NOW = dt.datetime(2026, 4, 1, 7, 30, tzinfo=dt.timezone.utc)


@pytest.fixture()
def warehouse(tmp_path) -> Path:
    return write_board_pack_warehouse(tmp_path / "data" / "warehouse.duckdb")


def _sections(document: str) -> dict[str, str]:
    """section id -> its HTML."""
    found = {}
    for match in re.finditer(r'<section class="panel" id="([^"]+)"[^>]*>(.*?)</section>', document, re.S):
        found[match.group(1)] = match.group(2)
    return found


def _render(warehouse: Path, reports: Path, month_end: dt.date | None = None, **options) -> tuple[str, object]:
    result = write_board_pack(warehouse, reports, month_end, pdf=False, now=NOW, **options)
    return result.html_path.read_text(), result


def test_one_file_per_month_end_under_reports(warehouse, tmp_path):
    reports = tmp_path / "data" / "reports"
    assert available_month_ends(warehouse) == list(MONTH_ENDS)
    for month_end in MONTH_ENDS:
        document, result = _render(warehouse, reports, month_end)
        assert result.html_path == reports / month_end.isoformat() / "board_pack.html"
        assert result.html_path == report_path(reports, month_end)
        assert f"as of {month_end.isoformat()}" in document
    assert sorted(path.parent.name for path in reports.glob("*/board_pack.html")) == [m.isoformat() for m in MONTH_ENDS]
    assert not [path for path in reports.rglob("*") if path.name.startswith(".")], "temp files left behind"
    # default: the latest month_end
    assert write_board_pack(warehouse, reports, pdf=False, now=NOW).month_end == LATEST


def test_self_contained_nothing_loaded_from_anywhere(warehouse, tmp_path):
    document, _ = _render(warehouse, tmp_path / "reports")
    assert "<script" not in document.lower()
    assert not re.search(r"\s(src|href)\s*=", document, re.I)
    assert "@import" not in document and "url(" not in document
    # the only URL is the SVG namespace, an identifier that is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", document)) == {"http://www.w3.org/2000/svg"}


def test_every_chart_and_panel_of_the_latest_month(warehouse, tmp_path):
    document, result = _render(warehouse, tmp_path / "reports", code_revision="0123abcd")
    sections = _sections(document)
    for section in CHART_SECTIONS:
        assert sections[section].count("<svg") >= 1, section
    assert result.sections_missing == ()
    assert 'class="missing"' not in document
    # header: as-of date and provenance
    assert "month-end snapshot 2026-03-31" in document
    assert "2026-04-01 07:30 UTC" in document and "0123abcd" in document
    assert f"sha256 {result.data_fingerprint}" in document
    assert "marts.kpi_portfolio_monthly (3 rows)" in document


def test_numbers_are_formatted(warehouse, tmp_path):
    document, _ = _render(warehouse, tmp_path / "reports")
    tiles = re.search(r'<section id="headline".*?</section>', document, re.S).group(0)
    assert "$1.23M" in tiles            # OPB 1,234,567.89
    assert "5.12%" in tiles              # PAR30 0.0512
    assert "2.51%" in tiles              # NPL 0.0251
    assert "102.0%" in tiles             # collection rate 1.02
    assert "23.45%" in tiles             # yield 0.2345
    assert "▲ $54.6K vs Feb 26" in tiles  # OPB change 1,234,567.89 - 1,180,000
    assert "▲ 0.12 pp vs Feb 26" in tiles  # PAR30 0.0512 - 0.05
    assert "net of recoveries $10.5K" in tiles
    covenants = _sections(document)["covenants"]
    assert re.search(r"Single obligor</td><td>4\.37%</td><td>&lt;= 4%</td><td><span class=\"badge fail\">FAIL",
                     covenants)
    assert covenants.count("badge pass") == 2 and covenants.count("badge na") == 1
    assert "$800,000" in covenants and "$1,000,000" in covenants
    concentration = _sections(document)["concentration"]
    assert "28.8%" in concentration and "0.0199" in concentration and "4.37%" in concentration
    assert "1. C0042 (Gob)" in concentration
    credit_loss = _sections(document)["credit-loss"]
    assert "$50,000" in credit_loss and "79.1%" in credit_loss


def test_missing_metrics_become_labelled_panels(tmp_path):
    warehouse = write_board_pack_warehouse(tmp_path / "warehouse.duckdb", with_metrics=False)
    document, result = _render(warehouse, tmp_path / "reports")
    sections = _sections(document)
    assert "Cashflow projection not yet computed for 2026-03-31" in sections["cashflow"]
    assert "metrics.metric_cashflow_projection does not exist yet" in sections["cashflow"]
    assert "Covenant results not yet computed" in sections["covenants"]
    assert "<svg" not in sections["cashflow"]
    assert set(result.sections_missing) == {"cashflow", "covenants", "credit-loss"}
    # the marts' charts are all there
    for section in ("opb-trend", "par-ladder", "vintage-curves", "roll-rates", "concentration"):
        assert "<svg" in sections[section], section


def test_an_earlier_month_says_which_projection_exists(warehouse, tmp_path):
    document, _ = _render(warehouse, tmp_path / "reports", MONTH_ENDS[1])
    sections = _sections(document)
    assert "not yet computed for 2026-02-28 (the latest projection is as of 2026-03-31)" in sections["cashflow"]
    # history stops at the pack's month: March is not in February's trend
    assert "Mar 26" not in sections["opb-trend"] and "Feb 26" in sections["opb-trend"]
    assert "<svg" in sections["roll-rates"]


def test_a_month_without_roll_rates(warehouse, tmp_path):
    document, _ = _render(warehouse, tmp_path / "reports", MONTH_ENDS[0])
    assert "previous calendar month has no month-end tape" in _sections(document)["roll-rates"]


def test_write_is_atomic(warehouse, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    _, first = _render(warehouse, reports)
    before = first.html_path.read_bytes()

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(board_pack.os, "replace", interrupted)
    with pytest.raises(OSError):
        write_board_pack(warehouse, reports, pdf=False, now=NOW + dt.timedelta(days=1))
    assert first.html_path.read_bytes() == before
    assert sorted(path.name for path in first.html_path.parent.iterdir()) == ["board_pack.html",
                                                                             "board_pack.inputs.json"]


def test_a_pack_is_rendered_again_only_when_its_rows_change(warehouse, tmp_path):
    reports = tmp_path / "reports"
    first = write_board_pack(warehouse, reports, pdf=False, now=NOW, keep_if_unchanged=True)
    before = first.html_path.read_bytes()
    kept = write_board_pack(warehouse, reports, pdf=False, now=NOW + dt.timedelta(days=1), keep_if_unchanged=True)
    assert not kept.rewritten and kept.html_path.read_bytes() == before
    assert kept.data_fingerprint == first.data_fingerprint
    assert write_board_pack(warehouse, reports, pdf=False, now=NOW + dt.timedelta(days=1)).rewritten  # not asked
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("update marts.kpi_portfolio_monthly set opb = opb + 1")
    changed = write_board_pack(warehouse, reports, pdf=False, now=NOW + dt.timedelta(days=2), keep_if_unchanged=True)
    assert changed.rewritten and changed.data_fingerprint != first.data_fingerprint


def test_pdf_is_skipped_with_a_note_without_chromium(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(board_pack, "find_chromium", lambda: None)
    result = write_board_pack(warehouse, tmp_path / "reports", pdf=True, now=NOW)
    assert result.pdf_path is None and "PDF skipped" in result.pdf_note
    assert result.html_path.exists()


def test_fingerprint_follows_the_data(warehouse, tmp_path):
    first = read_board_data(warehouse, LATEST).fingerprint()
    assert read_board_data(warehouse, LATEST).fingerprint() == first
    assert read_board_data(warehouse, MONTH_ENDS[1]).fingerprint() != first
    other = write_board_pack_warehouse(tmp_path / "other.duckdb", with_cashflow=False)
    assert read_board_data(other, LATEST).fingerprint() != first


def test_formatting_helpers():
    assert format_usd(1234567.89) == "$1,234,568"
    assert format_usd(1234567.89, compact=True) == "$1.23M"
    assert format_usd(45600, compact=True) == "$45.6K"
    assert format_usd(-2596.25) == "-$2,596"
    assert format_usd(None) == "n/a" and format_percent(None) == "n/a"
    assert format_percent(0.0512) == "5.12%" and format_percent(1.0, 0) == "100%"
    assert nice_ticks(0, 0.173) == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert nice_ticks(0, 1234567.89) == [0.0, 500000.0, 1000000.0, 1500000.0]
    assert nice_ticks(0, 0) == [0.0, 0.25, 0.5, 0.75, 1.0]  # an all-zero series still gets an axis
    assert nice_ticks(-0.2, 1.0) == [-0.5, 0.0, 0.5, 1.0]


def test_unknown_month_end_is_an_error(warehouse, tmp_path):
    with pytest.raises(ValueError, match="no row for month_end 2026-04-30"):
        write_board_pack(warehouse, tmp_path / "reports", dt.date(2026, 4, 30), pdf=False)
    assert not os.path.exists(tmp_path / "reports" / "2026-04-30")
