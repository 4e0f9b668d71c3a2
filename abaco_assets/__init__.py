"""Abaco Loans Analytics: the Dagster code location (``definitions``) and the ``abaco`` command (``cli``)."""

import os

# Polars' allocator (jemalloc) hands freed memory back to the kernel after 0.5-1 s (polars' default).
# Each table of a tape needs a few hundred MiB of buffers that the next table asks for again, and
# fresh pages cost the kernel a zeroing each time (the ingest's largest kernel cost, `perf`). Kept
# for 10 s, they are reused: the large benchmark's ingest takes ~7 % less CPU (bench/results.md) for
# ~60 to 150 MiB more peak RSS (of ~3 GiB), and an idle process still returns them. Polars reads this when it is first
# imported, so it is set here, before any module of this package imports polars; an operator's own
# _RJEM_MALLOC_CONF wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
