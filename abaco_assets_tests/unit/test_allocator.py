"""Polars' allocator keeps freed memory for 10 s under this package (abaco_assets/__init__.py)."""

import os
import subprocess
import sys

PROBE = "import abaco_assets.lib.validation, os; print(os.environ['_RJEM_MALLOC_CONF'])"


def _conf(env: dict[str, str]) -> str:
    completed = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return completed.stdout.strip()


def test_polars_reads_the_longer_decay_when_imported_through_the_package():
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    conf = _conf(env)
    # polars appends an override to its own defaults (dirty 500 ms, muzzy 1000 ms); the last setting wins
    assert conf.endswith(",dirty_decay_ms:10000,muzzy_decay_ms:10000"), conf


def test_an_operators_own_allocator_setting_is_kept():
    conf = _conf({**os.environ, "_RJEM_MALLOC_CONF": "narenas:2"})
    assert conf.endswith(",narenas:2") and "10000" not in conf, conf
