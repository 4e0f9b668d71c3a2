"""Contract validation: valid edge cases pass, each defect is named by file, row, column and rule."""

import datetime as dt

from abaco_assets.lib.validation import validate_csv
from abaco_assets_tests.fixtures.landing_writer import csv_bytes, customer, loan
from contracts.registry import CONTRACT_VERSIONS

TAPE_DATE = dt.date(2026, 1, 31)


def _validate(source, table, data):
    return validate_csv(data, file="f.csv", versions=CONTRACT_VERSIONS[(source, table)], delivery_date=TAPE_DATE)


def _loans(*rows):
    return csv_bytes("cascade", "loan_data", list(rows))


def test_valid_tape_with_bom_quoted_comma_and_defaults():
    data = b"\xef\xbb\xbf" + _loans(loan("L1", "C1", origination_fee=None))
    result = _validate("cascade", "loan_data", data)
    assert result.ok, [v.render() for v in result.violations]
    row = result.frame.row(0, named=True)
    assert str(row["origination_fee"]) == "0.000000"  # default applied
    customers = csv_bytes("cascade", "customer_data", [customer("C1", customer_name="Pérez, Juan y Asociados")])
    assert b'"P\xc3\xa9rez, Juan y Asociados"' in customers
    assert _validate("cascade", "customer_data", customers).ok


def test_absent_optional_column_is_valid():
    data = _loans(loan("L1", "C1")).decode()
    header, row = data.splitlines()
    cut = header.split(",").index("TPV")
    strip = lambda line: ",".join(v for i, v in enumerate(line.split(",")) if i != cut)  # noqa: E731
    result = _validate("cascade", "loan_data", f"{strip(header)}\n{strip(row)}\n".encode())
    assert result.ok and result.frame["tpv"].null_count() == 1


def test_renamed_header_names_the_column_and_guesses_the_rename():
    data = _loans(loan("L1", "C1")).replace(b"Loan ID", b"LoanID", 1)
    result = _validate("cascade", "loan_data", data)
    assert not result.ok
    missing = [v for v in result.violations if v.rule == "header.missing_column"]
    assert missing[0].column == "Loan ID" and "LoanID" in missing[0].hint and missing[0].row == 1


def test_percent_looking_apr_is_rejected_with_the_hint():
    result = _validate("cascade", "loan_data", _loans(loan("L1", "C1"), loan("L2", "C1", interest_rate_apr="36")))
    (violation,) = result.violations
    assert (violation.rule, violation.row, violation.column, violation.value) == ("le", 3, "Interest Rate APR", "36.000000")
    assert "percent" in violation.hint
    assert "f.csv, row 3, column 'Interest Rate APR': rule le" in violation.render()


def test_type_null_enum_unique_and_cross_column_rules():
    result = _validate("cascade", "loan_data", _loans(
        loan("L1", "C1", disbursement_amount="1,000.00"),
        loan("L1", "C1", loan_status="Paid"),
        loan("L3", None),
        loan("L4", "C1", loan_status="Complete"),  # outstanding 1000 on a Complete loan
        loan("L5", "C1", disbursement_date="2026-02-01", maturity_date="2027-02-01"),
        loan("L6", "C1", disbursement_amount="10.005"),
    ))
    found = {(v.rule, v.row) for v in result.violations}
    assert ("type.decimal", 2) in found
    assert ("unique", 2) in found and ("unique", 3) in found
    assert ("isin", 3) in found
    assert ("null", 4) in found
    assert ("closed_loans_have_zero_outstanding", 5) in found
    assert ("not_after_delivery", 6) in found
    assert ("type.decimal_scale", 7) in found


def test_digits_of_other_scripts_are_type_errors_not_silent_nulls():
    # Arabic-Indic digits are Unicode digits: a \d screen let them through and the cast made them
    # null, so an optional amount (TPV) vanished from an accepted tape.
    result = _validate("cascade", "loan_data", _loans(
        loan("L1", "C1", tpv="١٥٠٠.٠٠"),
        loan("L2", "C1", days_past_due="٠"),
        loan("L3", "C1", disbursement_date="٢٠٢٦-01-10"),
    ))
    assert not result.ok
    found = {(v.rule, v.row, v.column) for v in result.violations}
    assert ("type.decimal", 2, "TPV") in found
    assert ("type.integer", 3, "Days in Default") in found
    assert ("type.date", 4, "Disbursement Date") in found
    assert not any(v.rule == "null" for v in result.violations)  # named as what they are, once


def test_amounts_beyond_the_typed_precision_are_rejected_not_nulled():
    # decimal(18, 2) holds 16 digits before the point, decimal(18, 6) 12: the cast makes a longer
    # value null, so an optional TPV vanished and an Origination Fee became its default 0.
    result = _validate("cascade", "loan_data", _loans(
        loan("L1", "C1", tpv="99999999999999999.00"),
        loan("L2", "C1", origination_fee="9999999999999.5"),
        loan("L3", "C1", tpv="0000000000000001500.00", origination_fee="999999999999.999999"),
    ))
    assert not result.ok
    found = {(v.rule, v.row, v.column) for v in result.violations}
    assert found == {("type.decimal_range", 2, "TPV"), ("type.decimal_range", 3, "Origination Fee")}
    # leading zeros do not count, and the largest value that fits passes
    fine = _validate("cascade", "loan_data", _loans(
        loan("L3", "C1", tpv="0000000000000001500.00", origination_fee="999999999999.999999")))
    assert fine.ok, [v.render() for v in fine.violations]
    row = fine.frame.row(0, named=True)
    assert (str(row["tpv"]), str(row["origination_fee"])) == ("1500.00", "999999999999.999999")


def test_malformed_inputs_are_explained_not_raised():
    assert _validate("collections", "collections", b"").violations[0].rule == "file.empty"
    assert _validate("collections", "collections", b"payment_id,amount\n\xff\xfe\n").violations[0].rule == "file.encoding"
    semicolons = b"payment_id;loan_id;received_date;amount;channel;is_recovery\nP1;L1;2026-01-31;1;cash;false\n"
    assert _validate("collections", "collections", semicolons).violations[0].rule == "file.delimiter"


def test_header_only_files():
    header_only = csv_bytes("collections", "collections", [])
    assert _validate("collections", "collections", header_only).ok
    assert _validate("cascade", "loan_data", _loans()).violations[0].rule == "file.empty_table"


def test_pii_values_are_masked_outside_the_secure_zone():
    data = csv_bytes("cascade", "customer_data", [customer("C1", segment="Nope", tax_id="0614-999999-101-1")]
                     + [customer("C1", tax_id="0614-999999-101-1")])
    result = _validate("cascade", "customer_data", data)
    masked = result.report(mask_pii=True)
    clear = result.report(mask_pii=False)
    assert "0614-999999-101-1" not in str(masked)
    assert any(v["column"] == "Segment" and v["value"] == "Nope" for v in masked["violations"])
    assert "C1" in str(clear)


def test_structural_defects_name_the_rule_and_row():
    good = csv_bytes("collections", "collections", [
        dict(payment_id="P1", loan_id="L1", received_date="2026-01-31", amount="10.00", channel="cash",
             is_recovery="false"),
        dict(payment_id="P2", loan_id="L2", received_date="2026-01-31", amount="12.00", channel="card",
             is_recovery="false"),
    ])
    truncated = good.rsplit(b"\n", 2)[0] + b"\nP2,L2,2026-01-31"
    result = _validate("collections", "collections", truncated)
    assert [(v.rule, v.row) for v in result.violations] == [("file.malformed_csv", 3)]
    extra_field = good.replace(b"card,false", b"card,false,oops")
    assert _validate("collections", "collections", extra_field).violations[0].rule == "file.malformed_csv"
    unterminated = good.replace(b"P2,", b'"P2,')
    assert _validate("collections", "collections", unterminated).violations[0].rule == "file.malformed_csv"
    huge = good.replace(b"P2,", b"P" + b"9" * 1_000_000 + b",")
    (violation,) = _validate("collections", "collections", huge).violations
    assert (violation.rule, violation.row) == ("file.field_too_long", 3)


def test_sql_in_a_header_is_just_an_unknown_column():
    data = csv_bytes("collections", "collections", []).replace(b"channel", b"channel; DROP TABLE marts.x;--")
    rules = {v.rule for v in _validate("collections", "collections", data).violations}
    assert rules == {"header.missing_column", "header.unknown_column"}


def _mutations(frame, contract, delivery_date):
    """(what, frame) pairs, each breaking one rule of the contract's pandera schema."""
    import polars as pl

    from contracts.derive import _bound, column_specs

    out = []
    first = lambda name, value, dtype: frame.with_columns(  # noqa: E731
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(value, dtype=dtype)).otherwise(pl.col(name)).alias(name))
    for spec in column_specs(contract):
        dtype = frame.schema[spec.name]
        if not spec.nullable:
            out.append((f"{spec.name} null", first(spec.name, None, dtype)))
        if spec.kind == "enum" and dtype == pl.String:
            out.append((f"{spec.name} enum", first(spec.name, "not-a-member", dtype)))
        if spec.ge is not None:
            out.append((f"{spec.name} ge", first(spec.name, _bound(spec, spec.ge) - 1, dtype)))
        if spec.gt is not None:
            out.append((f"{spec.name} gt", first(spec.name, _bound(spec, spec.gt), dtype)))
        if spec.le is not None:
            out.append((f"{spec.name} le", first(spec.name, _bound(spec, spec.le) + 1, dtype)))
        if spec.pattern:
            out.append((f"{spec.name} pattern", first(spec.name, "??", dtype)))
        if spec.not_after_delivery:
            out.append((f"{spec.name} after delivery", first(spec.name, delivery_date + dt.timedelta(days=1), dtype)))
        if spec.equals_delivery:
            out.append((f"{spec.name} not delivery", first(spec.name, delivery_date - dt.timedelta(days=1), dtype)))
        if spec.unique and frame.height > 1:
            out.append((f"{spec.name} unique", first(spec.name, frame[spec.name][1], dtype)))
    for group in contract.unique_together[:1]:
        if frame.height > 1:
            out.append((f"{group} unique together", pl.concat([frame, frame.head(1)])))
    return out


def test_the_one_pass_check_never_accepts_what_pandera_rejects(tmp_path):
    """The fast path of validation (contracts.derive.passes_in_one_pass) against pandera itself,
    on every table of a generated delivery and one mutation per rule of its contract."""
    import pandera.errors

    from abaco_assets.lib.generator import generate_landing
    from abaco_assets.lib.landing import scan_landing
    from contracts.derive import pandera_schema, passes_in_one_pass

    generate_landing(tmp_path, loans=40, months=1, seed=5, delinquency_cadence="month-end")
    checked = 0
    for item in scan_landing(tmp_path).files:
        result = validate_csv(item.read(), file=item.key, versions=CONTRACT_VERSIONS[(item.source, item.table)],
                              delivery_date=item.delivery_date)
        assert result.ok
        assert passes_in_one_pass(result.frame, result.contract, item.delivery_date)
        schema = pandera_schema(result.contract, item.delivery_date)
        if result.frame.height == 0:  # a header-only daily file: pandera accepts it too; a missing column is still refused
            schema.validate(result.frame)
            assert not passes_in_one_pass(result.frame.drop(result.frame.columns[-1]), result.contract,
                                          item.delivery_date)
            continue
        for what, broken in _mutations(result.frame, result.contract, item.delivery_date):
            try:
                schema.validate(broken, lazy=True)
                pandera_rejects = False
            except (pandera.errors.SchemaErrors, pandera.errors.SchemaError):
                pandera_rejects = True
            if pandera_rejects:
                assert not passes_in_one_pass(broken, result.contract, item.delivery_date), f"{item.key}: {what}"
                checked += 1
    assert checked > 40  # the mutations did break rules
