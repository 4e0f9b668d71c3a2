"""Browser tests of the Dagster UI (`dagster dev` on 127.0.0.1, Debian's headless chromium)."""
