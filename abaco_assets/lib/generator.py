"""Deterministic sample landing zone for Abaco's three upstream feeds.

Why this exists: the contracts, dbt marts and KPI metrics need a realistic book to run
against end to end (and at production scale for load tests), but real loan tapes hold
PII and cannot leave the lender. This module fabricates a Cascade loan tape per
month-end plus the daily collections and delinquency feeds, in exactly the file formats
of ``spec/feeds.md``, such that every per-file and cross-file rule holds: the feeds
reconcile with the tapes to the cent, so any break found downstream is a bug in the
pipeline rather than noise in the sample.

Design, and why:

* The book is simulated at *installment* grain: every scheduled installment gets the
  day it was paid (or never). Outstanding principal, days past due, overdue amounts,
  completion and the payment rows are all derived from that one array, so the tape,
  the collections file and the delinquency file cannot disagree with each other on any
  day, including the days between tapes.
* Behaviour (pay on time, miss, cure, pay one installment, prepay, write off, recover)
  is drawn month by month with numpy over all live loans at once; there is no Python
  loop over loans or payments, only over months and days, so 200k loans x 24 months
  stays within a few minutes and well under 3 GiB.
* All money is held as integer cents and only turned into decimals when a CSV is
  written, so roll-forward identities hold exactly rather than within float noise.
* The schedule, payment history, customer and collateral tables of a tape are prefixes
  of tables computed once (loans are numbered in disbursement order, payments in date
  order), so each tape's large files are written by copying the previous tape's file and
  appending only the new rows: the bytes are identical to a full rewrite, at a fraction
  of the cost.
* Randomness comes from ``numpy.random.Generator(PCG64(...))`` children of one
  ``SeedSequence(seed)``; the per-day choices of the delinquency feed use a counter-based
  hash of (seed, loan, day), so a tape-date delinquency file is byte-identical whatever
  the cadence. File modification times are fixed too, so "newest by modification time"
  is meaningful and reproducible.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

__all__ = [
    "CASCADE_TABLES",
    "CASCADE_HEADERS",
    "COLLECTIONS_HEADERS",
    "DELINQUENCY_HEADERS",
    "DPD_BUCKETS",
    "GenerationSummary",
    "GeneratorRates",
    "cascade_file_name",
    "cascade_zip_name",
    "collections_file_name",
    "delinquency_file_name",
    "delivery_mtime",
    "dpd_bucket",
    "generate_landing",
    "tape_dates_for",
]

# --------------------------------------------------------------------------- formats

SOURCE_CASCADE = "cascade"
SOURCE_COLLECTIONS = "collections"
SOURCE_DELINQUENCY = "delinquency"

CASCADE_TABLES: tuple[str, ...] = (
    "Loan Data",
    "Customer Data",
    "Payment Schedule",
    "Historic Real Payment",
    "Collateral",
)

CASCADE_HEADERS: dict[str, tuple[str, ...]] = {
    "Loan Data": (
        "Loan ID",
        "Customer ID",
        "Product Type",
        "Disbursement Date",
        "Disbursement Amount",
        "TPV",
        "Loan Currency",
        "Interest Rate APR",
        "Origination Fee",
        "Origination Fee Taxes",
        "Term",
        "Term Unit",
        "Payment Frequency",
        "Maturity Date",
        "Outstanding Loan Value",
        "Days in Default",
        "Loan Status",
        "Write Off Date",
        "Write Off Amount",
    ),
    "Customer Data": (
        "Customer ID",
        "Cliente",
        "Tax ID",
        "Email",
        "Phone",
        "Segment",
        "Industry",
        "Region",
        "Sales Agent",
        "Legal Type",
    ),
    "Payment Schedule": (
        "Loan ID",
        "Installment Number",
        "Due Date",
        "Principal Payment",
        "Interest Payment",
        "Fee Payment",
        "Other Payment",
        "Total Payment",
    ),
    "Historic Real Payment": (
        "Payment ID",
        "Loan ID",
        "True Payment Date",
        "True Principal Payment",
        "True Interest Payment",
        "True Fee Payment",
        "True Other Payment",
        "True Tax Payment",
        "True Fee Tax Payment",
        "True Rabates",
        "True Total Payment",
        "True Payment Status",
    ),
    "Collateral": ("Loan ID", "Collateral Type", "Collateral Current"),
}

COLLECTIONS_HEADERS: tuple[str, ...] = (
    "payment_id",
    "loan_id",
    "received_date",
    "amount",
    "channel",
    "is_recovery",
)

DELINQUENCY_HEADERS: tuple[str, ...] = (
    "as_of_date",
    "loan_id",
    "days_past_due",
    "overdue_principal",
    "overdue_interest",
    "first_unpaid_due_date",
    "collection_stage",
    "promise_to_pay_date",
)

PRODUCTS = ("factoring", "term_loan", "credit_line")
_FACTORING, _TERM_LOAN, _CREDIT_LINE = 0, 1, 2
FREQUENCIES = ("bullet", "monthly", "biweekly", "weekly")
_BULLET, _MONTHLY, _BIWEEKLY, _WEEKLY = 0, 1, 2, 3
SEGMENTS = ("Gob", "OC", "CCF", "DTE", "Nimal", "Top", "Other")
LEGAL_TYPES = ("company", "individual", "government")
_COMPANY, _INDIVIDUAL, _GOVERNMENT = 0, 1, 2
LOAN_STATUSES = ("Current", "Delinquent", "Default", "Complete", "Written Off")
CHANNELS = ("bank_transfer", "cash", "card", "direct_debit", "agency")
COLLECTION_STAGES = ("none", "early", "late", "legal", "agency")
DPD_BUCKETS = ("current", "1-29", "30-59", "60-89", "90-179", "180+")
# Lower bounds (inclusive) of DPD_BUCKETS, kpis.md.
_DPD_BUCKET_FLOORS = np.array([0, 1, 30, 60, 90, 180])


def cascade_file_name(table: str) -> str:
    """Name Cascade's browser export gives one table of a tape."""
    if table not in CASCADE_TABLES:
        raise ValueError(f"unknown Cascade table {table!r}")
    return f"Abaco - Loan Tape_{table}_Table.csv"


def cascade_zip_name(as_of: date) -> str:
    """Name of a tape delivered as one archive (the date keeps re-sent zips apart)."""
    return f"Abaco - Loan Tape_{as_of.isoformat()}.zip"


def collections_file_name(as_of: date) -> str:
    return f"collections_{as_of:%Y%m%d}.csv"


def delinquency_file_name(as_of: date) -> str:
    return f"delinquency_{as_of:%Y%m%d}.csv"


def append_next_day(landing: Path, sources: tuple[str, ...] = ("collections", "delinquency")) -> date:
    """One more daily delivery after the last one (the incremental case of benchmarks and tests).

    The last day's files of each source, re-dated to the next day; collections get new payment
    ids (new cash), delinquency is the same book one day later. Returns the new date.
    """
    names = {"collections": collections_file_name, "delinquency": delinquency_file_name}
    last = max(date.fromisoformat(p.name) for p in (landing / "collections").iterdir())
    day = last + timedelta(days=1)
    for source in sources:
        source_file = landing / source / last.isoformat() / names[source](last)
        if not source_file.exists():
            continue
        lines = source_file.read_text().replace(last.isoformat(), day.isoformat()).splitlines()
        if source == "collections":
            lines = lines[:1] + [line.replace(",", "-N,", 1) for line in lines[1:]]
        target = landing / source / day.isoformat() / names[source](day)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    return day


def dpd_bucket(days_past_due: int) -> str:
    """kpis.md DPD bucket of an active loan (absorbing states are decided by status)."""
    return DPD_BUCKETS[int(np.searchsorted(_DPD_BUCKET_FLOORS, days_past_due, side="right")) - 1]


# El Salvador has kept UTC-6 without DST since 1987; a fixed offset avoids depending on
# the host's tz database for something that must be byte-for-byte reproducible.
_LOCAL_TZ = timezone(timedelta(hours=-6), "America/El_Salvador")
_DELIVERY_LOCAL_TIME = time(7, 0)


def delivery_mtime(as_of: date) -> float:
    """POSIX mtime given to every file of business date ``as_of``.

    The day after the as-of date at 07:00 local: before the 08:00 collections /
    delinquency SLA and the 09:00 tape SLA of feeds.md, so a freshness check run on the
    sample sees every delivery on time, and re-generating gives identical mtimes.
    """
    stamp = datetime.combine(as_of + timedelta(days=1), _DELIVERY_LOCAL_TIME, tzinfo=_LOCAL_TZ)
    return stamp.timestamp()


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GeneratorRates:
    """Behavioural knobs of the simulated book (monthly probabilities unless noted).

    Defaults are tuned so that a 2,000-loan x 12-month run shows every case the KPIs
    must handle (all DPD buckets including 180+, write-offs, recoveries, prepayments,
    reversals) for any seed, while headline ratios stay plausible for an SME lender
    (PAR30 around 5-10 %, top-10 concentration 10-30 %).
    """

    #: Monthly probability that a loan with nothing overdue misses its installments
    #: of the month (starts a delinquency episode); scaled by a per-customer risk factor.
    delinquency_rate: float = 0.045
    #: Monthly probability that a loan with overdue installments pays all of them.
    cure_rate: float = 0.40
    #: Monthly probability that a delinquent loan pays only its oldest overdue
    #: installment (DPD drops by one period but the loan stays delinquent).
    partial_payment_rate: float = 0.15
    #: Multiplier on cure and partial rates once a loan is >= 90 DPD (Default loans
    #: rarely come back, which is what makes the 180+ bucket and write-offs appear).
    default_cure_multiplier: float = 0.25
    #: Days past due at which a loan is written off. Above 180 so that the kpis.md
    #: 180+ bucket holds Default loans before they leave the book.
    writeoff_dpd: int = 270
    #: Monthly probability that a performing term loan / credit line pays off early.
    prepayment_rate: float = 0.015
    #: Share of settled payments preceded by a bounced attempt (a Reversed row).
    reversal_rate: float = 0.03
    #: Monthly probability that a written-off loan pays a recovery.
    recovery_rate: float = 0.12
    #: Share of loans that are factoring (bullet, 30-120 days).
    factoring_share: float = 0.45
    #: Share of loans that are credit-line draws (interest-only, balloon); the rest are
    #: amortising term loans.
    credit_line_share: float = 0.05
    #: Customers per loan; below 1 so that many customers hold several loans.
    customers_per_loan: float = 0.45
    #: Share of customers that are large (about 10x ticket and loan count), which
    #: drives concentration, HHI and the single-obligor covenant.
    large_customer_share: float = 0.01
    #: Month-over-month growth of the number of disbursements.
    origination_growth_monthly: float = 0.02
    #: Months of originations before the first tape (the initial book, with its history).
    history_months: int = 12
    #: Maximum days a payment lands after its due date when the loan pays "on time".
    #: Must stay below 7 so that weekly installments are paid in order.
    max_payment_lag_days: int = 4

    def __post_init__(self) -> None:
        for name in (
            "delinquency_rate",
            "cure_rate",
            "partial_payment_rate",
            "default_cure_multiplier",
            "prepayment_rate",
            "reversal_rate",
            "recovery_rate",
            "factoring_share",
            "credit_line_share",
            "large_customer_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"GeneratorRates.{name} must be within [0, 1], got {value}")
        if self.cure_rate + self.partial_payment_rate > 1.0:
            raise ValueError("cure_rate + partial_payment_rate must not exceed 1")
        if self.factoring_share + self.credit_line_share > 1.0:
            raise ValueError("factoring_share + credit_line_share must not exceed 1")
        if self.writeoff_dpd < 1:
            raise ValueError("writeoff_dpd must be >= 1")
        if not 0.0 < self.customers_per_loan <= 1.0:
            raise ValueError("customers_per_loan must be within (0, 1]")
        if self.history_months < 0:
            raise ValueError("history_months must be >= 0")
        if not 0 <= self.max_payment_lag_days < 7:
            raise ValueError("max_payment_lag_days must be within [0, 6]")
        if self.origination_growth_monthly <= -1.0:
            raise ValueError("origination_growth_monthly must be > -1")


@dataclass
class GenerationSummary:
    """What a run produced, so the CLI can print it and tests can cross-check it."""

    out_dir: Path
    seed: int
    tape_dates: tuple[date, ...]
    files_written: int
    bytes_written: int
    tapes: int
    collections_files: int
    delinquency_files: int
    loans: int
    customers: int
    installments: int
    settled_payments: int
    reversals: int
    prepayments: int
    write_offs: int
    recoveries: int
    completed_loans: int
    loans_by_product: dict[str, int] = field(default_factory=dict)
    loans_by_segment: dict[str, int] = field(default_factory=dict)
    #: Loans per kpis.md bucket at the last tape, plus ``written_off`` and ``paid_off``.
    dpd_buckets_last_tape: dict[str, int] = field(default_factory=dict)
    opb_last_tape: float = 0.0

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out["tape_dates"] = [d.isoformat() for d in self.tape_dates]
        return out


# --------------------------------------------------------------------------- calendar

_EPOCH = date(1970, 1, 1)
_DAY_BITS = 21  # day numbers of 1970..7711 fit; room for the loan index above them
_NEVER = (1 << _DAY_BITS) - 1  # "not paid / not written off": sorts after every real day


def _day(d: date) -> int:
    return (d - _EPOCH).days


def _date(day: int) -> date:
    return _EPOCH + timedelta(days=int(day))


def _month_bounds(first_month: np.datetime64, count: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last day number of ``count`` consecutive calendar months."""
    months = first_month + np.arange(count)
    starts = months.astype("datetime64[D]").astype(np.int64)
    ends = (months + 1).astype("datetime64[D]").astype(np.int64) - 1
    return starts, ends


def tape_dates_for(end_date: date, months: int) -> list[date]:
    """Month-end tape dates of the ``months`` calendar months ending at end_date's month.

    When end_date is not a month-end, the last tape is dated end_date itself (a
    month-to-date snapshot), since a tape can never be dated after the data it holds.
    """
    if months < 1:
        raise ValueError("months must be >= 1")
    last_month = np.datetime64(end_date, "M")
    _, ends = _month_bounds(last_month - (months - 1), months)
    ends = np.minimum(ends, _day(end_date))
    return [_date(int(e)) for e in ends]


# --------------------------------------------------------------------------- small helpers


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer split of ``total`` proportional to ``weights`` (deterministic, exact sum)."""
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _round_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    return (numerator * 2 + denominator) // (2 * denominator)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Counter-based hash: per-(loan, day) choices that do not depend on call order."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hash3(seed: int, a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = _splitmix64(np.asarray(a, dtype=np.uint64) * np.uint64(0x100000001B3) + np.uint64(seed & 0xFFFFFFFF))
        return _splitmix64(x ^ (np.asarray(b, dtype=np.uint64) + np.uint64(0x632BE59BD9B4E019)))


def _money(name: str, cents: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """Cents -> float column written with exactly two decimals (float_precision=2)."""
    values = np.asarray(cents, dtype=np.float64) / 100.0
    if valid is not None:
        values = np.where(valid, values, np.nan)
        return pl.Series(name, values, nan_to_null=True)
    return pl.Series(name, values)


def _dates(name: str, days: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    series = pl.Series(name, np.asarray(days, dtype=np.int32)).cast(pl.Date)
    if valid is not None:
        series = series.scatter(np.flatnonzero(~np.asarray(valid)), None)
    return series


def _labels(name: str, vocabulary: tuple[str, ...] | list[str], codes: np.ndarray) -> pl.Series:
    return pl.Series(name, list(vocabulary), dtype=pl.String).gather(np.asarray(codes, dtype=np.int64))


def _ids(prefix: str, count: int, width: int) -> pl.Series:
    return pl.select(
        (pl.lit(prefix) + pl.int_range(1, count + 1, dtype=pl.Int64).cast(pl.String).str.zfill(width)).alias("id")
    ).to_series()


# --------------------------------------------------------------------------- fake PII

_FIRST_NAMES = (
    ("José", "jose"), ("María", "maria"), ("Juan", "juan"), ("Ana", "ana"), ("Carlos", "carlos"),
    ("Rosa", "rosa"), ("Luis", "luis"), ("Carmen", "carmen"), ("Jorge", "jorge"), ("Marta", "marta"),
    ("Francisco", "francisco"), ("Gloria", "gloria"), ("Manuel", "manuel"), ("Sandra", "sandra"),
    ("Óscar", "oscar"), ("Patricia", "patricia"), ("Mario", "mario"), ("Claudia", "claudia"),
    ("Roberto", "roberto"), ("Sonia", "sonia"), ("Ricardo", "ricardo"), ("Silvia", "silvia"),
    ("Miguel", "miguel"), ("Elena", "elena"), ("Mauricio", "mauricio"), ("Karla", "karla"),
    ("Fernando", "fernando"), ("Ingrid", "ingrid"), ("Salvador", "salvador"), ("Yesenia", "yesenia"),
    ("René", "rene"), ("Beatriz", "beatriz"), ("Nelson", "nelson"), ("Verónica", "veronica"),
)
_SURNAMES = (
    ("Hernández", "hernandez"), ("López", "lopez"), ("Martínez", "martinez"), ("García", "garcia"),
    ("Rodríguez", "rodriguez"), ("Flores", "flores"), ("Ramírez", "ramirez"), ("Pérez", "perez"),
    ("Rivera", "rivera"), ("Cruz", "cruz"), ("Sánchez", "sanchez"), ("Díaz", "diaz"),
    ("Romero", "romero"), ("Alvarado", "alvarado"), ("Reyes", "reyes"), ("Mejía", "mejia"),
    ("Gómez", "gomez"), ("Aguilar", "aguilar"), ("Castillo", "castillo"), ("Orellana", "orellana"),
    ("Portillo", "portillo"), ("Guzmán", "guzman"), ("Henríquez", "henriquez"), ("Menjívar", "menjivar"),
    ("Ayala", "ayala"), ("Bonilla", "bonilla"), ("Chávez", "chavez"), ("Escobar", "escobar"),
    ("Quintanilla", "quintanilla"), ("Molina", "molina"), ("Campos", "campos"), ("Argueta", "argueta"),
)
_COMPANY_STEMS = (
    ("Distribuidora", "distribuidora"), ("Comercializadora", "comercializadora"),
    ("Inversiones", "inversiones"), ("Servicios", "servicios"), ("Industrias", "industrias"),
    ("Agroindustrias", "agroindustrias"), ("Constructora", "constructora"),
    ("Importadora", "importadora"), ("Grupo", "grupo"), ("Transportes", "transportes"),
    ("Alimentos", "alimentos"), ("Textiles", "textiles"), ("Farmacéutica", "farmaceutica"),
    ("Soluciones", "soluciones"), ("Tecnología", "tecnologia"), ("Logística", "logistica"),
)
_COMPANY_QUALIFIERS = (
    ("del Pacífico", "pacifico"), ("Centroamericana", "centroamericana"), ("Salvadoreña", "salvadorena"),
    ("Cuscatlán", "cuscatlan"), ("Los Volcanes", "losvolcanes"), ("Izalco", "izalco"),
    ("Metropolitana", "metropolitana"), ("El Roble", "elroble"), ("La Ceiba", "laceiba"),
    ("San Benito", "sanbenito"), ("Occidental", "occidental"), ("Oriental", "oriental"),
    ("Integral", "integral"), ("Continental", "continental"), ("del Valle", "delvalle"),
    ("Santa Elena", "santaelena"),
)
_COMPANY_SUFFIXES = ("S.A. de C.V.", "S.A. de C.V.", "S.A. de C.V.", "S. de R.L. de C.V.")
_GOVERNMENT_BODIES = (
    ("Alcaldía Municipal de", "alcaldia"), ("Hospital Nacional de", "hospital"),
    ("Centro Escolar de", "centroescolar"), ("Casa de la Cultura de", "casacultura"),
)
_MUNICIPALITIES = (
    ("San Salvador", "sansalvador", "0614"), ("Santa Ana", "santaana", "0210"),
    ("San Miguel", "sanmiguel", "1217"), ("Santa Tecla", "santatecla", "0511"),
    ("Soyapango", "soyapango", "0617"), ("Mejicanos", "mejicanos", "0608"),
    ("Apopa", "apopa", "0602"), ("Sonsonate", "sonsonate", "0315"),
    ("Usulután", "usulutan", "1123"), ("Ahuachapán", "ahuachapan", "0101"),
    ("Zacatecoluca", "zacatecoluca", "0821"), ("Chalatenango", "chalatenango", "0407"),
    ("La Unión", "launion", "1408"), ("San Vicente", "sanvicente", "1010"),
    ("Cojutepeque", "cojutepeque", "0702"), ("Sensuntepeque", "sensuntepeque", "0906"),
)
_REGIONS = (
    "San Salvador", "La Libertad", "Santa Ana", "San Miguel", "Sonsonate", "Usulután", "La Paz",
    "Ahuachapán", "Cuscatlán", "Chalatenango", "La Unión", "Morazán", "San Vicente", "Cabañas",
)
_REGION_WEIGHTS = np.array([30, 18, 9, 8, 6, 5, 4, 4, 4, 3, 3, 2, 2, 2], dtype=np.float64)
_INDUSTRIES = (
    "Comercio", "Manufactura", "Construcción", "Servicios Profesionales", "Agroindustria",
    "Transporte y Logística", "Salud", "Educación", "Tecnología", "Turismo y Restaurantes",
    "Administración Pública",
)
_EMAIL_DOMAINS = ("gmail.com", "hotmail.com", "yahoo.com", "outlook.com")
_COMPANY_MAILBOXES = ("contacto", "finanzas", "gerencia", "administracion", "ventas")
_SALES_AGENTS = tuple(f"KAM-{i:02d}" for i in range(1, 13))


def _pick(rng: np.random.Generator, vocabulary: tuple, size: int) -> np.ndarray:
    return rng.integers(0, len(vocabulary), size=size)


def _fake_customer_pii(
    rng: np.random.Generator, legal_type: np.ndarray, segment: np.ndarray
) -> dict[str, pl.Series]:
    """Plausible Salvadoran names, NITs, phones and e-mails, none of a real person.

    Built column-wise with polars string expressions so that 100k customers cost the
    same as a hundred.
    """
    n = legal_type.size
    first = _pick(rng, _FIRST_NAMES, n)
    last1 = _pick(rng, _SURNAMES, n)
    last2 = _pick(rng, _SURNAMES, n)
    stem = _pick(rng, _COMPANY_STEMS, n)
    qual = _pick(rng, _COMPANY_QUALIFIERS, n)
    suffix = _pick(rng, _COMPANY_SUFFIXES, n)
    body = _pick(rng, _GOVERNMENT_BODIES, n)
    muni = _pick(rng, _MUNICIPALITIES, n)
    # Companies are named after a family half the time ("Distribuidora Flores").
    family_company = rng.random(n) < 0.4

    def col(vocab, idx, pos=0):
        return pl.Series([v[pos] if isinstance(v, tuple) else v for v in vocab], dtype=pl.String).gather(idx)

    frame = pl.DataFrame(
        {
            "lt": legal_type.astype(np.int8),
            "first": col(_FIRST_NAMES, first),
            "first_a": col(_FIRST_NAMES, first, 1),
            "last1": col(_SURNAMES, last1),
            "last1_a": col(_SURNAMES, last1, 1),
            "last2": col(_SURNAMES, last2),
            "stem": col(_COMPANY_STEMS, stem),
            "stem_a": col(_COMPANY_STEMS, stem, 1),
            "qual": col(_COMPANY_QUALIFIERS, qual),
            "qual_a": col(_COMPANY_QUALIFIERS, qual, 1),
            "suffix": col(_COMPANY_SUFFIXES, suffix),
            "body": col(_GOVERNMENT_BODIES, body),
            "body_a": col(_GOVERNMENT_BODIES, body, 1),
            "muni": col(_MUNICIPALITIES, muni),
            "muni_a": col(_MUNICIPALITIES, muni, 1),
            "muni_code": col(_MUNICIPALITIES, muni, 2),
            "family": family_company,
            "email_no": rng.integers(1, 100, size=n),
            "domain": col(_EMAIL_DOMAINS, _pick(rng, _EMAIL_DOMAINS, n)),
            "mailbox": col(_COMPANY_MAILBOXES, _pick(rng, _COMPANY_MAILBOXES, n)),
            # NIT = municipality code - DDMMYY (birth / registration) - correlative - check digit
            "nit_day": rng.integers(1, 29, size=n),
            "nit_month": rng.integers(1, 13, size=n),
            "nit_year": rng.integers(0, 100, size=n),
            "nit_corr": rng.integers(1, 1000, size=n),
            "nit_check": rng.integers(0, 10, size=n),
            "mobile": rng.integers(0, 10_000_000, size=n),
            "landline": rng.integers(0, 10_000_000, size=n),
            "mobile_lead": rng.choice(np.array([6, 7]), size=n, p=[0.3, 0.7]),
        }
    )
    c = pl.col
    company_core = (
        pl.when(c("family"))
        .then(pl.concat_str(c("stem"), c("last1"), separator=" "))
        .otherwise(pl.concat_str(c("stem"), c("qual"), separator=" "))
    )
    company_slug = (
        pl.when(c("family"))
        .then(pl.concat_str(c("stem_a"), c("last1_a")))
        .otherwise(pl.concat_str(c("stem_a"), c("qual_a")))
    )
    name = (
        pl.when(c("lt") == _INDIVIDUAL)
        .then(pl.concat_str(c("first"), c("last1"), c("last2"), separator=" "))
        .when(c("lt") == _GOVERNMENT)
        .then(pl.concat_str(c("body"), c("muni"), separator=" "))
        .otherwise(pl.concat_str(company_core, c("suffix"), separator=", "))
    )
    email = (
        pl.when(c("lt") == _INDIVIDUAL)
        .then(pl.format("{}.{}{}@{}", c("first_a"), c("last1_a"), c("email_no"), c("domain")))
        .when(c("lt") == _GOVERNMENT)
        .then(pl.format("tesoreria@{}{}.gob.sv", c("body_a"), c("muni_a")))
        .otherwise(pl.format("{}@{}.com.sv", c("mailbox"), company_slug))
    )
    two = lambda e: e.cast(pl.String).str.zfill(2)  # noqa: E731
    tax_id = pl.format(
        "{}-{}{}{}-{}-{}",
        c("muni_code"),
        two(c("nit_day")),
        two(c("nit_month")),
        two(c("nit_year")),
        c("nit_corr").cast(pl.String).str.zfill(3),
        c("nit_check"),
    )
    mobile = c("mobile").cast(pl.String).str.zfill(7)
    landline = c("landline").cast(pl.String).str.zfill(7)
    phone = (
        pl.when(c("lt") == _INDIVIDUAL)
        .then(pl.format("+503 {}{}-{}", c("mobile_lead"), mobile.str.slice(0, 3), mobile.str.slice(3, 4)))
        .otherwise(pl.format("+503 2{}-{}", landline.str.slice(0, 3), landline.str.slice(3, 4)))
    )
    out = frame.select(
        name.alias("Cliente"), tax_id.alias("Tax ID"), email.alias("Email"), phone.alias("Phone")
    )
    return {col_name: out.get_column(col_name) for col_name in out.columns}


# --------------------------------------------------------------------------- book construction


@dataclass
class _Customers:
    """Per-customer attributes, numbered in order of first loan.

    Numbering by first loan makes the customers of any tape a prefix of the table, which
    is what lets each tape's Customer Data be the previous one plus appended rows.
    """

    first_loan: np.ndarray
    segment: np.ndarray
    legal_type: np.ndarray
    ticket_scale: np.ndarray  # multiplier on the product's base ticket
    risk: np.ndarray  # multiplier on delinquency_rate
    primary_product: np.ndarray
    of_loan: np.ndarray  # customer index of every loan


@dataclass
class _LoanTerms:
    """Contract of every loan (never changes between tapes)."""

    product: np.ndarray
    frequency: np.ndarray
    amount_cents: np.ndarray
    term: np.ndarray  # in days for factoring, months otherwise (the tape's Term Unit)
    apr_bp: np.ndarray  # APR in basis points: 3650 = 0.3650
    risk: np.ndarray
    inst_count: np.ndarray


@dataclass
class _Schedule:
    """Every installment, ordered by (loan, installment number)."""

    offset: np.ndarray  # first installment of each loan; length loans + 1
    loan: np.ndarray
    number: np.ndarray
    due_day: np.ndarray
    prev_due_day: np.ndarray  # due day of the previous installment, disbursement for the first
    principal_cents: np.ndarray
    interest_cents: np.ndarray
    fee_cents: np.ndarray
    other_cents: np.ndarray


@dataclass
class _Book:
    """Everything about the book that does not depend on repayment behaviour.

    Loans are indexed in disbursement order, so "loans disbursed by day D" is always a
    prefix; all money is integer cents and all dates are day numbers since 1970-01-01.
    """

    disb_day: np.ndarray
    customer: np.ndarray
    terms: _LoanTerms
    maturity_day: np.ndarray
    schedule: _Schedule
    # running sums over the whole schedule (length installments + 1), so the principal
    # or interest of installments [a, b) of any loan is cum[b] - cum[a]
    cum_principal_cents: np.ndarray
    cum_interest_cents: np.ndarray
    due_key: np.ndarray  # _key(loan, due day), sorted
    customer_first_loan: np.ndarray
    customer_segment: np.ndarray
    loan_ids: pl.Series
    loans_static: pl.DataFrame
    customers_frame: pl.DataFrame
    schedule_frame: pl.DataFrame
    collateral_frame: pl.DataFrame
    collateral_loan: np.ndarray

    # short aliases used by the simulation's hot loop
    @property
    def amount_cents(self) -> np.ndarray:
        return self.terms.amount_cents

    @property
    def inst_count(self) -> np.ndarray:
        return self.terms.inst_count

    @property
    def inst_offset(self) -> np.ndarray:
        return self.schedule.offset

    @property
    def inst_due_day(self) -> np.ndarray:
        return self.schedule.due_day


def _key(loan: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    """Composite sort key (loan, day): lets one searchsorted answer per-loan questions."""
    return (np.asarray(loan, dtype=np.int64) << _DAY_BITS) | np.asarray(day, dtype=np.int64)


def _disbursement_days(
    rng: np.random.Generator, loans: int, sim_starts: np.ndarray, sim_ends: np.ndarray, growth: float
) -> np.ndarray:
    """Sorted disbursement day of every loan: a growing monthly flow, on business days.

    A month cut short by end_date only gets its elapsed share of the flow, and the first
    month always gets a loan so that the first tape is never an (invalid) empty tape.
    """
    n_months = sim_starts.size
    _, full_ends = _month_bounds(np.datetime64(int(sim_starts[0]), "D").astype("datetime64[M]"), n_months)
    elapsed = (sim_ends - sim_starts + 1) / (full_ends - sim_starts + 1)
    per_month = _largest_remainder((1.0 + growth) ** np.arange(n_months) * elapsed, loans)
    if per_month[0] == 0:
        per_month[int(np.argmax(per_month))] -= 1
        per_month[0] += 1
    month = np.repeat(np.arange(n_months), per_month)
    first, last = sim_starts[month], sim_ends[month]
    raw = first + np.floor(rng.random(loans) * (last - first + 1)).astype(np.int64)
    weekday = (raw + 3) % 7  # 0 = Monday
    business = raw - np.where(weekday == 5, 1, np.where(weekday == 6, 2, 0))
    business = np.where(business < first, business + 3, business)
    inside = (business >= first) & (business <= last)
    return np.sort(np.where(inside, business, raw), kind="stable")


def _draw_customers(rng: np.random.Generator, loans: int, rates: GeneratorRates) -> _Customers:
    """A skewed relationship book: repeat borrowers and a few large obligors.

    Large customers get bigger tickets and more loans, which is what gives top-10
    concentration, HHI and the single-obligor covenant something to measure.
    """
    n = int(min(loans, max(1, round(loans * rates.customers_per_loan))))
    n_large = int(min(n, max(3, round(n * rates.large_customer_share))))
    is_large = np.zeros(n, dtype=bool)
    is_large[rng.choice(n, size=n_large, replace=False)] = True
    segment = rng.choice(len(SEGMENTS), size=n, p=[0.10, 0.18, 0.14, 0.20, 0.10, 0.04, 0.24])
    large_segment = rng.choice(np.array([5, 0, 2, 1]), size=n, p=[0.55, 0.25, 0.1, 0.1])  # Top, Gob, CCF, OC
    segment = np.where(is_large, large_segment, segment)
    u = rng.random(n)
    legal = np.where(u < 0.65, _COMPANY, _INDIVIDUAL)
    legal = np.where(segment == 0, np.where(u < 0.85, _GOVERNMENT, _COMPANY), legal)  # Gob: public bodies
    legal = np.where(segment == 5, _COMPANY, legal)  # Top: corporates
    ticket_scale = rng.lognormal(0.0, 0.5, size=n) * np.where(is_large, rng.uniform(3.0, 6.0, n), 1.0)
    loan_weight = rng.lognormal(0.0, 0.6, size=n) * np.where(is_large, 4.0, 1.0)
    segment_risk = np.array([0.55, 1.0, 0.85, 1.1, 1.5, 0.5, 1.25])
    risk = (
        segment_risk[segment]
        * np.where(legal == _INDIVIDUAL, 1.2, 1.0)
        * np.clip(rng.lognormal(0.0, 0.45, size=n), 0.3, 3.0)
    )
    primary_product = rng.choice(3, size=n, p=_product_shares(rates))

    # every customer gets one loan; the others go to customers by weight (repeat business)
    of_loan = np.empty(loans, dtype=np.int64)
    first_slots = rng.permutation(loans)[:n]
    of_loan[first_slots] = rng.permutation(n)
    rest = np.ones(loans, dtype=bool)
    rest[first_slots] = False
    of_loan[rest] = rng.choice(n, size=int(rest.sum()), p=loan_weight / loan_weight.sum())

    first_loan = np.full(n, loans, dtype=np.int64)
    np.minimum.at(first_loan, of_loan, np.arange(loans))
    order = np.argsort(first_loan, kind="stable")
    renumber = np.empty(n, dtype=np.int64)
    renumber[order] = np.arange(n)
    return _Customers(
        first_loan=first_loan[order],
        segment=segment[order],
        legal_type=legal[order],
        ticket_scale=ticket_scale[order],
        risk=risk[order],
        primary_product=primary_product[order],
        of_loan=renumber[of_loan],
    )


def _product_shares(rates: GeneratorRates) -> np.ndarray:
    credit_line = rates.credit_line_share
    return np.array([rates.factoring_share, 1.0 - rates.factoring_share - credit_line, credit_line])


def _draw_loan_terms(rng: np.random.Generator, customers: _Customers, rates: GeneratorRates) -> _LoanTerms:
    """Product, size, tenor and price of each loan, driven by who the customer is."""
    loans = customers.of_loan.size
    cust = customers.of_loan
    own_product = rng.random(loans) < 0.8
    any_product = rng.choice(3, size=loans, p=_product_shares(rates))
    product = np.where(own_product, customers.primary_product[cust], any_product)
    base_ticket_dollars = np.array([12_000.0, 20_000.0, 30_000.0])[product]
    amount_dollars = base_ticket_dollars * customers.ticket_scale[cust] * rng.lognormal(0.0, 0.35, size=loans)
    amount_cents = (np.clip(np.round(amount_dollars / 100.0) * 100.0, 500.0, 5_000_000.0) * 100).astype(np.int64)

    term_months = rng.choice(np.array([3, 6, 9, 12, 18, 24]), size=loans, p=[0.1, 0.2, 0.15, 0.3, 0.15, 0.1])
    term_frequency = rng.choice(np.array([_MONTHLY, _BIWEEKLY, _WEEKLY]), size=loans, p=[0.6, 0.25, 0.15])
    line_months = rng.choice(np.array([3, 6, 9, 12]), size=loans)
    factoring_days = rng.choice(np.array([30, 45, 60, 75, 90, 120]), size=loans, p=[0.25, 0.2, 0.2, 0.1, 0.15, 0.1])
    is_factoring, is_term = product == _FACTORING, product == _TERM_LOAN
    frequency = np.where(is_term, term_frequency, np.where(is_factoring, _BULLET, _MONTHLY))
    term = np.where(is_factoring, factoring_days, np.where(is_term, term_months, line_months))
    inst_count = np.select(
        [is_factoring, frequency == _BIWEEKLY, frequency == _WEEKLY],
        [1, np.rint(term * 26 / 12), np.rint(term * 52 / 12)],
        default=term,
    ).astype(np.int64)

    apr_by_product = np.array([0.28, 0.30, 0.30])[product]
    apr_by_segment = np.array([-0.06, 0.0, -0.02, 0.01, 0.05, -0.07, 0.03])[customers.segment[cust]]
    apr = np.clip(apr_by_product + apr_by_segment + rng.normal(0.0, 0.04, size=loans), 0.12, 0.60)
    apr_bp = (np.round(apr / 0.005) * 50).astype(np.int64)  # priced in steps of 0.0050
    # invoice payers are less predictable than amortising borrowers about the one date that matters
    risk = customers.risk[cust] * np.where(is_factoring, 1.5, 1.0)
    return _LoanTerms(product, frequency, amount_cents, term, apr_bp, risk, inst_count)


def _amortise(rng: np.random.Generator, terms: _LoanTerms, disb_day: np.ndarray) -> _Schedule:
    """Contractual schedule in cents, vectorised over all installments of all loans.

    Term loans: level payment on cent-rounded balances (interest on the opening balance,
    principal = balance drop, so principal sums to the disbursement exactly). Credit-line
    draws: monthly interest, principal at maturity. Factoring: one bullet of face value
    with interest on actual/360 days.
    """
    loans = disb_day.size
    offset = np.concatenate(([0], np.cumsum(terms.inst_count))).astype(np.int64)
    n = int(offset[-1])
    loan = np.repeat(np.arange(loans, dtype=np.int64), terms.inst_count)
    number = np.arange(n, dtype=np.int64) - offset[loan] + 1
    frequency = terms.frequency[loan]
    disb = disb_day[loan]

    due = np.empty(n, dtype=np.int64)
    monthly = frequency == _MONTHLY
    disb_date = disb[monthly].astype("datetime64[D]")
    disb_month = disb_date.astype("datetime64[M]")
    day_of_month = (disb_date - disb_month.astype("datetime64[D]")).astype(np.int64)
    due_month = disb_month + number[monthly]
    month_start = due_month.astype("datetime64[D]")
    month_days = ((due_month + 1).astype("datetime64[D]") - month_start).astype(np.int64)
    due[monthly] = month_start.astype(np.int64) + np.minimum(day_of_month, month_days - 1)  # 31 Jan -> 28 Feb
    for code, step_days in ((_BIWEEKLY, 14), (_WEEKLY, 7)):
        sel = frequency == code
        due[sel] = disb[sel] + step_days * number[sel]
    bullet = frequency == _BULLET
    due[bullet] = disb[bullet] + terms.term[loan[bullet]]
    prev_due = np.where(number == 1, disb, np.concatenate(([0], due[:-1])))

    amount = terms.amount_cents[loan].astype(np.float64)
    apr = terms.apr_bp[loan] / 10_000.0
    periods_per_year = np.array([1.0, 12.0, 26.0, 52.0])[frequency]
    rate = apr / periods_per_year
    last = number == terms.inst_count[loan]
    growth_after = (1.0 + rate) ** number
    growth_before = (1.0 + rate) ** (number - 1)
    payment = amount * rate / (1.0 - (1.0 + rate) ** (-terms.inst_count[loan]))
    balance_after = np.where(last, 0.0, np.round(amount * growth_after - payment * (growth_after - 1.0) / rate))
    balance_before = np.where(
        number == 1, amount, np.round(amount * growth_before - payment * (growth_before - 1.0) / rate)
    )
    principal = (balance_before - balance_after).astype(np.int64)
    interest = np.round(balance_before * rate).astype(np.int64)
    product = terms.product[loan]
    line = product == _CREDIT_LINE
    principal[line] = np.where(last[line], amount[line], 0).astype(np.int64)
    interest[line] = np.round(amount[line] * apr[line] / 12.0).astype(np.int64)
    factoring = product == _FACTORING
    principal[factoring] = amount[factoring].astype(np.int64)
    interest[factoring] = np.round(amount[factoring] * apr[factoring] * terms.term[loan[factoring]] / 360.0).astype(
        np.int64
    )
    # an admin fee on half the term loans and credit-life insurance ("other") on some
    # non-factoring loans, both per period, so that the fee and other columns are used
    has_fee = (rng.random(loans) < 0.5) & (terms.product == _TERM_LOAN)
    has_insurance = (rng.random(loans) < 0.3) & (terms.product != _FACTORING)
    fee = np.where(has_fee[loan], np.round(0.012 * amount / periods_per_year), 0).astype(np.int64)
    other = np.where(has_insurance[loan], np.round(0.004 * amount / periods_per_year), 0).astype(np.int64)
    return _Schedule(offset, loan, number, due, prev_due, principal, interest, fee, other)


def _loan_static_frame(
    rng: np.random.Generator,
    terms: _LoanTerms,
    disb_day: np.ndarray,
    maturity_day: np.ndarray,
    loan_ids: pl.Series,
    customer_ids: pl.Series,
    of_loan: np.ndarray,
) -> pl.DataFrame:
    """The Loan Data columns fixed at disbursement (the tape adds the state columns)."""
    loans = disb_day.size
    is_factoring, is_term = terms.product == _FACTORING, terms.product == _TERM_LOAN
    # factoring: face value of the invoices over the advance rate; term loans: sometimes
    # the borrower's payment volume, so the optional column is both filled and empty
    advance_rate = rng.uniform(0.80, 0.95, size=loans)
    tpv_present = is_factoring | (is_term & (rng.random(loans) < 0.3))
    tpv = np.where(is_factoring, terms.amount_cents / advance_rate, terms.amount_cents * rng.uniform(1.5, 4.0, loans))
    fee_rate = np.array([0.015, 0.02, 0.01])[terms.product] * rng.uniform(0.7, 1.4, size=loans)
    fee_cents = np.where(rng.random(loans) < 0.1, 0, np.round(terms.amount_cents * fee_rate)).astype(np.int64)
    fee_tax_cents = _round_half_up(fee_cents * 13, 100)  # 13 % IVA
    # APR as text with four decimals (0.3650), independent of the two-decimal money format
    apr_text = (
        pl.DataFrame({"units": terms.apr_bp // 10_000, "frac": terms.apr_bp % 10_000})
        .select(pl.format("{}.{}", pl.col("units"), pl.col("frac").cast(pl.String).str.zfill(4)))
        .to_series()
    )
    return pl.DataFrame(
        [
            loan_ids.alias("Loan ID"),
            customer_ids.gather(of_loan).alias("Customer ID"),
            _labels("Product Type", PRODUCTS, terms.product),
            _dates("Disbursement Date", disb_day),
            _money("Disbursement Amount", terms.amount_cents),
            _money("TPV", np.ceil(tpv), tpv_present),
            _labels("Loan Currency", ("USD",), np.zeros(loans, dtype=np.int64)),
            apr_text.alias("Interest Rate APR"),
            _money("Origination Fee", fee_cents),
            _money("Origination Fee Taxes", fee_tax_cents),
            pl.Series("Term", terms.term.astype(np.int64)),
            _labels("Term Unit", ("days", "months"), (~is_factoring).astype(np.int64)),
            _labels("Payment Frequency", FREQUENCIES, terms.frequency),
            _dates("Maturity Date", maturity_day),
        ]
    )


def _customer_frame(rng: np.random.Generator, customers: _Customers, customer_ids: pl.Series) -> pl.DataFrame:
    """Customer Data with fake PII; optional columns are sometimes empty, as in Cascade."""
    n = customers.segment.size
    pii = _fake_customer_pii(rng, customers.legal_type, customers.segment)
    missing = rng.random((5, n))
    public = len(_INDUSTRIES) - 1
    industry = np.where(customers.legal_type == _GOVERNMENT, public, rng.integers(0, public, size=n))
    region = rng.choice(len(_REGIONS), size=n, p=_REGION_WEIGHTS / _REGION_WEIGHTS.sum())
    agent = rng.integers(0, len(_SALES_AGENTS), size=n)

    def optional(series: pl.Series, is_missing: np.ndarray) -> pl.Series:
        return series.scatter(np.flatnonzero(is_missing), None)

    return pl.DataFrame(
        [
            customer_ids.alias("Customer ID"),
            pii["Cliente"],
            pii["Tax ID"],
            optional(pii["Email"], missing[0] < 0.10),
            optional(pii["Phone"], missing[1] < 0.08),
            _labels("Segment", SEGMENTS, customers.segment),
            optional(_labels("Industry", _INDUSTRIES, industry), missing[2] < 0.05),
            optional(_labels("Region", _REGIONS, region), missing[3] < 0.05),
            optional(_labels("Sales Agent", _SALES_AGENTS, agent), missing[4] < 0.15),
            _labels("Legal Type", LEGAL_TYPES, customers.legal_type),
        ]
    )


def _schedule_frame(schedule: _Schedule, loan_ids: pl.Series) -> pl.DataFrame:
    parts = (schedule.principal_cents, schedule.interest_cents, schedule.fee_cents, schedule.other_cents)
    return pl.DataFrame(
        [
            loan_ids.gather(schedule.loan).alias("Loan ID"),
            pl.Series("Installment Number", schedule.number),
            _dates("Due Date", schedule.due_day),
            _money("Principal Payment", schedule.principal_cents),
            _money("Interest Payment", schedule.interest_cents),
            _money("Fee Payment", schedule.fee_cents),
            _money("Other Payment", schedule.other_cents),
            _money("Total Payment", sum(parts)),
        ]
    )


_SECURED_COLLATERAL = ("Real Estate", "Vehicle", "Machinery", "Cash Deposit", "Personal Guarantee")
_FACTORING_COLLATERAL = ("Promissory Note", "Invoice Assignment", "Personal Guarantee")


def _collateral(
    rng: np.random.Generator, terms: _LoanTerms, loan_ids: pl.Series
) -> tuple[pl.DataFrame, np.ndarray]:
    """Collateral for some loans (mostly secured term loans and lines); rows sorted by loan."""
    loans = terms.product.size
    is_factoring = terms.product == _FACTORING
    secured_share = np.where(is_factoring, 0.10, np.where(terms.product == _CREDIT_LINE, 0.5, 0.35))
    items = np.where(rng.random(loans) < secured_share, np.where(rng.random(loans) < 0.12, 2, 1), 0)
    item_loan = np.repeat(np.arange(loans, dtype=np.int64), items)
    k = item_loan.size
    secured_type = rng.choice(len(_SECURED_COLLATERAL), size=k, p=[0.3, 0.25, 0.2, 0.1, 0.15])
    factoring_type = rng.integers(0, len(_FACTORING_COLLATERAL), size=k) + len(_SECURED_COLLATERAL)
    type_code = np.where(is_factoring[item_loan], factoring_type, secured_type)
    names = _SECURED_COLLATERAL + _FACTORING_COLLATERAL
    value_cents = np.round(terms.amount_cents[item_loan] * rng.uniform(0.3, 2.0, size=k)).astype(np.int64)
    # half the personal guarantees carry no appraised value
    guarantee = np.isin(type_code, [i for i, name in enumerate(names) if name == "Personal Guarantee"])
    value_cents = np.where(guarantee & (rng.random(k) < 0.5), 0, value_cents)
    frame = pl.DataFrame(
        [
            loan_ids.gather(item_loan).alias("Loan ID"),
            _labels("Collateral Type", names, type_code),
            _money("Collateral Current", value_cents),
        ]
    )
    return frame, item_loan


def _build_book(
    rngs: dict[str, np.random.Generator],
    loans: int,
    sim_starts: np.ndarray,
    sim_ends: np.ndarray,
    rates: GeneratorRates,
) -> _Book:
    rng = rngs["book"]
    disb_day = _disbursement_days(rng, loans, sim_starts, sim_ends, rates.origination_growth_monthly)
    customers = _draw_customers(rng, loans, rates)
    terms = _draw_loan_terms(rng, customers, rates)
    schedule = _amortise(rng, terms, disb_day)
    maturity_day = schedule.due_day[schedule.offset[1:] - 1]
    loan_ids = _ids("L", loans, 7)
    customer_ids = _ids("C", customers.segment.size, 7)
    collateral_frame, collateral_loan = _collateral(rngs["collateral"], terms, loan_ids)
    return _Book(
        disb_day=disb_day,
        customer=customers.of_loan,
        terms=terms,
        maturity_day=maturity_day,
        schedule=schedule,
        cum_principal_cents=np.concatenate(([0], np.cumsum(schedule.principal_cents))).astype(np.int64),
        cum_interest_cents=np.concatenate(([0], np.cumsum(schedule.interest_cents))).astype(np.int64),
        due_key=_key(schedule.loan, schedule.due_day),
        customer_first_loan=customers.first_loan,
        customer_segment=customers.segment,
        loan_ids=loan_ids,
        loans_static=_loan_static_frame(
            rng, terms, disb_day, maturity_day, loan_ids, customer_ids, customers.of_loan
        ),
        customers_frame=_customer_frame(rngs["pii"], customers, customer_ids),
        schedule_frame=_schedule_frame(schedule, loan_ids),
        collateral_frame=collateral_frame,
        collateral_loan=collateral_loan,
    )


# --------------------------------------------------------------------------- behaviour


def _avoid_sunday(day: np.ndarray, floor: np.ndarray | int) -> np.ndarray:
    """Move Sunday cash to Saturday where that stays inside the allowed window.

    Banks and cashiers do not post on Sundays, so most Sunday collections files are
    header-only, as in production. The shift is monotone, so installments stay paid in
    order, and it never crosses the month start, the disbursement or a write-off.
    """
    sunday = (day + 3) % 7 == 6
    return np.where(sunday & (day - 1 >= floor), day - 1, day)


@dataclass
class _Outcome:
    inst_paid_day: np.ndarray  # _NEVER when unpaid
    inst_prepaid: np.ndarray  # paid as part of an early payoff
    paid_key: np.ndarray
    wo_day: np.ndarray
    wo_amount_cents: np.ndarray
    recovery_loan: np.ndarray
    recovery_day: np.ndarray
    recovery_cents: np.ndarray


def _simulate(
    book: _Book, rates: GeneratorRates, rng: np.random.Generator, sim_starts: np.ndarray, sim_ends: np.ndarray
) -> _Outcome:
    """Decide, month by month for all live loans at once, which installments get paid when.

    A loan with nothing overdue either pays each installment of the month a few days
    after its due date (never past month-paid_after, so month-paid_after DPD reflects behaviour, not
    lag_days) or misses them all. A loan with overdue installments cures (pays everything due
    on one day), pays its oldest installment only, or pays nothing. Write-off happens
    the day the oldest unpaid installment reaches ``writeoff_dpd`` days overdue, so any
    payment drawn for that month is placed before it.
    """
    n_loans = book.disb_day.size
    n_inst = book.inst_due_day.size
    lag_days = rng.integers(0, rates.max_payment_lag_days + 1, size=n_inst)
    # on-time payers mostly pay on the day; skew the lag_days towards 0
    lag_days = np.where(rng.random(n_inst) < 0.55, 0, lag_days)
    paid_day = np.full(n_inst, _NEVER, dtype=np.int64)
    prepaid = np.zeros(n_inst, dtype=bool)
    paid_count = np.zeros(n_loans, dtype=np.int64)
    wo_day = np.full(n_loans, _NEVER, dtype=np.int64)
    wo_amount_cents = np.zeros(n_loans, dtype=np.int64)
    recovered_cents = np.zeros(n_loans, dtype=np.int64)
    rec_loans: list[np.ndarray] = []
    rec_days: list[np.ndarray] = []
    rec_cents: list[np.ndarray] = []
    can_prepay = book.terms.product != _FACTORING
    writeoff_dpd = rates.writeoff_dpd

    for month_first, month_last in zip(sim_starts.tolist(), sim_ends.tolist()):
        live = np.flatnonzero((book.disb_day <= month_last) & (paid_count < book.inst_count) & (wo_day == _NEVER))
        if live.size:
            first_inst = book.inst_offset[live]
            paid_before = paid_count[live]
            first_unpaid_due = book.inst_due_day[first_inst + paid_before]
            due_by_month_last = np.searchsorted(book.due_key, _key(live, month_last), side="right") - first_inst
            n = live.size
            u_behaviour, u_prepay, u_day = rng.random(n), rng.random(n), rng.random(n)
            delinquent = first_unpaid_due < month_first
            in_default = delinquent & (month_first - first_unpaid_due >= 90)
            factor = np.where(in_default, rates.default_cure_multiplier, 1.0)
            writeoff_day_if_unpaid = first_unpaid_due + writeoff_dpd
            can_pay_late = delinquent & (writeoff_day_if_unpaid > month_first)
            cure = can_pay_late & (u_behaviour < rates.cure_rate * factor)
            partial = (
                can_pay_late
                & ~cure
                & (u_behaviour < (rates.cure_rate + rates.partial_payment_rate) * factor)
            )
            miss = ~delinquent & (u_behaviour < np.minimum(1.0, rates.delinquency_rate * book.terms.risk[live]))
            on_time = ~delinquent & ~miss
            disb = book.disb_day[live]
            prepay = on_time & can_prepay[live] & (u_prepay < rates.prepayment_rate) & (disb < month_last)

            # day of a late (cure / partial) payment: before the write-off day
            late_day_max = np.minimum(month_last, writeoff_day_if_unpaid - 1)
            late_span = np.maximum(late_day_max - month_first + 1, 1)
            late_day = month_first + np.floor(u_day * late_span).astype(np.int64)
            prepay_day_min = np.maximum(month_first, disb + 1)
            prepay_span = np.maximum(month_last - prepay_day_min + 1, 1)
            prepay_day = prepay_day_min + np.floor(u_day * prepay_span).astype(np.int64)

            paid_after = np.where(on_time | cure, np.maximum(due_by_month_last, paid_before), paid_before)
            paid_after = np.where(partial, paid_before + 1, paid_after)
            paid_after = np.where(prepay, book.inst_count[live], paid_after)
            lo = np.where(cure | partial, late_day, month_first)
            hi = np.where(partial, late_day, np.where(prepay, prepay_day, month_last))

            count = paid_after - paid_before
            total = int(count.sum())
            if total:
                owner = np.repeat(np.arange(n), count)
                within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
                idx = first_inst[owner] + paid_before[owner] + within
                day = np.clip(book.inst_due_day[idx] + lag_days[idx], lo[owner], hi[owner])
                day = _avoid_sunday(day, np.maximum(month_first, disb[owner] + 1))
                paid_day[idx] = day
                prepaid[idx] = prepay[owner]
            paid_count[live] = paid_after

            # write-off: the oldest unpaid installment reached writeoff_dpd this month
            still = paid_after < book.inst_count[live]
            last_inst = first_inst + book.inst_count[live] - 1
            first_unpaid_due_after = book.inst_due_day[np.minimum(first_inst + paid_after, last_inst)]
            now = still & (first_unpaid_due_after + writeoff_dpd <= month_last)
            wo_loans = live[now]
            wo_day[wo_loans] = first_unpaid_due_after[now] + writeoff_dpd
            cum = book.cum_principal_cents
            repaid_cents = cum[first_inst[now] + paid_after[now]] - cum[first_inst[now]]
            wo_amount_cents[wo_loans] = book.amount_cents[wo_loans] - repaid_cents

        # recoveries: money from the collection agency / guarantors after write-off
        written_off = np.flatnonzero((wo_day < month_last) & (recovered_cents < wo_amount_cents))
        if written_off.size:
            hit = rng.random(written_off.size) < rates.recovery_rate
            share = rng.uniform(0.05, 0.35, size=written_off.size)
            u_rec = rng.random(written_off.size)
            written_off = written_off[hit]
            if written_off.size:
                first = np.maximum(month_first, wo_day[written_off] + 1)
                day = first + np.floor(u_rec[hit] * (month_last - first + 1)).astype(np.int64)
                day = _avoid_sunday(day, first)
                recovery_cents_now = np.minimum(
                    np.maximum(np.round(wo_amount_cents[written_off] * share[hit]).astype(np.int64), 100),
                    wo_amount_cents[written_off] - recovered_cents[written_off],
                )
                recovered_cents[written_off] += recovery_cents_now
                rec_loans.append(written_off)
                rec_days.append(day)
                rec_cents.append(recovery_cents_now)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    return _Outcome(
        inst_paid_day=paid_day,
        inst_prepaid=prepaid,
        paid_key=_key(book.schedule.loan, paid_day),
        wo_day=wo_day,
        wo_amount_cents=wo_amount_cents,
        recovery_loan=cat(rec_loans),
        recovery_day=cat(rec_days),
        recovery_cents=cat(rec_cents),
    )


# --------------------------------------------------------------------------- payments

_KIND_REGULAR, _KIND_PREPAY, _KIND_RECOVERY = 0, 1, 2
# payment components in cents, keyed by their Historic Real Payment header
_PAYMENT_PARTS = (
    "True Principal Payment",
    "True Interest Payment",
    "True Fee Payment",
    "True Other Payment",
    "True Tax Payment",
    "True Fee Tax Payment",
    "True Rabates",
)


@dataclass
class _Payments:
    """Every payment row (Settled and Reversed), sorted by (date, loan, attempt)."""

    day: np.ndarray
    settled: np.ndarray
    kind: np.ndarray  # _KIND_REGULAR / _KIND_PREPAY / _KIND_RECOVERY
    frame: pl.DataFrame  # Historic Real Payment rows
    collections: pl.DataFrame  # Settled rows only, same order
    collections_day: np.ndarray


def _price_installment_payments(book: _Book, outcome: _Outcome) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Group paid installments into payments and price them, in cents.

    Installments paid the same day by the same loan form one payment. An early payoff
    charges the running period's interest and rebates the unearned days (the
    ``True Rabates`` column) and charges nothing for later periods; a payment more than
    five days late carries a late fee (Other) with 13 % IVA (Tax); scheduled fees carry
    13 % IVA (Fee Tax).
    """
    paid = np.flatnonzero(outcome.inst_paid_day != _NEVER)
    loan = book.schedule.loan[paid]
    day = outcome.inst_paid_day[paid]
    due = book.inst_due_day[paid]
    starts_payment = np.ones(paid.size, dtype=bool)
    starts_payment[1:] = (loan[1:] != loan[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(starts_payment)

    # installments of an early payoff that were not yet due (a Saturday payment of a
    # Sunday installment is an ordinary payment, not a payoff)
    future = (due > day) & outcome.inst_prepaid[paid]
    after_future = np.zeros(paid.size, dtype=bool)
    after_future[1:] = future[:-1]
    running_period = future & ~(after_future & ~starts_payment)
    charged = ~future | running_period
    interest = book.schedule.interest_cents[paid]
    period_days = np.maximum(due - book.schedule.prev_due_day[paid], 1)

    def per_payment(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts) if starts.size else np.zeros(0, dtype=np.int64)

    principal = per_payment(book.schedule.principal_cents[paid])
    interest_charged = per_payment(np.where(charged, interest, 0))
    fee = per_payment(np.where(charged, book.schedule.fee_cents[paid], 0))
    late_fee = np.where(day[starts] - due[starts] > 5, 500 + (principal + interest_charged) // 200, 0)
    parts = {
        "True Principal Payment": principal,
        "True Interest Payment": interest_charged,
        "True Fee Payment": fee,
        "True Other Payment": per_payment(np.where(charged, book.schedule.other_cents[paid], 0)) + late_fee,
        "True Tax Payment": _round_half_up(late_fee * 13, 100),
        "True Fee Tax Payment": _round_half_up(fee * 13, 100),
        "True Rabates": per_payment(np.where(running_period, interest * (due - day) // period_days, 0)),
    }
    kind = np.where(per_payment(future.astype(np.int64)) > 0, _KIND_PREPAY, _KIND_REGULAR)
    return loan[starts], day[starts], kind, parts


def _build_payments(book: _Book, outcome: _Outcome, rates: GeneratorRates, rng: np.random.Generator) -> _Payments:
    """All Historic Real Payment rows plus the collections view of the Settled ones.

    Recoveries are principal-only cash against the written-off balance. A bounced attempt
    (Reversed) repeats a settled payment's amounts up to three days earlier; it has no
    balance effect and no collections row. Payment ids follow (date, loan, attempt), so
    they are stable across tapes and a tape's history is a prefix of the full table.
    """
    loan, day, kind, parts = _price_installment_payments(book, outcome)
    recoveries = outcome.recovery_loan.size
    loan = np.concatenate((loan, outcome.recovery_loan))
    day = np.concatenate((day, outcome.recovery_day))
    kind = np.concatenate((kind, np.full(recoveries, _KIND_RECOVERY)))
    for name in _PAYMENT_PARTS:
        extra = outcome.recovery_cents if name == "True Principal Payment" else np.zeros(recoveries, dtype=np.int64)
        parts[name] = np.concatenate((parts[name], extra))

    attempt_bounced = rng.random(loan.size) < rates.reversal_rate
    days_earlier = rng.integers(0, 4, size=loan.size)
    bounced = np.flatnonzero(attempt_bounced & (kind != _KIND_RECOVERY))
    bounce_day = np.maximum(day[bounced] - days_earlier[bounced], book.disb_day[loan[bounced]] + 1)
    settled = np.concatenate((np.ones(loan.size, dtype=bool), np.zeros(bounced.size, dtype=bool)))
    loan = np.concatenate((loan, loan[bounced]))
    day = np.concatenate((day, bounce_day))
    kind = np.concatenate((kind, kind[bounced]))
    parts = {name: np.concatenate((cents, cents[bounced])) for name, cents in parts.items()}

    order = np.lexsort((settled, loan, day))  # a bounced attempt sorts before its retry
    loan, day, kind, settled = loan[order], day[order], kind[order], settled[order]
    parts = {name: cents[order] for name, cents in parts.items()}
    total = sum(parts[name] for name in _PAYMENT_PARTS[:-1]) - parts["True Rabates"]

    payment_ids = _ids("P", loan.size, 9)
    loan_ids = book.loan_ids.gather(loan)
    frame = pl.DataFrame(
        [
            payment_ids.alias("Payment ID"),
            loan_ids.alias("Loan ID"),
            _dates("True Payment Date", day),
            *[_money(name, parts[name]) for name in _PAYMENT_PARTS],
            _money("True Total Payment", total),
            _labels("True Payment Status", ("Reversed", "Settled"), settled.astype(np.int64)),
        ]
    )

    rows = np.flatnonzero(settled)
    is_recovery = kind[rows] == _KIND_RECOVERY
    channel = rng.choice(len(CHANNELS), size=rows.size, p=[0.45, 0.15, 0.1, 0.25, 0.05])
    recovery_channel = np.where(rng.random(rows.size) < 0.6, CHANNELS.index("agency"), 0)
    channel = np.where(is_recovery, recovery_channel, channel)
    collections = pl.DataFrame(
        [
            payment_ids.gather(rows).alias("payment_id"),
            loan_ids.gather(rows).alias("loan_id"),
            _dates("received_date", day[rows]),
            _money("amount", total[rows]),
            _labels("channel", CHANNELS, channel),
            pl.Series("is_recovery", is_recovery),
        ]
    )
    return _Payments(day=day, settled=settled, kind=kind, frame=frame, collections=collections,
                     collections_day=day[rows])


# --------------------------------------------------------------------------- state on a day


@dataclass
class _State:
    """Per-loan state at the end of one day, for the loans disbursed by then."""

    loans: int  # loans disbursed on or before the day (a prefix of the book)
    paid_count: np.ndarray  # installments paid by the end of the day
    due_before: np.ndarray  # installments due before the day (overdue if unpaid)
    outstanding_cents: np.ndarray
    dpd: np.ndarray
    status: np.ndarray  # index into LOAN_STATUSES
    active: np.ndarray
    written_off: np.ndarray


def _state_on(book: _Book, outcome: _Outcome, day: int, writeoff_dpd: int) -> _State:
    """Book as of end of ``day``: the single source of both the tape and the daily feeds."""
    n = int(np.searchsorted(book.disb_day, day, side="right"))
    loan = np.arange(n, dtype=np.int64)
    first_inst = book.inst_offset[:n]
    count = book.inst_count[:n]
    paid_count = np.searchsorted(outcome.paid_key, _key(loan, day), side="right") - first_inst
    due_before = np.searchsorted(book.due_key, _key(loan, day - 1), side="right") - first_inst
    written_off = outcome.wo_day[:n] <= day
    complete = paid_count >= count
    active = ~written_off & ~complete
    first_unpaid_due = book.inst_due_day[first_inst + np.minimum(paid_count, count - 1)]
    dpd = np.where(active, np.maximum(0, day - first_unpaid_due), 0)
    dpd = np.where(written_off, writeoff_dpd, dpd)
    repaid_cents = book.cum_principal_cents[first_inst + paid_count] - book.cum_principal_cents[first_inst]
    outstanding_cents = np.where(active, book.amount_cents[:n] - repaid_cents, 0)
    status = np.where(dpd == 0, 0, np.where(dpd < 90, 1, 2))
    status = np.where(complete, 3, np.where(written_off, 4, status))
    return _State(n, paid_count, due_before, outstanding_cents, dpd, status, active, written_off)


# --------------------------------------------------------------------------- writing


class _Writer:
    """Writes files with fixed bytes and mtimes, counting what it produced."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.files = 0
        self.bytes = 0

    def folder(self, source: str, as_of: date) -> Path:
        path = self.out_dir / source / as_of.isoformat()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def csv(self, frame: pl.DataFrame, path: Path, as_of: date) -> None:
        frame.write_csv(path, float_precision=2)
        self._done(path, as_of)

    def extend(self, previous: Path, rows: pl.DataFrame, path: Path, as_of: date) -> None:
        """Previous tape's file + new rows: same bytes as a full rewrite of the prefix."""
        shutil.copyfile(previous, path)
        if rows.height:
            with path.open("ab") as handle:
                rows.write_csv(handle, include_header=False, float_precision=2)
        self._done(path, as_of)

    def zip(self, members: dict[str, pl.DataFrame], path: Path, as_of: date) -> None:
        stamp = datetime.fromtimestamp(delivery_mtime(as_of), _LOCAL_TZ)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for name, frame in members.items():
                buffer = io.BytesIO()
                frame.write_csv(buffer, float_precision=2)
                info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, buffer.getvalue(), compresslevel=6)
        self._done(path, as_of)

    def _done(self, path: Path, as_of: date) -> None:
        stamp = delivery_mtime(as_of)
        os.utime(path, (stamp, stamp))
        self.files += 1
        self.bytes += path.stat().st_size


def _loan_data(book: _Book, outcome: _Outcome, state: _State) -> pl.DataFrame:
    n = state.loans
    wo = state.written_off
    return book.loans_static.slice(0, n).with_columns(
        _money("Outstanding Loan Value", state.outstanding_cents),
        pl.Series("Days in Default", state.dpd.astype(np.int64)),
        _labels("Loan Status", LOAN_STATUSES, state.status),
        _dates("Write Off Date", np.where(wo, outcome.wo_day[:n], 0), wo),
        _money("Write Off Amount", outcome.wo_amount_cents[:n], wo),
    )


def _delinquency_frame(book: _Book, outcome: _Outcome, state: _State, day: int, seed: int) -> pl.DataFrame:
    """Servicing view of the active loans; derived from the same state as the tape."""
    loans = np.flatnonzero(state.active)
    first_inst = book.inst_offset[loans]
    paid_count = state.paid_count[loans]
    due_before = np.maximum(state.due_before[loans], paid_count)
    dpd = state.dpd[loans]
    overdue_from, overdue_to = first_inst + paid_count, first_inst + due_before
    overdue_principal = book.cum_principal_cents[overdue_to] - book.cum_principal_cents[overdue_from]
    overdue_interest = book.cum_interest_cents[overdue_to] - book.cum_interest_cents[overdue_from]
    late = dpd > 0
    first_unpaid = day - dpd
    stage = np.searchsorted(np.array([1, 30, 90]), dpd, side="right")  # none/early/late/legal
    # a stable quarter of the loans past 60 DPD are handed to an external agency
    agency = (dpd >= 60) & (_hash3(seed, loans, 0xA6E) % np.uint64(4) == 0)
    stage = np.where(agency, 4, stage)
    # promises to pay: kept ones point at the real next payment, broken ones roll every 15 days
    next_paid = outcome.inst_paid_day[first_inst + np.minimum(paid_count, book.inst_count[loans] - 1)]
    episode = _hash3(seed, loans, first_unpaid) % np.uint64(100)
    kept = late & (next_paid > day) & (next_paid <= day + 14) & (episode < 60)
    broken = late & ~kept & (episode >= 60) & (episode < 75)
    rolling = first_unpaid + 15 * ((day - first_unpaid) // 15 + 1)
    promise = np.where(kept, next_paid, rolling)
    return pl.DataFrame(
        [
            _dates("as_of_date", np.full(loans.size, day)),
            book.loan_ids.gather(loans).alias("loan_id"),
            pl.Series("days_past_due", dpd.astype(np.int64)),
            _money("overdue_principal", overdue_principal),
            _money("overdue_interest", overdue_interest),
            _dates("first_unpaid_due_date", first_unpaid, late),
            _labels("collection_stage", COLLECTION_STAGES, stage),
            _dates("promise_to_pay_date", promise, kept | broken),
        ]
    )


def _buckets(state: _State) -> dict[str, int]:
    out = {name: 0 for name in DPD_BUCKETS}
    active_dpd = state.dpd[state.active]
    codes = np.searchsorted(_DPD_BUCKET_FLOORS, active_dpd, side="right") - 1
    for code, count in zip(*np.unique(codes, return_counts=True)):
        out[DPD_BUCKETS[int(code)]] = int(count)
    out["written_off"] = int(state.written_off.sum())
    out["paid_off"] = int((state.status == 3).sum())
    return out


# --------------------------------------------------------------------------- entry point


def generate_landing(
    out_dir: Path,
    loans: int,
    months: int,
    seed: int,
    *,
    end_date: date = date(2026, 10, 31),
    rates: GeneratorRates = GeneratorRates(),
    delinquency_cadence: Literal["daily", "month-end"] = "daily",
    zip_tapes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Write a complete, internally consistent landing zone under ``out_dir``.

    ``loans`` is the total number of loans over the whole horizon: the initial book
    (``rates.history_months`` of originations before the first tape, with their full
    payment history) plus the monthly originations of the ``months`` tape months.
    The same arguments always produce the same bytes and modification times.
    """
    if loans < 1:
        raise ValueError("loans must be >= 1")
    if delinquency_cadence not in ("daily", "month-end"):
        raise ValueError("delinquency_cadence must be 'daily' or 'month-end'")
    say = progress or (lambda _message: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tapes = tape_dates_for(end_date, months)
    tape_days = [_day(t) for t in tapes]
    first_tape_month = np.datetime64(tapes[0], "M")
    sim_count = months + rates.history_months
    sim_starts, sim_ends = _month_bounds(first_tape_month - rates.history_months, sim_count)
    sim_ends = np.minimum(sim_ends, _day(end_date))

    children = np.random.SeedSequence(seed).spawn(5)
    rngs = {
        name: np.random.Generator(np.random.PCG64(child))
        for name, child in zip(("book", "pii", "collateral", "behaviour", "payments"), children)
    }
    say(f"building book: {loans} loans, {months} tape months + {rates.history_months} months of history")
    book = _build_book(rngs, loans, sim_starts, sim_ends, rates)
    say(f"simulating {sim_count} months of repayment behaviour over {book.inst_due_day.size} installments")
    outcome = _simulate(book, rates, rngs["behaviour"], sim_starts, sim_ends)
    payments = _build_payments(book, outcome, rates, rngs["payments"])
    say(f"{payments.day.size} payment rows ({int((~payments.settled).sum())} reversed)")

    writer = _Writer(out_dir)
    last_state: _State | None = None
    previous: dict[str, Path] = {}
    previous_rows: dict[str, int] = {}
    prefix_frames = {
        "Customer Data": book.customers_frame,
        "Payment Schedule": book.schedule_frame,
        "Historic Real Payment": payments.frame,
        "Collateral": book.collateral_frame,
    }
    for tape, tape_day in zip(tapes, tape_days):
        state = _state_on(book, outcome, tape_day, rates.writeoff_dpd)
        n = state.loans
        rows = {
            "Customer Data": int(np.searchsorted(book.customer_first_loan, n, side="left")),
            "Payment Schedule": int(book.inst_offset[n]),
            "Historic Real Payment": int(np.searchsorted(payments.day, tape_day, side="right")),
            "Collateral": int(np.searchsorted(book.collateral_loan, n, side="left")),
        }
        folder = writer.folder(SOURCE_CASCADE, tape)
        loan_data = _loan_data(book, outcome, state)
        if zip_tapes:
            members = {cascade_file_name("Loan Data"): loan_data}
            for table, frame in prefix_frames.items():
                members[cascade_file_name(table)] = frame.slice(0, rows[table])
            writer.zip(members, folder / cascade_zip_name(tape), tape)
        else:
            writer.csv(loan_data, folder / cascade_file_name("Loan Data"), tape)
            for table, frame in prefix_frames.items():
                path = folder / cascade_file_name(table)
                if table in previous:
                    start = previous_rows[table]
                    writer.extend(previous[table], frame.slice(start, rows[table] - start), path, tape)
                else:
                    writer.csv(frame.slice(0, rows[table]), path, tape)
                previous[table], previous_rows[table] = path, rows[table]
        say(f"tape {tape}: {n} loans, {rows['Historic Real Payment']} payments")
        last_state = state

    # daily feeds from the first day of the first tape month
    first_day = _day(tapes[0].replace(day=1))
    last_day = _day(end_date)
    tape_day_set = set(tape_days)
    collection_bounds = np.searchsorted(payments.collections_day, np.arange(first_day, last_day + 2), side="left")
    collections_files = delinquency_files = 0
    for i, day in enumerate(range(first_day, last_day + 1)):
        as_of = _date(day)
        lo, hi = int(collection_bounds[i]), int(collection_bounds[i + 1])
        writer.csv(
            payments.collections.slice(lo, hi - lo),
            writer.folder(SOURCE_COLLECTIONS, as_of) / collections_file_name(as_of),
            as_of,
        )
        collections_files += 1
        if delinquency_cadence == "daily" or day in tape_day_set:
            state = _state_on(book, outcome, day, rates.writeoff_dpd)
            writer.csv(
                _delinquency_frame(book, outcome, state, day, seed),
                writer.folder(SOURCE_DELINQUENCY, as_of) / delinquency_file_name(as_of),
                as_of,
            )
            delinquency_files += 1
        if as_of.day == 1:
            say(f"daily feeds from {as_of}")

    assert last_state is not None
    end = _day(end_date)
    written_off = outcome.wo_day <= end
    loan_segment = book.customer_segment[book.customer]
    summary = GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        tape_dates=tuple(tapes),
        files_written=writer.files,
        bytes_written=writer.bytes,
        tapes=len(tapes),
        collections_files=collections_files,
        delinquency_files=delinquency_files,
        loans=loans,
        customers=int(book.customer_first_loan.size),
        installments=int(book.inst_due_day.size),
        settled_payments=int(payments.settled.sum()),
        reversals=int((~payments.settled).sum()),
        prepayments=int((payments.settled & (payments.kind == _KIND_PREPAY)).sum()),
        write_offs=int(written_off.sum()),
        recoveries=int((payments.kind == _KIND_RECOVERY).sum()),
        completed_loans=int((last_state.status == 3).sum()),
        loans_by_product={name: int((book.terms.product == code).sum()) for code, name in enumerate(PRODUCTS)},
        loans_by_segment={name: int((loan_segment == code).sum()) for code, name in enumerate(SEGMENTS)},
        dpd_buckets_last_tape=_buckets(last_state),
        opb_last_tape=float(last_state.outstanding_cents[last_state.active].sum()) / 100.0,
    )
    say(f"done: {summary.files_written} files, {summary.bytes_written / 1e6:.1f} MB")
    return summary
