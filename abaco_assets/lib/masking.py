"""Keyed hashing of PII before data leaves the raw zone.

Why HMAC in Python: DuckDB has no keyed hash, and the key must never appear
in SQL text (query logs, dbt artefacts).  Hashing the distinct values only
keeps this cheap: a tape has far fewer customers than rows elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl


def hmac_column(values: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 (hex) of every non-null value; equal inputs give equal outputs, so joins still work."""
    distinct = values.drop_nulls().unique()
    digests = [hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest() for value in distinct.to_list()]
    mapping = pl.DataFrame({"value": distinct, "digest": pl.Series(digests, dtype=pl.String)})
    joined = pl.DataFrame({"value": values}).join(mapping, on="value", how="left", maintain_order="left")
    return joined["digest"].alias(values.name)
