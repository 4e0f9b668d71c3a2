"""The warehouse the Python metrics write to and read from: DuckDB locally, BigQuery or Snowflake in production.

Assets call ``warehouse.write_table(schema, name, frame)`` and ``warehouse.read_sql(sql)``
and never learn which engine is behind them: ``Warehouse`` picks the backend when a run
uses it, from its ``kind`` or else ABACO_DBT_TARGET (the same variable that picks the dbt
target, so dbt and the Python metrics always write to the same place).

Every write is atomic: the frame is loaded into a new table beside the target, then swapped
in with one statement (DuckDB: a transaction around drop+rename; BigQuery: CREATE OR REPLACE
TABLE ... COPY; Snowflake: ALTER TABLE ... SWAP WITH). A run killed mid-write leaves the previous
table in place and at worst an orphan ``<name>__new_<token>`` table.

DuckDB allows one writer per file: writes hold the `warehouse_writer` concurrency pool
(dagster.prod.yaml), and readers open the file read-only; a reader that meets a writer's
lock gets ``WarehouseBusy`` with a message that says so instead of a raw IOException.

The cloud clients are imported only when a backend connects, so this module imports
without google-cloud-bigquery credentials or the Snowflake connector.
"""

import io
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
import polars as pl

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
TARGET_TO_KIND = {"local": "duckdb", "duckdb": "duckdb", "bigquery": "bigquery", "snowflake": "snowflake"}


class WarehouseBusy(RuntimeError):
    """The DuckDB file is locked by a writer in another process."""


@dataclass(frozen=True)
class WriteResult:
    table: str
    rows: int

    def metadata(self) -> dict[str, Any]:
        return {"table": self.table, "row_count": self.rows}


def checked_identifier(value: str, what: str) -> str:
    """Schema and table names go into SQL text: only plain identifiers are accepted."""
    if not IDENTIFIER.match(value or ""):
        raise ValueError(f"{what} {value!r} is not a plain identifier (letters, digits, _)")
    return value


def staging_name(name: str, token: str | None = None) -> str:
    return f"{name}__new_{token or secrets.token_hex(4)}"


class Backend(Protocol):
    def write_table(self, schema: str, name: str, frame: pl.DataFrame) -> WriteResult: ...

    def read_sql(self, sql: str) -> pl.DataFrame: ...


class DuckDBBackend:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self, read_only: bool):
        import duckdb

        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}: materialize the marts first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise WarehouseBusy(
                    f"the warehouse {self.path} is being written by another process (a run holding the "
                    f"warehouse_writer pool, or an open `duckdb` shell); DuckDB allows one writer at a time. "
                    f"Retry when it finishes. ({error})"
                ) from error
            raise

    @staticmethod
    def swap_statements(schema: str, name: str, staging: str) -> list[str]:
        return [
            "BEGIN TRANSACTION",
            f'DROP TABLE IF EXISTS "{schema}"."{name}"',
            f'ALTER TABLE "{schema}"."{staging}" RENAME TO "{name}"',
            "COMMIT",
        ]

    def write_table(self, schema: str, name: str, frame: pl.DataFrame) -> WriteResult:
        staging = staging_name(name)
        connection = self._connect(read_only=False)
        try:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            arrow_table = frame.to_arrow()
            connection.register("abaco_frame", arrow_table)
            connection.execute(f'CREATE TABLE "{schema}"."{staging}" AS SELECT * FROM abaco_frame')
            connection.unregister("abaco_frame")
            try:
                for statement in self.swap_statements(schema, name, staging):
                    connection.execute(statement)
            except Exception:
                connection.execute("ROLLBACK")
                connection.execute(f'DROP TABLE IF EXISTS "{schema}"."{staging}"')
                raise
        finally:
            connection.close()
        return WriteResult(table=f"{schema}.{name}", rows=frame.height)

    def read_sql(self, sql: str) -> pl.DataFrame:
        connection = self._connect(read_only=True)
        try:
            return pl.from_arrow(connection.sql(sql).to_arrow_table())
        finally:
            connection.close()


class BigQueryBackend:
    """Schemas are datasets of the project (the dbt target's datasets: staging, intermediate, marts)."""

    def __init__(self, project: str, location: str = "US", client: Any = None):
        if not project:
            raise ValueError("BigQuery needs a project (ABACO_BQ_PROJECT)")
        self.project = project
        self.location = location
        self._client = client

    def client(self):
        if self._client is None:
            from google.cloud import bigquery  # credentials: ADC / GKE Workload Identity

            self._client = bigquery.Client(project=self.project, location=self.location)
        return self._client

    def table_id(self, schema: str, name: str) -> str:
        return f"{self.project}.{schema}.{name}"

    def swap_statements(self, schema: str, name: str, staging: str) -> list[str]:
        target, new = self.table_id(schema, name), self.table_id(schema, staging)
        # One DDL statement replaces the table atomically; readers see the old or the new one.
        return [f"CREATE OR REPLACE TABLE `{target}` COPY `{new}`", f"DROP TABLE `{new}`"]

    def write_table(self, schema: str, name: str, frame: pl.DataFrame) -> WriteResult:
        from google.cloud import bigquery

        staging = staging_name(name)
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        buffer.seek(0)
        job_config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
        client = self.client()
        client.load_table_from_file(buffer, self.table_id(schema, staging), job_config=job_config).result()
        for statement in self.swap_statements(schema, name, staging):
            client.query(statement).result()
        return WriteResult(table=self.table_id(schema, name), rows=frame.height)

    def read_sql(self, sql: str) -> pl.DataFrame:
        return pl.from_arrow(self.client().query(sql).result().to_arrow())


class SnowflakeBackend:
    """Schemas are schemas of ABACO_SNOWFLAKE_DATABASE; key-pair authentication as in profiles.yml."""

    def __init__(self, account: str, user: str, database: str, warehouse: str, role: str,
                 private_key_pem: str = "", private_key_passphrase: str = "", connection: Any = None):
        if not (account and user) and connection is None:
            raise ValueError("Snowflake needs ABACO_SNOWFLAKE_ACCOUNT and ABACO_SNOWFLAKE_USER")
        self.account, self.user, self.database = account, user, database
        self.warehouse, self.role = warehouse, role
        self._private_key_pem = private_key_pem
        self._passphrase = private_key_passphrase
        self._connection = connection

    def connection(self):
        if self._connection is None:
            import snowflake.connector
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_private_key(self._private_key_pem.encode(),
                                                     password=self._passphrase.encode() or None)
            der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            self._connection = snowflake.connector.connect(
                account=self.account, user=self.user, private_key=der, role=self.role,
                warehouse=self.warehouse, database=self.database, application="abaco-dagster",
            )
        return self._connection

    def qualified(self, schema: str, name: str) -> str:
        return f'"{self.database}"."{schema.upper()}"."{name.upper()}"'

    def swap_statements(self, schema: str, name: str, staging: str) -> list[str]:
        target, new = self.qualified(schema, name), self.qualified(schema, staging)
        # SWAP WITH exchanges the two tables in one metadata operation; the old data ends in
        # the staging name and is dropped. CREATE ... IF NOT EXISTS makes the first write swap too.
        return [
            f"CREATE TABLE IF NOT EXISTS {target} LIKE {new}",
            f"ALTER TABLE {target} SWAP WITH {new}",
            f"DROP TABLE {new}",
        ]

    def write_table(self, schema: str, name: str, frame: pl.DataFrame) -> WriteResult:
        from snowflake.connector.pandas_tools import write_pandas

        staging = staging_name(name)
        connection = self.connection()
        write_pandas(connection, frame.to_pandas(), table_name=staging.upper(), schema=schema.upper(),
                     database=self.database, auto_create_table=True, overwrite=True, quote_identifiers=True,
                     use_logical_type=True)
        cursor = connection.cursor()
        try:
            for statement in self.swap_statements(schema, name, staging):
                cursor.execute(statement)
        finally:
            cursor.close()
        return WriteResult(table=self.qualified(schema, name), rows=frame.height)

    def read_sql(self, sql: str) -> pl.DataFrame:
        cursor = self.connection().cursor()
        try:
            cursor.execute(sql)
            return pl.from_arrow(cursor.fetch_arrow_all())
        finally:
            cursor.close()


class Warehouse(dg.ConfigurableResource):
    """Where the Python metrics read marts and write their tables. Empty fields fall back to the
    environment at run time (the same variables as dbt_project/profiles.yml)."""

    kind: str = ""
    duckdb_path: str = ""
    bigquery_project: str = ""
    bigquery_location: str = ""

    def resolved_kind(self) -> str:
        chosen = self.kind or os.environ.get("ABACO_DBT_TARGET", "local")
        if chosen not in TARGET_TO_KIND:
            raise ValueError(f"unknown warehouse {chosen!r}: expected one of {sorted(TARGET_TO_KIND)}")
        return TARGET_TO_KIND[chosen]

    def backend(self) -> Backend:
        kind = self.resolved_kind()
        env = os.environ
        if kind == "duckdb":
            data = Path(env.get("ABACO_DATA") or "./data").resolve()
            return DuckDBBackend(Path(self.duckdb_path) if self.duckdb_path else data / "warehouse.duckdb")
        if kind == "bigquery":
            return BigQueryBackend(project=self.bigquery_project or env.get("ABACO_BQ_PROJECT", ""),
                                   location=self.bigquery_location or env.get("ABACO_BQ_LOCATION", "US"))
        return SnowflakeBackend(
            account=env.get("ABACO_SNOWFLAKE_ACCOUNT", ""), user=env.get("ABACO_SNOWFLAKE_USER", ""),
            database=env.get("ABACO_SNOWFLAKE_DATABASE", "ABACO"),
            warehouse=env.get("ABACO_SNOWFLAKE_WAREHOUSE", "ABACO_WH"),
            role=env.get("ABACO_SNOWFLAKE_ROLE", "ABACO_TRANSFORMER"),
            private_key_pem=env.get("DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY", ""),
            private_key_passphrase=env.get("DBT_ENV_SECRET_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", ""),
        )

    def write_table(self, schema: str, name: str, frame: pl.DataFrame) -> WriteResult:
        """Replace schema.name with frame, atomically."""
        return self.backend().write_table(checked_identifier(schema, "schema"), checked_identifier(name, "table"),
                                          frame)

    def read_sql(self, sql: str) -> pl.DataFrame:
        return self.backend().read_sql(sql)
