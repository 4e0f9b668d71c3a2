"""Shadow comparison of kpi_portfolio_monthly with a reference KPI export."""

from datetime import date

import polars as pl
import pytest
import yaml

from abaco_assets.lib.shadow import ShadowMapping, compare, run_shadow

OURS = pl.DataFrame({
    "month_end": [date(2026, 8, 31), date(2026, 9, 30), date(2026, 10, 31)],
    "opb": [1_000_000.00, 1_050_000.00, 1_100_000.00],
    "par30": [0.0400, 0.0410, 0.0430],
    "weighted_apr": [0.36, 0.36, 0.37],
})
MAPPING = {
    "month_column": "Month End",
    "defaults": {"abs": 0.0001},
    "kpis": {"opb": {"reference": "Outstanding Principal", "abs": 1.0, "rel": 0.0005},
             "par30": {"reference": "PAR 30", "abs": 0.0005},
             "weighted_apr": "APR"},
}


def reference(**overrides) -> pl.DataFrame:
    columns = {"Month End": ["2026-08", "2026-09", "2026-10"],
               "Outstanding Principal": ["1000000.40", "1050000", "1100000"],
               "PAR 30": ["0.0402", "0.0410", "0.0430"], "APR": ["0.36", "0.36", "0.37"]}
    columns.update(overrides)
    return pl.DataFrame(columns)


def statuses(report) -> dict:
    return {(row["month_end"].isoformat(), row["kpi"]): row["status"] for row in report.rows.iter_rows(named=True)}


def test_agreeing_exports_pass_within_tolerance():
    report = compare(OURS, reference(), ShadowMapping.from_dict(MAPPING))
    assert report.ok
    assert report.rows.height == 9
    row = report.rows.filter((pl.col("kpi") == "opb") & (pl.col("month_end") == date(2026, 8, 31))).row(0, named=True)
    assert row["abs_diff"] == pytest.approx(0.40) and row["status"] == "ok"


def test_a_kpi_outside_its_tolerance_is_off_and_named():
    report = compare(OURS, reference(**{"PAR 30": ["0.0402", "0.0420", "0.0430"]}), ShadowMapping.from_dict(MAPPING))
    assert not report.ok
    assert report.failures.select("month_end", "kpi", "status").rows() == [(date(2026, 9, 30), "par30", "off")]


def test_relative_tolerance_applies_when_set():
    # 1,050,400 vs 1,050,000: 400 off in absolute terms, 0.038% relative (< 0.05%).
    report = compare(OURS, reference(**{"Outstanding Principal": ["1000000", "1050400", "1100000"]}),
                     ShadowMapping.from_dict(MAPPING))
    assert statuses(report)[("2026-09-30", "opb")] == "ok"
    tight = {**MAPPING, "kpis": {**MAPPING["kpis"], "opb": {"reference": "Outstanding Principal", "abs": 1.0}}}
    assert statuses(compare(OURS, reference(**{"Outstanding Principal": ["1000000", "1050400", "1100000"]}),
                            ShadowMapping.from_dict(tight)))[("2026-09-30", "opb")] == "off"


def test_months_on_one_side_only_fail_the_comparison():
    extra = pl.DataFrame({"Month End": ["2026-07-31"], "Outstanding Principal": ["950000"], "PAR 30": ["0.039"],
                          "APR": ["0.35"]})
    report = compare(OURS.head(2), pl.concat([extra, reference()]), ShadowMapping.from_dict(MAPPING))
    result = statuses(report)
    assert result[("2026-07-31", "opb")] == "missing_ours"
    assert result[("2026-10-31", "par30")] == "missing_ours"
    report = compare(OURS, reference().head(2), ShadowMapping.from_dict(MAPPING))
    assert statuses(report)[("2026-10-31", "weighted_apr")] == "missing_reference"
    assert not report.ok


def test_blank_values_are_equal_only_when_both_are_blank():
    ours = OURS.with_columns(pl.when(pl.col("month_end") == date(2026, 8, 31)).then(None)
                             .otherwise(pl.col("par30")).alias("par30"))
    report = compare(ours, reference(**{"PAR 30": ["", "0.0410", ""]}), ShadowMapping.from_dict(MAPPING))
    result = statuses(report)
    assert result[("2026-08-31", "par30")] == "ok"
    assert result[("2026-10-31", "par30")] == "off"


def test_unknown_columns_and_duplicate_months_are_explained():
    with pytest.raises(ValueError, match="reference lacks column"):
        compare(OURS, reference().rename({"APR": "Yield"}), ShadowMapping.from_dict(MAPPING))
    with pytest.raises(ValueError, match="more than one row for month_end 2026-09-30"):
        compare(OURS, pl.concat([reference(), reference().slice(1, 1)]), ShadowMapping.from_dict(MAPPING))
    with pytest.raises(ValueError, match="not a date"):
        compare(OURS, reference(**{"Month End": ["Aug", "2026-09", "2026-10"]}), ShadowMapping.from_dict(MAPPING))
    with pytest.raises(ValueError, match="lists no KPI"):
        ShadowMapping.from_dict({"kpis": {}})


def test_run_shadow_reads_the_files_and_writes_csv_and_markdown(tmp_path):
    csv_path = tmp_path / "legacy_kpis.csv"
    reference(**{"PAR 30": ["0.0402", "0.0500", "0.0430"]}).write_csv(csv_path)
    mapping_path = tmp_path / "shadow.yaml"
    mapping_path.write_text(yaml.safe_dump(MAPPING))
    report = run_shadow(OURS, csv_path, mapping_path, tmp_path / "out")
    csv_out, md_out = report.written
    written = pl.read_csv(csv_out)
    assert written.columns == ["month_end", "kpi", "ours", "reference", "abs_diff", "rel_diff", "tolerance", "status"]
    assert written.filter(pl.col("status") == "off").height == 1
    markdown = md_out.read_text()
    assert "**FAIL**" in markdown and "| 2026-09-30 | par30 |" in markdown
