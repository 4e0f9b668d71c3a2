"""Find PII-looking values in text columns that the contract does not declare as PII.

Offline and vectorized: regular expressions evaluated by polars over whole
columns (no language model, nothing downloaded).  Person names in free text
are recognised as two or more capitalised words where one is a common
Salvadoran/Latin American given name — cheap, explainable, and enough to
flag a column for a human to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# The given names most frequent in El Salvador's civil registry and in the Cascade exports seen so far.
GIVEN_NAMES = (
    "Jose Juan Carlos Luis Jorge Mario Miguel Francisco Manuel Pedro Oscar Roberto Ricardo Rafael Antonio "
    "Jesus Marvin Nelson Edwin Walter Wilfredo Mauricio Rene Julio Cesar Ernesto Fernando David Daniel Jaime "
    "Maria Ana Rosa Carmen Sandra Patricia Gloria Claudia Silvia Marta Karla Sonia Reina Blanca Elena Ester "
    "Guadalupe Veronica Lucia Beatriz Teresa Yesenia Rocio Fatima Andrea Gabriela Daniela Alejandra Sofia"
).split()

PATTERNS: dict[str, str] = {
    "email": r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b",
    "phone": r"(?:\+503[\s-]?)?\b[267]\d{3}[\s-]?\d{4}\b",
    "tax_id": r"\b\d{4}-\d{6}-\d{3}-\d\b|\b\d{8}-\d\b",  # NIT, DUI
    "person_name": r"\b(?:" + "|".join(GIVEN_NAMES) + r")\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+\b",
}
ANY_PATTERN = "|".join(f"(?:{pattern})" for pattern in PATTERNS.values())
MIN_SHARE = 0.0  # any hit flags the column: a human decides


@dataclass(frozen=True)
class PiiFinding:
    column: str
    kind: str
    rows: int
    share: float

    def as_record(self) -> dict:
        return {"column": self.column, "kind": self.kind, "rows": self.rows, "share": round(self.share, 4)}


def scan_text_columns(frame: pl.DataFrame, columns: list[str]) -> list[PiiFinding]:
    """Counts of PII-looking values per (column, kind); values themselves are never returned."""
    if not columns or frame.height == 0:
        return []
    # one pass per column with every pattern at once; the kinds are counted only where something matched
    hit = frame.select([pl.col(column).str.contains(ANY_PATTERN).any().alias(column) for column in columns]).row(0)
    columns = [column for column, any_hit in zip(columns, hit) if any_hit]
    if not columns:
        return []
    counts = frame.select([
        pl.col(column).str.contains(pattern).fill_null(False).sum().alias(f"{column}\u0000{kind}")
        for column in columns for kind, pattern in PATTERNS.items()
    ]).row(0, named=True)
    findings = []
    for key, hits in counts.items():
        column, kind = key.split("\u0000")
        if hits and hits / frame.height > MIN_SHARE:
            findings.append(PiiFinding(column, kind, int(hits), hits / frame.height))
    return findings
