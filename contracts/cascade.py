"""Contracts v1 of the Cascade loan tape (feeds.md, source ``cascade``)."""

import datetime as dt
from decimal import Decimal
from typing import Literal

import polars as pl

from contracts.base import FeedTable, FreshnessSla, RowRule, column

_TAPE = r"abaco - loan tape_{table}_table(?: \(\d+\))?\.csv"

CASCADE_SLA = FreshnessSla(
    description="A Cascade tape by 09:00 local time on the first business day after each month-end",
    shape="month_end",
    deadline=dt.time(9, 0),
)


class LoanDataV1(FeedTable):
    source = "cascade"
    table = "loan_data"
    version = 1
    title = "Loan Data"
    file_pattern = _TAPE.format(table="loan data")
    owner = "team:risk"
    min_rows = 1
    freshness = CASCADE_SLA

    loan_id: str = column("Loan ID", description="Cascade loan identifier", unique=True)
    customer_id: str = column("Customer ID", description="Borrower; exists in Customer Data of the same delivery")
    product_type: Literal["factoring", "term_loan", "credit_line"] = column(
        "Product Type", description="Product line"
    )
    disbursement_date: dt.date = column(
        "Disbursement Date", description="Date the principal was paid out", not_after_delivery=True
    )
    disbursement_amount: Decimal = column(
        "Disbursement Amount", description="Principal paid out (USD)", gt=0, decimal_places=2
    )
    tpv: Decimal | None = column(
        "TPV", description="Total face value of the invoices (factoring)", default=None, ge=0, decimal_places=2
    )
    currency: str = column(
        "Loan Currency", description="ISO 4217 currency code (USD today)", pattern=r"^[A-Z]{3}$",
        hint="Use the three-letter ISO 4217 code, e.g. USD",
    )
    interest_rate_apr: Decimal = column(
        "Interest Rate APR",
        description="Annual interest rate as a fraction (0.36 = 36 %)",
        ge=0,
        le=2,
        hint="A value above 2 is almost surely a percent: send the fraction (0.36 for 36 %)",
    )
    origination_fee: Decimal = column(
        "Origination Fee", description="Fee charged at origination", default=Decimal(0), ge=0
    )
    origination_fee_taxes: Decimal = column(
        "Origination Fee Taxes", description="Taxes on the origination fee", default=Decimal(0), ge=0
    )
    term: int = column("Term", description="Contractual term, in term_unit", gt=0)
    term_unit: Literal["days", "months"] = column("Term Unit", description="Unit of term")
    payment_frequency: Literal["bullet", "monthly", "biweekly", "weekly"] = column(
        "Payment Frequency", description="Installment frequency"
    )
    maturity_date: dt.date = column("Maturity Date", description="Contractual final due date")
    outstanding_principal: Decimal = column(
        "Outstanding Loan Value", description="Principal outstanding on the tape date", ge=0, decimal_places=2
    )
    days_past_due: int = column("Days in Default", description="Days past due on the tape date", ge=0)
    loan_status: Literal["Current", "Delinquent", "Default", "Complete", "Written Off"] = column(
        "Loan Status", description="Servicing status on the tape date"
    )
    write_off_date: dt.date | None = column(
        "Write Off Date", description="Date the loan was written off", not_after_delivery=True
    )
    write_off_amount: Decimal | None = column(
        "Write Off Amount", description="Principal written off", gt=0
    )

    row_rules = (
        RowRule(
            name="closed_loans_have_zero_outstanding",
            description="Complete and Written Off loans have Outstanding Loan Value 0",
            columns=("loan_status", "outstanding_principal"),
            valid=lambda: ~pl.col("loan_status").is_in(["Complete", "Written Off"])
            | (pl.col("outstanding_principal") == 0),
        ),
        RowRule(
            name="current_and_complete_have_zero_dpd",
            description="Current and Complete loans have Days in Default 0",
            columns=("loan_status", "days_past_due"),
            valid=lambda: ~pl.col("loan_status").is_in(["Current", "Complete"]) | (pl.col("days_past_due") == 0),
        ),
        RowRule(
            name="write_off_fields_iff_written_off",
            description="Write Off Date and Write Off Amount are filled when, and only when, the status is Written Off",
            columns=("loan_status", "write_off_date", "write_off_amount"),
            valid=lambda: pl.when(pl.col("loan_status") == "Written Off")
            .then(pl.col("write_off_date").is_not_null() & pl.col("write_off_amount").is_not_null())
            .otherwise(pl.col("write_off_date").is_null() & pl.col("write_off_amount").is_null()),
        ),
        RowRule(
            name="outstanding_not_above_disbursement",
            description="Outstanding Loan Value <= Disbursement Amount",
            columns=("outstanding_principal", "disbursement_amount"),
            valid=lambda: pl.col("outstanding_principal") <= pl.col("disbursement_amount"),
        ),
        RowRule(
            name="maturity_after_disbursement",
            description="Maturity Date is after Disbursement Date",
            columns=("maturity_date", "disbursement_date"),
            valid=lambda: pl.col("maturity_date") > pl.col("disbursement_date"),
        ),
        RowRule(
            name="tpv_covers_disbursement",
            description="TPV, when present, is >= Disbursement Amount",
            columns=("tpv", "disbursement_amount"),
            valid=lambda: pl.col("tpv").is_null() | (pl.col("tpv") >= pl.col("disbursement_amount")),
        ),
    )


class LoanDataV2(LoanDataV1):
    """v2: newer Cascade exports may add the loan's purpose (optional, so v1 tapes stay valid)."""

    version = 2

    loan_purpose: str | None = column("Loan Purpose", description="Declared use of the funds", default=None)


class CustomerDataV1(FeedTable):
    source = "cascade"
    table = "customer_data"
    version = 1
    title = "Customer Data"
    file_pattern = _TAPE.format(table="customer data")
    owner = "team:risk"
    freshness = CASCADE_SLA

    customer_id: str = column("Customer ID", description="Borrower identifier", unique=True)
    customer_name: str = column("Cliente", description="Borrower legal name", pii="drop")
    tax_id: str = column("Tax ID", description="NIT/DUI national identifier", pii="hash")
    email: str | None = column("Email", description="Contact e-mail", default=None, pii="hash")
    phone: str | None = column("Phone", description="Contact phone", default=None, pii="drop")
    segment: Literal["Gob", "OC", "CCF", "DTE", "Nimal", "Top", "Other"] = column(
        "Segment", description="Commercial segment"
    )
    industry: str | None = column("Industry", description="Industry", default=None)
    region: str | None = column("Region", description="Department / state", default=None)
    kam_id: str | None = column("Sales Agent", description="Key account manager", default=None)
    legal_type: Literal["company", "individual", "government"] = column("Legal Type", description="Legal form")


class PaymentScheduleV1(FeedTable):
    source = "cascade"
    table = "payment_schedule"
    version = 1
    title = "Payment Schedule"
    file_pattern = _TAPE.format(table="payment schedule")
    owner = "team:collections"
    unique_together = (("loan_id", "installment_number"),)
    freshness = CASCADE_SLA

    loan_id: str = column("Loan ID", description="Loan; exists in Loan Data")
    installment_number: int = column("Installment Number", description="1-based installment", ge=1)
    due_date: dt.date = column("Due Date", description="Installment due date")
    scheduled_principal: Decimal = column("Principal Payment", description="Scheduled principal", ge=0)
    scheduled_interest: Decimal = column("Interest Payment", description="Scheduled interest", ge=0)
    scheduled_fee: Decimal = column("Fee Payment", description="Scheduled fee", default=Decimal(0), ge=0)
    scheduled_other: Decimal = column("Other Payment", description="Other scheduled charges", default=Decimal(0), ge=0)
    scheduled_total: Decimal = column("Total Payment", description="Scheduled installment total")

    row_rules = (
        RowRule(
            name="total_equals_components",
            description="Total Payment equals principal + interest + fee + other within 0.01",
            columns=("scheduled_total", "scheduled_principal", "scheduled_interest", "scheduled_fee", "scheduled_other"),
            valid=lambda: (
                pl.col("scheduled_total")
                - (pl.col("scheduled_principal") + pl.col("scheduled_interest") + pl.col("scheduled_fee")
                   + pl.col("scheduled_other"))
            ).abs() <= Decimal("0.01"),
        ),
    )


class HistoricRealPaymentV1(FeedTable):
    source = "cascade"
    table = "historic_real_payment"
    version = 1
    title = "Historic Real Payment"
    file_pattern = _TAPE.format(table="historic real payment")
    owner = "team:collections"
    freshness = CASCADE_SLA

    payment_id: str = column("Payment ID", description="Payment identifier", unique=True)
    loan_id: str = column("Loan ID", description="Loan; exists in Loan Data")
    payment_date: dt.date = column("True Payment Date", description="Value date", not_after_delivery=True)
    paid_principal: Decimal = column("True Principal Payment", description="Principal paid", ge=0)
    paid_interest: Decimal = column("True Interest Payment", description="Interest paid", ge=0)
    paid_fee: Decimal = column("True Fee Payment", description="Fees paid", default=Decimal(0), ge=0)
    paid_other: Decimal = column("True Other Payment", description="Other charges paid", default=Decimal(0), ge=0)
    paid_tax: Decimal = column("True Tax Payment", description="Taxes paid", default=Decimal(0), ge=0)
    paid_fee_tax: Decimal = column("True Fee Tax Payment", description="Taxes on fees paid", default=Decimal(0), ge=0)
    rebates: Decimal = column("True Rabates", description="Rebates granted", default=Decimal(0), ge=0)
    paid_total: Decimal = column("True Total Payment", description="Cash total of the payment")
    payment_status: Literal["Settled", "Reversed"] = column(
        "True Payment Status", description="Reversed = bounced attempt, no cash"
    )

    row_rules = (
        RowRule(
            name="total_equals_components",
            description="True Total Payment equals principal + interest + fee + other + tax + fee tax - rebates within 0.01",
            columns=("paid_total", "paid_principal", "paid_interest", "paid_fee", "paid_other", "paid_tax",
                     "paid_fee_tax", "rebates"),
            valid=lambda: (
                pl.col("paid_total")
                - (pl.col("paid_principal") + pl.col("paid_interest") + pl.col("paid_fee") + pl.col("paid_other")
                   + pl.col("paid_tax") + pl.col("paid_fee_tax") - pl.col("rebates"))
            ).abs() <= Decimal("0.01"),
        ),
    )


class CollateralV1(FeedTable):
    source = "cascade"
    table = "collateral"
    version = 1
    title = "Collateral"
    file_pattern = _TAPE.format(table="collateral")
    owner = "team:risk"
    required_in_delivery = False
    freshness = CASCADE_SLA

    loan_id: str = column("Loan ID", description="Loan; exists in Loan Data")
    collateral_type: str = column("Collateral Type", description="Kind of collateral")
    collateral_value: Decimal = column("Collateral Current", description="Current collateral value", ge=0)


CASCADE_TABLES = (LoanDataV1, LoanDataV2, CustomerDataV1, PaymentScheduleV1, HistoricRealPaymentV1, CollateralV1)
