"""A tiny code location whose jobs carry the production domain tags and the writer pool.

The queue tests never execute these ops (the run launcher they use only records launches);
what matters is what the queue sees: the run tags (`domain`) and the pools of the ops.
"""

import dagster as dg

WRITER_POOL = "warehouse_writer"


@dg.op
def fetch_delivery():
    """An ingestion step: reads landing, writes raw files, no warehouse write."""


@dg.op(pool=WRITER_POOL)
def build_marts():
    """A transform step that writes the warehouse (a dbt build)."""


@dg.op
def collect_evidence():
    """A compliance step that only reads."""


@dg.op(pool=WRITER_POOL)
def write_audit_table():
    """A compliance step that writes a table into the warehouse."""


@dg.job(tags={"domain": "ingestion"})
def ingest_job():
    fetch_delivery()


@dg.job(tags={"domain": "transform"})
def transform_job():
    build_marts()


@dg.job(tags={"domain": "compliance"})
def evidence_job():
    collect_evidence()


@dg.job(tags={"domain": "compliance"})
def audit_table_job():
    write_audit_table()


defs = dg.Definitions(jobs=[ingest_job, transform_job, evidence_job, audit_table_job])
