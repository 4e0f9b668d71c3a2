"""The KPI marts against a portfolio small enough to compute by hand.

Every expected number below is a literal worked out on paper from the data in
this file (the arithmetic is in the comments), never by the code under test.
The data goes in as typed Parquet deliveries (typed_fixture), `dbt build`
runs as a subprocess exactly as the platform runs it, and the marts are read
back from ``$ABACO_DATA/warehouse.duckdb``. Money is compared to the cent,
ratios to 1e-9, NULL ratios (denominator 0) must be NULL.

The portfolio: two customers, C1 (segment Gob) and C2 (segment Top); eight
loans over both products; Cascade tapes on

    2024-04-30  month-end of Apr 2024 (L01, L02 only)
    2025-01-15  mid-month tape: NOT a month-end snapshot, its different values
                (a payment still Settled, another schedule, other DPDs) must
                never reach a mart
    2025-01-31  month-end of Jan 2025
    2025-02-27  month-end of Feb 2025; the 28th is after month_end
    (March 2025 has no tape: no row, no roll rates for April, and April's
     12-month average skips it while its payments still count)
    2025-04-30  month-end of Apr 2025; Apr 2024 is just outside its window

The data is contract-valid (statuses vs DPD and outstanding, write-off
fields only when Written Off, totals equal their parts, every loan stays in
later tapes, OPB rolls forward exactly between month-end tapes), so the same
portfolio can be replayed through the CSV landing path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from abaco_assets_tests.integration.typed_fixture import write_cascade_tape, write_delivery, write_schema_files

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT = str(Path(sys.executable).parent / "dbt")

d = dt.date.fromisoformat

# ---------------------------------------------------------------------------
# The portfolio
# ---------------------------------------------------------------------------

CUSTOMERS = [
    {"customer_id": "C1", "tax_id_hmac": "hmac-tax-c1", "email_hmac": "hmac-mail-c1", "segment": "Gob",
     "industry": "Public sector", "region": "San Salvador", "kam_id": "KAM-1", "legal_type": "government"},
    {"customer_id": "C2", "tax_id_hmac": "hmac-tax-c2", "email_hmac": None, "segment": "Top",
     "industry": "Retail", "region": "La Libertad", "kam_id": "KAM-2", "legal_type": "company"},
]

# Static loan terms (the same in every tape).
LOAN_TERMS = {
    "L01": dict(customer_id="C1", product_type="term_loan", disbursement_date=d("2024-03-10"),
                disbursement_amount="12000.00", interest_rate_apr="0.24", term=24, term_unit="months",
                payment_frequency="monthly", maturity_date=d("2026-03-10")),
    "L02": dict(customer_id="C2", product_type="term_loan", disbursement_date=d("2024-04-02"),
                disbursement_amount="4000.00", interest_rate_apr="0.26", term=12, term_unit="months",
                payment_frequency="monthly", maturity_date=d("2025-03-24")),
    "L03": dict(customer_id="C1", product_type="factoring", disbursement_date=d("2024-10-05"),
                disbursement_amount="5000.00", tpv="5600.00", interest_rate_apr="0.30", term=111,
                term_unit="days", payment_frequency="bullet", maturity_date=d("2025-01-24"),
                origination_fee="50.00", origination_fee_taxes="6.50"),
    "L04": dict(customer_id="C2", product_type="term_loan", disbursement_date=d("2024-10-28"),
                disbursement_amount="8000.00", interest_rate_apr="0.20", term=12, term_unit="months",
                payment_frequency="monthly", maturity_date=d("2025-10-28")),
    "L05": dict(customer_id="C2", product_type="factoring", disbursement_date=d("2024-10-02"),
                disbursement_amount="3000.00", interest_rate_apr="0.36", term=91, term_unit="days",
                payment_frequency="bullet", maturity_date=d("2025-01-01")),
    "L06": dict(customer_id="C1", product_type="term_loan", disbursement_date=d("2024-10-20"),
                disbursement_amount="6000.00", interest_rate_apr="0.18", term=12, term_unit="months",
                payment_frequency="monthly", maturity_date=d("2025-10-20")),
    "L07": dict(customer_id="C2", product_type="term_loan", disbursement_date=d("2025-01-10"),
                disbursement_amount="2500.00", interest_rate_apr="0.33", term=6, term_unit="months",
                payment_frequency="monthly", maturity_date=d("2025-07-10")),
    "L08": dict(customer_id="C1", product_type="factoring", disbursement_date=d("2025-04-05"),
                disbursement_amount="1000.00", tpv="1200.00", interest_rate_apr="0.30", term=60,
                term_unit="days", payment_frequency="bullet", maturity_date=d("2025-06-04")),
}

# Loan state per tape: (loan_status, outstanding_principal, days_past_due, write_off_date, write_off_amount).
# A loan absent from a tape was not yet disbursed.
WO_L02 = (d("2025-02-20"), "2950.00")
WO_L03 = (d("2025-04-10"), "4800.00")
TAPE_STATES = {
    d("2024-04-30"): {
        "L01": ("Current", "11500.00", 0, None, None),
        "L02": ("Delinquent", "4000.00", 6, None, None),
    },
    d("2025-01-15"): {  # mid-month: deliberately different from 2025-01-31
        "L01": ("Current", "7000.00", 0, None, None),
        "L02": ("Default", "3000.00", 164, None, None),
        "L03": ("Current", "5000.00", 0, None, None),
        "L04": ("Current", "6000.00", 0, None, None),
        "L05": ("Delinquent", "3000.00", 14, None, None),
        "L06": ("Delinquent", "6000.00", 45, None, None),
        "L07": ("Current", "2500.00", 0, None, None),
    },
    d("2025-01-31"): {
        "L01": ("Current", "7000.00", 0, None, None),
        "L02": ("Default", "3000.00", 180, None, None),
        "L03": ("Delinquent", "5000.00", 7, None, None),
        "L04": ("Delinquent", "6000.00", 15, None, None),
        "L05": ("Delinquent", "3000.00", 30, None, None),
        "L06": ("Delinquent", "6000.00", 60, None, None),
        "L07": ("Current", "2500.00", 0, None, None),
    },
    d("2025-02-27"): {
        "L01": ("Delinquent", "7000.00", 1, None, None),
        "L02": ("Written Off", "0.00", 207, *WO_L02),
        "L03": ("Delinquent", "5000.00", 14, None, None),
        "L04": ("Delinquent", "5500.00", 29, None, None),
        "L05": ("Complete", "0.00", 0, None, None),
        "L06": ("Default", "6000.00", 90, None, None),
        "L07": ("Current", "2100.00", 0, None, None),
    },
    d("2025-04-30"): {
        "L01": ("Current", "6000.00", 0, None, None),
        "L02": ("Written Off", "0.00", 269, *WO_L02),
        "L03": ("Written Off", "0.00", 96, *WO_L03),
        "L04": ("Delinquent", "5000.00", 59, None, None),
        "L05": ("Complete", "0.00", 0, None, None),
        "L06": ("Default", "5900.00", 179, None, None),
        "L07": ("Delinquent", "1700.00", 89, None, None),
        "L08": ("Current", "1000.00", 0, None, None),
    },
}
TAPE_DATES = sorted(TAPE_STATES)

# Full payment history. Columns: id, loan, date, principal, interest, fee, other, tax, fee_tax,
# rebates, total (= principal + interest + fee + other + tax + fee_tax - rebates), final status.
PAYMENTS = [
    ("PAY01", "L01", "2024-04-10", "500.00", "240.00", 0, 0, 0, 0, 0, "740.00", "Settled"),
    ("PAY02", "L01", "2024-05-01", "4000.00", "230.00", 0, 0, 0, 0, 0, "4230.00", "Settled"),
    ("PAY03", "L02", "2024-06-15", "1000.00", "80.00", 0, 0, 0, 0, 0, "1080.00", "Settled"),
    ("PAY04", "L04", "2024-12-10", "2000.00", "250.00", 0, 0, 0, 0, 0, "2250.00", "Settled"),
    # 500 + 150 + 10 + 2.50 + 0 + 1.30 - 0 = 663.80
    ("PAY05", "L01", "2025-01-10", "500.00", "150.00", "10.00", "2.50", 0, "1.30", 0, "663.80", "Settled"),
    # Settled in the 2025-01-15 tape, Reversed (bounced) from the 2025-01-31 tape on.
    ("PAY06", "L07", "2025-01-12", "400.00", "20.00", 0, 0, 0, 0, 0, "420.00", "Reversed"),
    ("PAY07", "L02", "2025-02-05", "50.00", "10.00", 0, 0, 0, 0, 0, "60.00", "Settled"),
    ("PAY08", "L04", "2025-02-10", "500.00", "100.00", 0, 0, 0, 0, 0, "600.00", "Settled"),
    ("PAY09", "L07", "2025-02-10", "400.00", "68.75", 0, 0, 0, 0, 0, "468.75", "Settled"),
    # payoff of L05: 3000 + 135 + 45 + 15 + 17.55 + 5.85 - 20 = 3198.40
    ("PAY10", "L05", "2025-02-14", "3000.00", "135.00", "45.00", "15.00", "17.55", "5.85", "20.00", "3198.40",
     "Settled"),
    ("PAY11", "L07", "2025-03-10", "400.00", "57.75", 0, 0, 0, 0, 0, "457.75", "Settled"),  # March: no tape
    ("PAY12", "L03", "2025-03-15", "200.00", "50.00", 0, 0, 0, 0, 0, "250.00", "Settled"),  # March: no tape
    ("PAY13", "L01", "2025-04-10", "1000.00", "140.00", 0, 0, 0, 0, 0, "1140.00", "Settled"),
    ("PAY14", "L04", "2025-04-15", "500.00", "90.00", 0, 0, 0, 0, 0, "590.00", "Settled"),
    ("PAY15", "L06", "2025-04-20", "100.00", "90.00", 0, 0, 0, 0, 0, "190.00", "Settled"),
    ("PAY16", "L06", "2025-04-25", "500.00", "90.00", 0, 0, 0, 0, 0, "590.00", "Reversed"),
]
SETTLED_ONLY_IN = {("PAY06", d("2025-01-15"))}


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    return day.replace(year=day.year + month_index // 12, month=month_index % 12 + 1)


def _level_schedule(loan_id: str, first_due: str, count: int, principal: str, last_principal: str,
                    interest: str) -> list[dict[str, Any]]:
    """`count` monthly installments on the same day of month, flat interest, no fees."""
    rows = []
    for number in range(1, count + 1):
        installment_principal = Decimal(last_principal if number == count else principal)
        rows.append({"loan_id": loan_id, "installment_number": number,
                     "due_date": _add_months(d(first_due), number - 1),
                     "scheduled_principal": installment_principal, "scheduled_interest": Decimal(interest),
                     "scheduled_total": installment_principal + Decimal(interest)})
    return rows


SCHEDULES = {
    # 600.00 due on the 10th, 2024-04-10 (#1) .. 2026-03-10 (#24): 24 x 500 = 12,000
    "L01": _level_schedule("L01", "2024-04-10", 24, "500.00", "500.00", "100.00"),
    # 373.33 due on the 24th, 2024-04-24 .. 2025-03-24 (last 373.37): 11 x 333.33 + 333.37 = 4,000
    "L02": _level_schedule("L02", "2024-04-24", 12, "333.33", "333.37", "40.00"),
    # bullet: 5000 + 462.50 interest (5000 x 0.30 x 111/360) + 50 fee = 5,512.50
    "L03": [{"loan_id": "L03", "installment_number": 1, "due_date": d("2025-01-24"), "scheduled_principal": "5000.00",
             "scheduled_interest": "462.50", "scheduled_fee": "50.00", "scheduled_total": "5512.50"}],
    # 766.67 due on the 28th, 2024-11-28 .. 2025-10-28 (last 766.63): 11 x 666.67 + 666.63 = 8,000
    "L04": _level_schedule("L04", "2024-11-28", 12, "666.67", "666.63", "100.00"),
    # bullet: 3000 + 273.00 interest (3000 x 0.36 x 91/360) + 30 fee = 3,303.00
    "L05": [{"loan_id": "L05", "installment_number": 1, "due_date": d("2025-01-01"), "scheduled_principal": "3000.00",
             "scheduled_interest": "273.00", "scheduled_fee": "30.00", "scheduled_total": "3303.00"}],
    # 590.00 due on the 20th, 2024-11-20 .. 2025-10-20
    "L06": _level_schedule("L06", "2024-11-20", 12, "500.00", "500.00", "90.00"),
    # 466.67 due on the 10th, 2025-02-10 .. 2025-07-10 (last 466.65): 5 x 416.67 + 416.65 = 2,500
    "L07": _level_schedule("L07", "2025-02-10", 6, "416.67", "416.65", "50.00"),
    # bullet: 1000 + 50.00 interest (1000 x 0.30 x 60/360) = 1,050.00, due in June
    "L08": [{"loan_id": "L08", "installment_number": 1, "due_date": d("2025-06-04"), "scheduled_principal": "1000.00",
             "scheduled_interest": "50.00", "scheduled_total": "1050.00"}],
}
# As first booked in the mid-month tape, L07 was one installment due 2025-01-31; restructured by 2025-01-31.
MID_MONTH_L07_SCHEDULE = [{"loan_id": "L07", "installment_number": 1, "due_date": d("2025-01-31"),
                           "scheduled_principal": "2500.00", "scheduled_interest": "100.00",
                           "scheduled_total": "2600.00"}]

COLLATERAL = [{"loan_id": "L01", "collateral_type": "real_estate", "collateral_value": "15000.00"}]


def cascade_tape(tape_date: dt.date) -> dict[str, list[dict[str, Any]]]:
    """The five tables of the Cascade tape of ``tape_date`` (full book, full history)."""
    states = TAPE_STATES[tape_date]
    loans = []
    for loan_id, (status, outstanding, dpd, write_off_date, write_off_amount) in states.items():
        loans.append({"loan_id": loan_id, **LOAN_TERMS[loan_id], "currency": "USD",
                      "outstanding_principal": outstanding, "days_past_due": dpd, "loan_status": status,
                      "write_off_date": write_off_date, "write_off_amount": write_off_amount})
    schedule = [row for loan_id in states for row in SCHEDULES[loan_id]]
    if tape_date == d("2025-01-15"):
        schedule = [row for row in schedule if row["loan_id"] != "L07"] + MID_MONTH_L07_SCHEDULE
    payments = []
    for (payment_id, loan_id, day, principal, interest, fee, other, tax, fee_tax, rebates, total,
         status) in PAYMENTS:
        if d(day) > tape_date:
            continue
        payments.append({"payment_id": payment_id, "loan_id": loan_id, "payment_date": d(day),
                         "paid_principal": principal, "paid_interest": interest, "paid_fee": fee,
                         "paid_other": other, "paid_tax": tax, "paid_fee_tax": fee_tax, "rebates": rebates,
                         "paid_total": total,
                         "payment_status": "Settled" if (payment_id, tape_date) in SETTLED_ONLY_IN else status})
    return {"loan_data": loans, "customer_data": CUSTOMERS, "payment_schedule": schedule,
            "historic_real_payment": payments, "collateral": COLLATERAL if tape_date >= d("2025-01-31") else []}


def write_portfolio(data_dir: Path) -> None:
    write_schema_files(data_dir)
    for tape_date in TAPE_DATES:
        write_cascade_tape(data_dir, tape_date, cascade_tape(tape_date))
    # Cash of 2025-02-10 = PAY08 + PAY09 = 600.00 + 468.75 (the marts read Cascade, not this feed).
    write_delivery(data_dir, "collections", "collections", d("2025-02-10"), [
        {"payment_id": "PAY08", "loan_id": "L04", "received_date": d("2025-02-10"), "amount": "600.00",
         "channel": "bank_transfer", "is_recovery": False},
        {"payment_id": "PAY09", "loan_id": "L07", "received_date": d("2025-02-10"), "amount": "468.75",
         "channel": "direct_debit", "is_recovery": False},
    ])
    write_delivery(data_dir, "delinquency", "delinquency", d("2025-02-27"), [
        {"as_of_date": d("2025-02-27"), "loan_id": loan_id, "days_past_due": dpd, "overdue_principal": overdue,
         "overdue_interest": "0", "first_unpaid_due_date": first_unpaid, "collection_stage": stage}
        for loan_id, dpd, overdue, first_unpaid, stage in (
            ("L01", 1, "500.00", d("2025-02-26"), "early"),
            ("L03", 14, "5000.00", d("2025-02-13"), "early"),
            ("L04", 29, "666.67", d("2025-01-29"), "late"),
            ("L06", 90, "1500.00", d("2024-11-29"), "legal"),
            ("L07", 0, "0", None, "none"),
        )
    ])


# ---------------------------------------------------------------------------
# Expected kpi_portfolio_monthly, by hand
# ---------------------------------------------------------------------------

KPI_COLUMNS = [
    "month_end", "opb", "active_loans", "active_customers", "disbursed_amount", "disbursed_loans", "avg_ticket",
    "par1", "par7", "par15", "par30", "par60", "par90", "npl_ratio", "npl180_ratio", "writeoff_amount",
    "collected_principal", "collected_interest", "collected_fees", "collected_total", "revenue", "scheduled_due",
    "collection_rate", "weighted_apr", "top10_concentration", "hhi", "rotation_12m", "yield_12m",
]
COUNT_COLUMNS = {"active_loans", "active_customers", "disbursed_loans", "months_on_book"}
MONEY_COLUMNS = {"opb", "disbursed_amount", "avg_ticket", "writeoff_amount", "collected_principal",
                 "collected_interest", "collected_fees", "collected_total", "revenue", "scheduled_due",
                 "opb_from", "disbursed", "cum_default_principal", "cum_writeoff_amount"}

EXPECTED_PORTFOLIO = {
    # --- 2024-04-30: tape of Apr 2024. Active: L01 11,500.00 (C1, DPD 0, APR .24), L02 4,000.00 (C2, DPD 6, .26).
    d("2024-04-30"): {
        "opb": "15500.00",                  # 11,500 + 4,000
        "active_loans": 2, "active_customers": 2,
        "disbursed_amount": "4000.00",      # L02 disbursed 2024-04-02 (L01 was March)
        "disbursed_loans": 1,
        "avg_ticket": "4000.00",            # 4,000 / 1
        "par1": 0.25806451612903225,        # DPD 6 >= 1: 4,000 / 15,500 = 8/31
        "par7": 0.0,                        # 6 < 7: just below the threshold
        "par15": 0.0, "par30": 0.0, "par60": 0.0, "par90": 0.0, "npl_ratio": 0.0, "npl180_ratio": 0.0,
        "writeoff_amount": "0.00",
        "collected_principal": "500.00",    # PAY01 (2024-04-10)
        "collected_interest": "240.00",
        "collected_fees": "0.00",
        "collected_total": "740.00",
        "revenue": "240.00",                # 240 interest, no fees/rebates
        "scheduled_due": "973.33",          # L01 #1 04-10 600.00 + L02 #1 04-24 373.33
        "collection_rate": 0.7602765762896448,   # 740 / 973.33 = 74000/97333
        "weighted_apr": 0.24516129032258063,     # (.24 x 11,500 + .26 x 4,000) / 15,500 = 3,800 / 15,500
        "top10_concentration": 1.0,              # two customers, both in the top 10
        "hhi": 0.6170655567117586,               # (11,500/15,500)^2 + (4,000/15,500)^2 = (529 + 64)/961
        "rotation_12m": 0.03225806451612903,     # May 2023..Apr 2024 principal: PAY01 500 / 15,500 = 1/31
        "yield_12m": 0.015483870967741935,       # revenue 240 / average OPB of {2024-04-30} 15,500
    },
    # --- 2025-01-31 (the 2025-01-15 tape of the same month is ignored).
    # Active: L01 7,000 (C1, DPD 0, .24), L03 5,000 (C1, 7, .30), L04 6,000 (C2, 15, .20),
    #         L05 3,000 (C2, 30, .36), L06 6,000 (C1, 60, .18), L07 2,500 (C2, 0, .33), L02 3,000 (C2, 180, .26)
    d("2025-01-31"): {
        "opb": "32500.00",                  # 7,000 + 5,000 + 6,000 + 3,000 + 6,000 + 2,500 + 3,000
        "active_loans": 7, "active_customers": 2,
        "disbursed_amount": "2500.00",      # L07 disbursed 2025-01-10
        "disbursed_loans": 1,
        "avg_ticket": "2500.00",
        "par1": 0.7076923076923077,         # DPD>=1: L03 + L04 + L05 + L06 + L02 = 23,000 / 32,500 = 46/65
        "par7": 0.7076923076923077,         # DPD 7 is exactly on the threshold: same 23,000
        "par15": 0.5538461538461539,        # L04 (15, on it) + L05 + L06 + L02 = 18,000 / 32,500 = 36/65
        "par30": 0.36923076923076925,       # L05 (30) + L06 + L02 = 12,000 / 32,500 = 24/65
        "par60": 0.27692307692307694,       # L06 (60) + L02 = 9,000 / 32,500 = 18/65
        "par90": 0.09230769230769231,       # L02 (180) = 3,000 / 32,500 = 6/65
        "npl_ratio": 0.09230769230769231,   # = par90
        "npl180_ratio": 0.09230769230769231,  # L02 DPD 180 exactly: 3,000 / 32,500
        "writeoff_amount": "0.00",
        # In Jan: PAY05 only (PAY06 is Reversed in this tape, although Settled in the 01-15 tape)
        "collected_principal": "500.00",
        "collected_interest": "150.00",
        "collected_fees": "12.50",          # fee 10.00 + other 2.50
        "collected_total": "663.80",        # includes the 1.30 fee tax
        "revenue": "162.50",                # 150 + 10 + 2.50 - 0 rebates (taxes excluded)
        # Due in Jan from this tape's schedule: L01 #10 01-10 600.00 + L06 #3 01-20 590.00 + L02 #10 01-24 373.33
        # + L03 bullet 01-24 5,512.50 + L04 #3 01-28 766.67 + L05 bullet 01-01 3,303.00 = 11,145.50
        # (L07's 2,600.00 due 01-31 exists only in the 01-15 tape's schedule)
        "scheduled_due": "11145.50",
        "collection_rate": 0.05955766901440043,  # 663.80 / 11,145.50
        # (.24x7000 + .30x5000 + .20x6000 + .36x3000 + .18x6000 + .33x2500 + .26x3000) / 32,500
        # = (1,680 + 1,500 + 1,200 + 1,080 + 1,080 + 825 + 780) / 32,500 = 8,145 / 32,500
        "weighted_apr": 0.25061538461538463,
        "top10_concentration": 1.0,
        # C1 = L01 + L03 + L06 = 18,000; C2 = L04 + L05 + L07 + L02 = 14,500: (36/65)^2 + (29/65)^2 = 2137/4225
        "hhi": 0.5057988165680474,
        # Feb 2024..Jan 2025 principal: PAY01 500 + PAY02 4,000 + PAY03 1,000 + PAY04 2,000 + PAY05 500 = 8,000
        "rotation_12m": 0.24615384615384617,    # 8,000 / 32,500 = 16/65
        # revenue: 240 + 230 + 80 + 250 + 162.50 = 962.50; snapshots in window: 2024-04-30 and 2025-01-31,
        # average OPB (15,500 + 32,500) / 2 = 24,000; 962.50 / 24,000 = 77/1920
        "yield_12m": 0.04010416666666667,
    },
    # --- 2025-02-27. Active: L01 7,000 (C1, DPD 1), L03 5,000 (C1, 14), L04 5,500 (C2, 29), L06 6,000 (C1, 90),
    #     L07 2,100 (C2, 0). L05 Complete, L02 Written Off 2025-02-20 for 2,950.00 (DPD 207, not active).
    d("2025-02-27"): {
        "opb": "25600.00",                  # 7,000 + 5,000 + 5,500 + 6,000 + 2,100
        "active_loans": 5, "active_customers": 2,
        "disbursed_amount": "0.00", "disbursed_loans": 0,
        "avg_ticket": None,                 # 0 / 0 -> NULL
        "par1": 0.91796875,                 # L01 (1, on it) + L03 + L04 + L06 = 23,500 / 25,600
        "par7": 0.64453125,                 # L03 (14) + L04 + L06 = 16,500 / 25,600
        "par15": 0.44921875,                # 14 < 15: L04 + L06 = 11,500 / 25,600
        "par30": 0.234375,                  # 29 < 30: L06 = 6,000 / 25,600
        "par60": 0.234375,
        "par90": 0.234375,                  # L06 DPD 90 exactly
        "npl_ratio": 0.234375,
        "npl180_ratio": 0.0,                # L02 has DPD 207 but is written off, not active
        "writeoff_amount": "2950.00",       # L02, write_off_date 2025-02-20
        # In Feb (up to the 27th): PAY07 50/10 = 60.00, PAY08 500/100 = 600.00, PAY09 400/68.75 = 468.75,
        # PAY10 3,000/135/fee 45/other 15/tax 17.55/fee tax 5.85/rebates 20 = 3,198.40
        "collected_principal": "3950.00",   # 50 + 500 + 400 + 3,000
        "collected_interest": "313.75",     # 10 + 100 + 68.75 + 135
        "collected_fees": "60.00",          # 45 + 15
        "collected_total": "4327.15",       # 60 + 600 + 468.75 + 3,198.40
        "revenue": "353.75",                # 313.75 + 60 - 20
        # Due Feb 1..27: L01 #11 02-10 600.00 + L07 #1 02-10 466.67 + L06 #4 02-20 590.00
        # + L02 #11 02-24 373.33 (written off, still scheduled) = 2,030.00; L04 #4 due 02-28 is after month_end
        "scheduled_due": "2030.00",
        "collection_rate": 2.131600985221675,    # 4,327.15 / 2,030.00
        # (.24x7000 + .30x5000 + .20x5500 + .18x6000 + .33x2100) = 1,680 + 1,500 + 1,100 + 1,080 + 693 = 6,053
        "weighted_apr": 0.2364453125,           # 6,053 / 25,600
        "top10_concentration": 1.0,
        # C1 = 7,000 + 5,000 + 6,000 = 18,000; C2 = 5,500 + 2,100 = 7,600: (45/64)^2 + (19/64)^2 = 2386/4096
        "hhi": 0.58251953125,
        # Mar 2024..Feb 2025: 8,000 (as in Jan) + 50 + 500 + 400 + 3,000 = 11,950 / 25,600
        "rotation_12m": 0.466796875,
        # revenue 962.50 + 353.75 = 1,316.25; snapshots 2024-04-30, 2025-01-31, 2025-02-27:
        # average (15,500 + 32,500 + 25,600) / 3 = 24,533.33..; 1,316.25 x 3 / 73,600 = 3159/58880
        "yield_12m": 0.053651494565217395,
    },
    # --- no 2025-03 row: March has no tape.
    # --- 2025-04-30. Active: L01 6,000 (C1, 0, .24), L04 5,000 (C2, 59, .20), L06 5,900 (C1, 179, .18),
    #     L07 1,700 (C2, 89, .33), L08 1,000 (C1, 0, .30). L03 written off 2025-04-10 for 4,800.00.
    d("2025-04-30"): {
        "opb": "19600.00",                  # 6,000 + 5,000 + 5,900 + 1,700 + 1,000
        "active_loans": 5, "active_customers": 2,
        "disbursed_amount": "1000.00",      # L08 disbursed 2025-04-05
        "disbursed_loans": 1,
        "avg_ticket": "1000.00",
        "par1": 0.6428571428571429,         # L04 + L06 + L07 = 12,600 / 19,600 = 9/14
        "par7": 0.6428571428571429,
        "par15": 0.6428571428571429,
        "par30": 0.6428571428571429,
        "par60": 0.3877551020408163,        # 59 < 60: L06 + L07 = 7,600 / 19,600 = 19/49
        "par90": 0.3010204081632653,        # 89 < 90: L06 = 5,900 / 19,600 = 59/196
        "npl_ratio": 0.3010204081632653,
        "npl180_ratio": 0.0,                # 179 < 180
        "writeoff_amount": "4800.00",       # L03 only (L02's Feb write-off is not in April)
        # In Apr: PAY13 1,000/140 = 1,140.00, PAY14 500/90 = 590.00, PAY15 100/90 = 190.00; PAY16 Reversed
        "collected_principal": "1600.00",
        "collected_interest": "320.00",
        "collected_fees": "0.00",
        "collected_total": "1920.00",
        "revenue": "320.00",
        # Due in Apr: L01 #13 04-10 600.00 + L07 #3 04-10 466.67 + L06 #6 04-20 590.00 + L04 #6 04-28 766.67
        "scheduled_due": "2423.34",
        "collection_rate": 0.7922949317883582,   # 1,920 / 2,423.34
        # .24x6000 + .20x5000 + .18x5900 + .33x1700 + .30x1000 = 1,440 + 1,000 + 1,062 + 561 + 300 = 4,363
        "weighted_apr": 0.22260204081632654,    # 4,363 / 19,600
        "top10_concentration": 1.0,
        # C1 = 6,000 + 5,900 + 1,000 = 12,900; C2 = 5,000 + 1,700 = 6,700: (12,900^2 + 6,700^2) / 19,600^2
        "hhi": 0.5500312369845898,
        # May 2024..Apr 2025 (PAY01 of 2024-04-10 falls out, PAY02 of 2024-05-01 is the first day in):
        # 4,000 + 1,000 + 2,000 + 500 + 50 + 500 + 400 + 3,000 + 400 (Mar) + 200 (Mar) + 1,000 + 500 + 100 = 13,650
        "rotation_12m": 0.6964285714285714,     # 13,650 / 19,600 = 39/56
        # revenue: 230 + 80 + 250 + 162.50 + 353.75 + 57.75 (Mar) + 50 (Mar) + 320 = 1,504.00;
        # snapshots in May 2024..Apr 2025: 2025-01-31, 2025-02-27, 2025-04-30 (Apr 2024 out, March none):
        # average (32,500 + 25,600 + 19,600) / 3 = 25,900; 1,504 / 25,900 = 376/6475
        "yield_12m": 0.05806949806949807,
    },
}

# kpi_roll_rates: only 2025-02-27 has rows (Dec 2024 and Mar 2025 have no tape; neither has Mar 2024).
# Active on 2025-01-31 -> bucket on 2025-02-27:
#   current: L01 7,000 -> 1-29 (DPD 1); L07 2,500 -> current
#   1-29:    L03 5,000 (7 -> 14) and L04 6,000 (15 -> 29) stay in 1-29
#   30-59:   L05 3,000 -> paid_off (Complete)
#   60-89:   L06 6,000 -> 90-179 (DPD 90)
#   180+:    L02 3,000 -> written_off (written off with DPD 207: written_off takes precedence)
EXPECTED_ROLL_RATES = {
    (d("2025-02-27"), "current", "1-29"): ("7000.00", 0.7368421052631579),   # 7,000 / 9,500 = 14/19
    (d("2025-02-27"), "current", "current"): ("2500.00", 0.2631578947368421),  # 2,500 / 9,500 = 5/19
    (d("2025-02-27"), "1-29", "1-29"): ("11000.00", 1.0),                     # 5,000 + 6,000
    (d("2025-02-27"), "30-59", "paid_off"): ("3000.00", 1.0),
    (d("2025-02-27"), "60-89", "90-179"): ("6000.00", 1.0),
    (d("2025-02-27"), "180+", "written_off"): ("3000.00", 1.0),
}

# kpi_vintage_curves: (vintage_month, month_end) -> (months_on_book, disbursed, cum_default_principal,
# cum_default_rate, cum_writeoff_amount, cum_writeoff_rate).
# First default snapshots: L02 at 2025-01-31 (DPD 180, exposure = outstanding 3,000.00, not the later
# write-off of 2,950.00); L06 at 2025-02-27 (DPD 90, 6,000.00, not 5,900.00 on 2025-04-30);
# L03 at 2025-04-30 (already Written Off there: exposure = write_off_amount 4,800.00).
EXPECTED_VINTAGES = {
    (d("2024-03-01"), d("2024-04-30")): (1, "12000.00", "0.00", 0.0, "0.00", 0.0),     # L01 only
    (d("2024-03-01"), d("2025-01-31")): (10, "12000.00", "0.00", 0.0, "0.00", 0.0),
    (d("2024-03-01"), d("2025-02-27")): (11, "12000.00", "0.00", 0.0, "0.00", 0.0),
    (d("2024-03-01"), d("2025-04-30")): (13, "12000.00", "0.00", 0.0, "0.00", 0.0),
    (d("2024-04-01"), d("2024-04-30")): (0, "4000.00", "0.00", 0.0, "0.00", 0.0),      # L02 only
    (d("2024-04-01"), d("2025-01-31")): (9, "4000.00", "3000.00", 0.75, "0.00", 0.0),  # 3,000 / 4,000
    # write-off 2,950 dated 2025-02-20 <= 2025-02-27: 2,950 / 4,000 = 0.7375
    (d("2024-04-01"), d("2025-02-27")): (10, "4000.00", "3000.00", 0.75, "2950.00", 0.7375),
    (d("2024-04-01"), d("2025-04-30")): (12, "4000.00", "3000.00", 0.75, "2950.00", 0.7375),
    # L03 5,000 + L04 8,000 + L05 3,000 + L06 6,000 = 22,000
    (d("2024-10-01"), d("2025-01-31")): (3, "22000.00", "0.00", 0.0, "0.00", 0.0),
    (d("2024-10-01"), d("2025-02-27")): (4, "22000.00", "6000.00", 0.2727272727272727, "0.00", 0.0),  # 3/11
    # 6,000 (L06) + 4,800 (L03) = 10,800 / 22,000 = 27/55; write-offs 4,800 / 22,000 = 12/55
    (d("2024-10-01"), d("2025-04-30")): (6, "22000.00", "10800.00", 0.4909090909090909, "4800.00",
                                         0.21818181818181817),
    (d("2025-01-01"), d("2025-01-31")): (0, "2500.00", "0.00", 0.0, "0.00", 0.0),      # L07 only
    (d("2025-01-01"), d("2025-02-27")): (1, "2500.00", "0.00", 0.0, "0.00", 0.0),
    (d("2025-01-01"), d("2025-04-30")): (3, "2500.00", "0.00", 0.0, "0.00", 0.0),      # 89 < 90
    (d("2025-04-01"), d("2025-04-30")): (0, "1000.00", "0.00", 0.0, "0.00", 0.0),      # L08 only
}

# A few cuts, each ratio inside its cut.
EXPECTED_BY_SEGMENT = {
    # Gob = C1: L01 6,000 (0), L06 5,900 (179), L08 1,000 (0, disbursed Apr); L03 written off 4,800.
    (d("2025-04-30"), "Gob"): {
        "opb": "12900.00", "active_loans": 3, "active_customers": 1,
        "disbursed_amount": "1000.00", "writeoff_amount": "4800.00",
        "par1": 0.4573643410852713,          # 5,900 / 12,900 = 59/129
        "par90": 0.4573643410852713,
        "collected_total": "1330.00",        # PAY13 1,140 + PAY15 190
        "scheduled_due": "1190.00",          # L01 600 + L06 590
        "collection_rate": 1.1176470588235294,  # 1,330 / 1,190 = 19/17
        "hhi": 1.0, "top10_concentration": 1.0,
        # principal May 2024..Apr 2025 on C1 loans: L01 4,000 + 500 + 1,000, L03 200, L06 100 = 5,800
        "rotation_12m": 0.4496124031007752,  # 5,800 / 12,900 = 58/129
        # revenue: L01 230 + 162.50 + 140, L03 50, L06 90 = 672.50; Gob OPB 18,000 (Jan), 18,000 (Feb),
        # 12,900 (Apr): average 16,300; 672.50 / 16,300 = 269/6520
        "yield_12m": 0.04125766871165644,
    },
    # Top = C2: L04 5,000 (59), L07 1,700 (89); L02 written off in Feb, L05 Complete.
    (d("2025-04-30"), "Top"): {
        "opb": "6700.00", "active_loans": 2, "active_customers": 1,
        "disbursed_amount": "0.00", "writeoff_amount": "0.00",
        "avg_ticket": None,
        "par1": 1.0,                         # 6,700 / 6,700
        "par60": 0.2537313432835821,         # L07 1,700 / 6,700 = 17/67
        "par90": 0.0,
        "collected_total": "590.00",         # PAY14
        "scheduled_due": "1233.34",          # L04 766.67 + L07 466.67
        "collection_rate": 0.47837579256328344,  # 590 / 1,233.34
        # L02 1,000 + 50, L04 2,000 + 500 + 500, L05 3,000, L07 400 + 400 = 7,850 (> OPB: rotation above 1)
        "rotation_12m": 1.171641791044776,   # 7,850 / 6,700 = 157/134
        # revenue: L02 80 + 10, L04 250 + 100 + 90, L05 135 + 45 + 15 - 20, L07 68.75 + 57.75 = 831.50;
        # Top OPB 14,500 (Jan), 7,600 (Feb), 6,700 (Apr): average 9,600; 831.50 / 9,600 = 1663/19200
        "yield_12m": 0.08661458333333333,
    },
}
EXPECTED_BY_PRODUCT = {
    # factoring on 2025-02-27: L03 5,000 (DPD 14); L05 Complete (paid off by PAY10 in Feb)
    (d("2025-02-27"), "factoring"): {
        "opb": "5000.00", "active_loans": 1, "active_customers": 1,
        "par1": 1.0, "par7": 1.0, "par15": 0.0,
        "collected_principal": "3000.00", "collected_fees": "60.00", "collected_total": "3198.40",
        "revenue": "175.00",                 # 135 + 45 + 15 - 20
        "scheduled_due": "0.00",             # both bullets fell due in January
        "collection_rate": None,             # denominator 0 -> NULL
        "weighted_apr": 0.3,
    },
    # term_loan on 2025-02-27: L01 7,000 (1), L04 5,500 (29), L06 6,000 (90), L07 2,100 (0); L02 written off
    (d("2025-02-27"), "term_loan"): {
        "opb": "20600.00", "active_loans": 4, "active_customers": 2,
        "par1": 0.8980582524271845,          # 18,500 / 20,600 = 185/206
        "par30": 0.2912621359223301,         # 6,000 / 20,600 = 30/103
        "writeoff_amount": "2950.00",
        "collected_principal": "950.00",     # 50 + 500 + 400
        "collected_total": "1128.75",        # 60 + 600 + 468.75
        "scheduled_due": "2030.00",
        "collection_rate": 0.5560344827586207,  # 1,128.75 / 2,030 = 129/232
        # C1 = 7,000 + 6,000 = 13,000; C2 = 5,500 + 2,100 = 7,600: (13,000^2 + 7,600^2) / 20,600^2
        "hhi": 0.5343576208879254,
    },
}


# ---------------------------------------------------------------------------
# Running dbt and reading the marts
# ---------------------------------------------------------------------------

def dbt_build(data_dir: Path, work_dir: Path) -> subprocess.CompletedProcess:
    """`dbt build` as the platform runs it; target and logs go to ``work_dir`` so concurrent
    runs (other tests, a developer) never share dbt's target folder."""
    env = {**os.environ, "ABACO_DATA": str(data_dir), "DBT_TARGET_PATH": str(work_dir / "target"),
           "DBT_LOG_PATH": str(work_dir / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run(
        [DBT, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)


def query(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def assert_kpis(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for column, want in expected.items():
        got = actual[column]
        label = f"{where} {column}: got {got!r}, want {want!r}"
        if want is None:
            assert got is None, label
        elif column in COUNT_COLUMNS:
            assert got == want, label
        elif column in MONEY_COLUMNS:
            assert got is not None and abs(Decimal(str(got)) - Decimal(want)) < Decimal("0.005"), label
        else:
            assert got is not None and abs(got - want) <= 1e-9, label


def build_or_fail(data_dir: Path, work_dir: Path) -> None:
    completed = dbt_build(data_dir, work_dir)
    assert completed.returncode == 0, f"dbt build failed:\n{completed.stdout[-8000:]}\n{completed.stderr[-4000:]}"


@pytest.fixture(scope="module")
def portfolio_warehouse(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("hand-portfolio")
    write_portfolio(data_dir)
    build_or_fail(data_dir, tmp_path_factory.mktemp("hand-portfolio-dbt"))
    return data_dir


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

def test_portfolio_monthly_matches_hand_computation(portfolio_warehouse):
    rows = query(portfolio_warehouse, "select * from marts.kpi_portfolio_monthly order by month_end")
    assert list(rows[0]) == KPI_COLUMNS
    # one row per month with a tape, dated by its latest tape; no March, no 2025-01-15
    assert [row["month_end"] for row in rows] == list(EXPECTED_PORTFOLIO)
    for row in rows:
        expected = EXPECTED_PORTFOLIO[row["month_end"]]
        assert set(expected) == set(KPI_COLUMNS) - {"month_end"}, "every KPI has a hand-computed value"
        assert_kpis(row, expected, f"kpi_portfolio_monthly {row['month_end']}")


def test_roll_rates_match_hand_computation(portfolio_warehouse):
    rows = query(portfolio_warehouse, "select * from marts.kpi_roll_rates")
    assert list(rows[0]) == ["month_end", "from_bucket", "to_bucket", "opb_from", "rate"]
    actual = {(row["month_end"], row["from_bucket"], row["to_bucket"]): row for row in rows}
    assert set(actual) == set(EXPECTED_ROLL_RATES)  # nothing for 2025-01-31, 2025-04-30 or 2024-04-30
    for key, (opb_from, rate) in EXPECTED_ROLL_RATES.items():
        assert_kpis(actual[key], {"opb_from": opb_from, "rate": rate}, f"kpi_roll_rates {key}")


def test_vintage_curves_match_hand_computation(portfolio_warehouse):
    rows = query(portfolio_warehouse, "select * from marts.kpi_vintage_curves")
    assert list(rows[0]) == ["vintage_month", "month_end", "months_on_book", "disbursed", "cum_default_principal",
                             "cum_default_rate", "cum_writeoff_amount", "cum_writeoff_rate"]
    actual = {(row["vintage_month"], row["month_end"]): row for row in rows}
    assert set(actual) == set(EXPECTED_VINTAGES)
    for key, values in EXPECTED_VINTAGES.items():
        expected = dict(zip(["months_on_book", "disbursed", "cum_default_principal", "cum_default_rate",
                             "cum_writeoff_amount", "cum_writeoff_rate"], values))
        assert_kpis(actual[key], expected, f"kpi_vintage_curves {key}")


def test_segment_and_product_cuts_match_hand_computation(portfolio_warehouse):
    by_segment = {(row["month_end"], row["segment"]): row for row in
                  query(portfolio_warehouse, "select * from marts.kpi_portfolio_monthly_by_segment")}
    by_product = {(row["month_end"], row["product_type"]): row for row in
                  query(portfolio_warehouse, "select * from marts.kpi_portfolio_monthly_by_product")}
    for key, expected in EXPECTED_BY_SEGMENT.items():
        assert_kpis(by_segment[key], expected, f"by_segment {key}")
    for key, expected in EXPECTED_BY_PRODUCT.items():
        assert_kpis(by_product[key], expected, f"by_product {key}")
    # the cuts carry the portfolio's columns plus their own key, in the same order
    segment_columns = list(next(iter(by_segment.values())))
    product_columns = list(next(iter(by_product.values())))
    assert segment_columns == ["month_end", "segment"] + KPI_COLUMNS[1:]
    assert product_columns == ["month_end", "product_type"] + KPI_COLUMNS[1:]
    # every month-end has both segments and both products (rows for 2024-04-30: Gob, Top, term_loan only)
    assert sorted(by_segment) == sorted((month, segment) for month in EXPECTED_PORTFOLIO for segment in ("Gob", "Top"))
    assert sorted(by_product) == sorted(
        [(d("2024-04-30"), "term_loan")]
        + [(month, product) for month in list(EXPECTED_PORTFOLIO)[1:] for product in ("factoring", "term_loan")])


# ---------------------------------------------------------------------------
# The branches a contract-valid tape cannot show: a loan vanishing from the next
# tape (ingestion rejects a truncated tape), and a book with no OPB at all.
# ---------------------------------------------------------------------------

def _edge_loan(loan_id: str, status: str, outstanding: str, dpd: int) -> dict[str, Any]:
    return {"loan_id": loan_id, "customer_id": "A1", "product_type": "term_loan", "disbursement_date": d("2025-05-02"),
            "disbursement_amount": "2000.00", "currency": "USD", "interest_rate_apr": "0.12", "term": 6,
            "term_unit": "months", "payment_frequency": "monthly", "maturity_date": d("2025-11-02"),
            "outstanding_principal": outstanding, "days_past_due": dpd, "loan_status": status}


def write_edge_book(data_dir: Path) -> None:
    """X1 1,000 (current) vanishes after May; X2 500 (DPD 45) shows outstanding 0 but status Delinquent
    in June; X3 2,000 (current) is paid off in July by PAY-X3 (2,000 principal + 20.00 interest)."""
    write_schema_files(data_dir)
    customer = [{"customer_id": "A1", "tax_id_hmac": "hmac-a1", "segment": "OC", "legal_type": "company"}]
    x3_payoff = {"payment_id": "PAY-X3", "loan_id": "X3", "payment_date": d("2025-07-15"), "paid_principal": "2000.00",
                 "paid_interest": "20.00", "paid_total": "2020.00", "payment_status": "Settled"}
    books = {
        d("2025-05-31"): ([_edge_loan("X1", "Current", "1000.00", 0), _edge_loan("X2", "Delinquent", "500.00", 45),
                           _edge_loan("X3", "Current", "2000.00", 0)], []),
        d("2025-06-30"): ([_edge_loan("X2", "Delinquent", "0.00", 0), _edge_loan("X3", "Current", "2000.00", 0)], []),
        d("2025-07-31"): ([_edge_loan("X2", "Delinquent", "0.00", 0), _edge_loan("X3", "Complete", "0.00", 0)],
                          [x3_payoff]),
    }
    for tape_date, (loans, payments) in books.items():
        write_cascade_tape(data_dir, tape_date, {"loan_data": loans, "customer_data": customer,
                                                 "historic_real_payment": payments})


def test_paid_off_branches_and_empty_book(tmp_path):
    data_dir = tmp_path / "data"
    write_edge_book(data_dir)
    build_or_fail(data_dir, tmp_path / "dbt")

    portfolio = {row["month_end"]: row for row in
                 query(data_dir, "select * from marts.kpi_portfolio_monthly order by month_end")}
    assert_kpis(portfolio[d("2025-05-31")], {
        "opb": "3500.00", "active_loans": 3, "disbursed_amount": "6000.00", "disbursed_loans": 3,
        "par1": 0.14285714285714285,         # X2 500 / 3,500 = 1/7
        "par30": 0.14285714285714285, "par60": 0.0,
    }, "edge 2025-05-31")
    assert_kpis(portfolio[d("2025-06-30")], {
        "opb": "2000.00", "active_loans": 1,  # X2: outstanding 0 means not active, whatever its status
        "par1": 0.0, "collection_rate": None,  # nothing scheduled
    }, "edge 2025-06-30")
    # July: OPB 0, so every OPB ratio is NULL, not 0
    assert_kpis(portfolio[d("2025-07-31")], {
        "opb": "0.00", "active_loans": 0, "active_customers": 0,
        "par1": None, "par90": None, "npl_ratio": None, "npl180_ratio": None, "weighted_apr": None,
        "top10_concentration": None, "hhi": None, "rotation_12m": None,
        "collected_principal": "2000.00", "revenue": "20.00",
        # 20 / average OPB of May, Jun, Jul = 20 / ((3,500 + 2,000 + 0) / 3) = 60 / 5,500
        "yield_12m": 0.01090909090909091,
    }, "edge 2025-07-31")

    roll_rates = {(row["month_end"], row["from_bucket"], row["to_bucket"]): row for row in
                  query(data_dir, "select * from marts.kpi_roll_rates")}
    expected_rolls = {
        # June from May: X1 absent -> paid_off; X3 stays current; X2 (30-59) shows outstanding 0 -> paid_off
        (d("2025-06-30"), "current", "paid_off"): ("1000.00", 1 / 3),   # 1,000 / (1,000 + 2,000)
        (d("2025-06-30"), "current", "current"): ("2000.00", 2 / 3),
        (d("2025-06-30"), "30-59", "paid_off"): ("500.00", 1.0),
        # July from June: only X3 was active (X2 had no outstanding) -> Complete
        (d("2025-07-31"), "current", "paid_off"): ("2000.00", 1.0),
    }
    assert set(roll_rates) == set(expected_rolls)
    for key, (opb_from, rate) in expected_rolls.items():
        assert_kpis(roll_rates[key], {"opb_from": opb_from, "rate": rate}, f"edge roll rate {key}")


def test_each_singular_dbt_test_fails_on_a_corrupted_mart(portfolio_warehouse, tmp_path):
    """The singular tests are checks that can fail: corrupt one invariant each and watch them catch it."""
    import shutil

    data_dir = tmp_path / "corrupted"
    shutil.copytree(portfolio_warehouse, data_dir)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as connection:
        connection.execute("update marts.kpi_roll_rates set rate = rate / 2 "
                           "where (month_end, from_bucket, to_bucket) in "
                           "(select month_end, from_bucket, to_bucket from marts.kpi_roll_rates order by all limit 1)")
        connection.execute("update marts.kpi_vintage_curves set cum_writeoff_amount = -1 "
                           "where month_end = (select max(month_end) from marts.kpi_vintage_curves)")
        connection.execute("update marts.kpi_portfolio_monthly set par90 = 1.5")
        connection.execute("update marts.kpi_portfolio_monthly_by_segment set opb = opb + 1")
    env = {**os.environ, "ABACO_DATA": str(data_dir), "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    singular = ["assert_roll_rates_sum_to_one", "assert_vintage_cumulatives_never_decrease",
                "assert_par_ladder_monotone", "assert_cuts_add_up_to_portfolio"]
    completed = subprocess.run(
        [DBT, "test", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--select", *singular, "test_name:column_rules,kpi_portfolio_monthly"],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 1
    # par90 = 1.5 also breaks the [0, 1] range of the mart's per-column rules
    assert re.search(r"FAIL \d+ .*column_rules_kpi_portfolio_monthly", completed.stdout), completed.stdout[-4000:]
    for name in singular:
        assert re.search(rf"FAIL \d+ .*{name}", completed.stdout), f"{name} did not fail:\n{completed.stdout[-4000:]}"


def test_staging_tests_read_only_the_scoped_deliveries_and_everything_without_a_scope(portfolio_warehouse, tmp_path):
    """ABACO_TEST_SCOPE narrows the staging tests to the named deliveries; unset, they read every delivery."""
    import shutil

    import polars as pl

    data_dir = tmp_path / "tampered"
    shutil.copytree(portfolio_warehouse, data_dir)
    tapes = sorted(path for path in (data_dir / "typed" / "cascade" / "loan_data").iterdir() if path.name[0].isdigit())
    assert len(tapes) >= 2
    # tamper with the first tape behind the contract gate's back: a duplicated loan with an unknown product
    tampered = tapes[0] / "data.parquet"
    frame = pl.read_parquet(tampered)
    frame.vstack(frame.head(1).with_columns(pl.lit("mortgage").alias("product_type"))).write_parquet(tampered)
    others = [tape.name for tape in tapes[1:]]

    def staging_tests(scope: dict | None, command: str = "test") -> subprocess.CompletedProcess:
        env = {**os.environ, "ABACO_DATA": str(data_dir), "DBT_TARGET_PATH": str(tmp_path / "target"),
               "DBT_LOG_PATH": str(tmp_path / "logs")}
        env.pop("ABACO_TEST_SCOPE", None)
        if scope is not None:
            env["ABACO_TEST_SCOPE"] = json.dumps(scope)
        return subprocess.run(
            [DBT, command, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
             "--select", "stg_cascade__loan_data"], env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)

    assert staging_tests(None, "run").returncode == 0  # the copied view still reads the original folder

    assert staging_tests({"stg_cascade__loan_data": others}).returncode == 0
    assert staging_tests({"stg_cascade__loan_data": []}).returncode == 0
    for scope in ({"stg_cascade__loan_data": [tapes[0].name]}, None, {"another_model": []}):
        completed = staging_tests(scope)
        assert completed.returncode == 1, completed.stdout[-4000:]
        assert re.search(r"FAIL 1 .*unique_combination_stg_cascade__loan_data", completed.stdout), completed.stdout[-4000:]
        assert re.search(r"FAIL 1 .*column_rules_stg_cascade__loan", completed.stdout), completed.stdout[-4000:]
    compiled = list((tmp_path / "target" / "compiled").rglob("stg_cascade__loan_data.yml/*.sql"))
    assert compiled and not any("delivery_date in" in path.read_text() for path in compiled)  # the last scope named
    # another model only
