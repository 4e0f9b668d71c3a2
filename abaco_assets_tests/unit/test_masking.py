"""The PII hash is standard HMAC-SHA256 whatever the key length, the values or what the process remembers."""

import hashlib
import hmac

import polars as pl
import pytest

from abaco_assets.lib import masking
from abaco_assets.lib.masking import hmac_column

VALUES = ["0614-250190-101-7", "ana@example.com", "Peña Ñandú", "", "0614-250190-101-7", None]


def _reference(key: bytes, value: str | None) -> str | None:
    return None if value is None else hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long key " * 20, "clé secrète".encode()])
def test_digests_are_rfc2104_hmac_sha256(key):
    column = hmac_column(pl.Series("tax_id", VALUES), key)
    assert column.name == "tax_id"
    assert column.to_list() == [_reference(key, value) for value in VALUES]
    # the second call is answered from what the process remembers: the same digests
    assert hmac_column(pl.Series("tax_id", VALUES[::-1]), key).to_list() == [_reference(key, v) for v in VALUES[::-1]]


def test_a_new_key_forgets_the_old_keys_digests():
    hmac_column(pl.Series("email", VALUES), b"old key")
    column = hmac_column(pl.Series("email", VALUES), b"new key")
    assert column.to_list() == [_reference(b"new key", value) for value in VALUES]
    assert list(masking._HASHERS) == [b"new key"]


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(masking, "MAX_REMEMBERED", 3)
    hasher = masking._hasher(b"bounded")
    hasher.remembered.clear()
    for start in range(0, 40, 5):
        values = [f"customer-{n}" for n in range(start, start + 5)]
        assert hasher.digests(values) == [_reference(b"bounded", v) for v in values]
        assert len(hasher.remembered) <= 3 + 5
