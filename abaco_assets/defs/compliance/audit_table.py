"""The audit trail as a queryable warehouse table (compliance.audit_log), verified before it is loaded."""

import dagster as dg
import polars as pl

from abaco_assets.resources import AbacoSettings
from abaco_assets.warehouse import Warehouse

AUDIT_TABLE = dg.AssetKey(["compliance", "audit_log"])


@dg.asset(
    key=AUDIT_TABLE,
    group_name="compliance",
    kinds={"python", "duckdb"},
    owners=["team:compliance"],
    tags={"domain": "compliance"},
    pool="warehouse_writer",
    description="Every dataset read and write (who, when, purpose, ticket, dataset, partition, rows, content hash) "
                "from the hash-chained audit trail in $ABACO_DATA/audit, as table compliance.audit_log.",
    check_specs=[dg.AssetCheckSpec("chain_intact", asset=AUDIT_TABLE, blocking=True,
                                   description="The audit trail's hash chain verifies: no record altered, removed "
                                               "or inserted.")],
)
def audit_log(context: dg.AssetExecutionContext, settings: AbacoSettings, warehouse: Warehouse):
    log = settings.audit_log()
    ok, message = log.verify()
    entries = list(log.entries())
    frame = pl.DataFrame(entries, infer_schema_length=None) if entries else pl.DataFrame(
        schema={"ts": pl.String, "action": pl.String, "dataset": pl.String})
    warehouse.write_table("compliance", "audit_log", frame)
    yield dg.MaterializeResult(metadata={"dagster/row_count": frame.height, "chain": message})
    yield dg.AssetCheckResult(check_name="chain_intact", passed=ok, metadata={"verification": message})
