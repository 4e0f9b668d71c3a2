"""The contracts are the one source of truth: everything derived must agree with them."""

import datetime as dt

import pytest

from contracts.derive import column_specs, pandera_schema, typed_polars_schema
from contracts.registry import CONTRACT_VERSIONS, all_latest
from contracts.render import DBT_SOURCES_PATH, dbt_sources_text


def test_committed_dbt_sources_match_the_contracts():
    assert DBT_SOURCES_PATH.read_text() == dbt_sources_text(), (
        "dbt_project/models/sources.yml is stale: run `python -m contracts.render`"
    )


def test_every_feed_table_of_feeds_md_has_a_contract():
    assert set(CONTRACT_VERSIONS) == {
        ("cascade", "loan_data"), ("cascade", "customer_data"), ("cascade", "payment_schedule"),
        ("cascade", "historic_real_payment"), ("cascade", "collateral"),
        ("collections", "collections"), ("delinquency", "delinquency"),
    }


@pytest.mark.parametrize("contract", all_latest(), ids=lambda c: c.contract_id())
def test_contract_derivations_are_consistent(contract):
    specs = column_specs(contract)
    headers = [s.header for s in specs]
    assert len(headers) == len(set(headers)), "a header appears twice"
    schema = pandera_schema(contract, dt.date(2026, 1, 31))
    assert list(schema.columns) == [s.name for s in specs]
    typed = typed_polars_schema(contract)
    assert next(iter(typed)) == "delivery_date"
    # PII never reaches the typed zone in clear: dropped or renamed to *_hmac
    for spec in specs:
        if spec.pii == "drop":
            assert spec.name not in typed
        if spec.pii == "hash":
            assert spec.name not in typed and f"{spec.name}_hmac" in typed


def test_feeds_md_types_and_flags_are_declared():
    loan = {s.name: s for s in column_specs(CONTRACT_VERSIONS[("cascade", "loan_data")][-1])}
    assert loan["disbursement_amount"].scale == 2 and loan["disbursement_amount"].gt == 0
    assert loan["interest_rate_apr"].le == 2 and "percent" in loan["interest_rate_apr"].hint
    assert loan["tpv"].header_required is False and loan["origination_fee"].default == 0
    assert loan["write_off_date"].header_required and loan["write_off_date"].nullable
    customer = {s.name: s for s in column_specs(CONTRACT_VERSIONS[("cascade", "customer_data")][-1])}
    assert {n for n, s in customer.items() if s.pii} == {"customer_name", "tax_id", "email", "phone"}


def test_versions_coexist_and_the_header_decides():
    from abaco_assets.lib.validation import validate_csv
    from abaco_assets_tests.fixtures.landing_writer import csv_bytes, loan

    versions = CONTRACT_VERSIONS[("cascade", "loan_data")]
    assert [c.version for c in versions] == [1, 2]
    v1_file = csv_bytes("cascade", "loan_data", [loan("L1", "C1")], omit=("loan_purpose",))
    v2_file = csv_bytes("cascade", "loan_data", [loan("L1", "C1", loan_purpose="working capital")])
    day = dt.date(2026, 1, 31)
    assert validate_csv(v1_file, file="a.csv", versions=versions, delivery_date=day).contract_id == "cascade/loan_data@v1"
    v2 = validate_csv(v2_file, file="b.csv", versions=versions, delivery_date=day)
    assert v2.ok and v2.contract_id == "cascade/loan_data@v2"
    drift = validate_csv(v2_file.replace(b"Loan Purpose", b"Loan Purpose Code"), file="c.csv", versions=versions,
                         delivery_date=day)
    (unknown,) = [v for v in drift.violations if v.rule == "header.unknown_column"]
    assert "cascade/loan_data@v2 (closest version; schema drift)" in unknown.message


def test_contracts_diff_prints_what_changed():
    from contracts.derive import diff_contracts
    from contracts.registry import find

    assert diff_contracts(find("cascade/loan_data", "v1"), find("cascade/loan_data", "v2")) == [
        "+ added   loan_purpose (header 'Loan Purpose'): optional; string"]
    assert diff_contracts(find("collections/collections", "v1"), find("collections/collections", "v1")) == [
        "no differences"]
