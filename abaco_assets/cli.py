"""`abaco`: the command-line front door (generate sample data, run the graph, show KPIs).

Exit codes of `abaco run`: 0 every delivery accepted and no ERROR check
failed (WARN alone is 0); 1 a delivery rejected or an ERROR check failed;
2 user error (bad arguments, missing folder); 3 internal error.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import NoReturn

import click

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
REPO_ROOT = Path(__file__).resolve().parents[1]
# The run's full event log is in the Dagster instance (and `dagster dev`); the terminal gets warnings only.
# JSON lines go to $ABACO_DATA/logs/abaco.jsonl only, so the CLI summary stays readable.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}},
                             "json": {"config": {"stdout": False}}}}


class UserError(click.ClickException):
    exit_code = EXIT_USAGE


def _prepare_environment(data_dir: Path, landing: Path | None) -> None:
    """Point every component (Dagster instance, dbt, settings) at the same folders."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to the data folder {data_dir} ({exc.strerror}); set ABACO_DATA to a writable folder")
    os.environ["ABACO_DATA"] = str(data_dir)
    if landing is not None:
        os.environ["ABACO_LANDING"] = str(landing)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    project_yaml = REPO_ROOT / "dagster.yaml"
    if project_yaml.exists() and not (dagster_home / "dagster.yaml").exists():
        shutil.copyfile(project_yaml, dagster_home / "dagster.yaml")


def _data_dir(option: str | Path | None) -> Path:
    from abaco_assets.resources import data_dir_from_env

    return Path(option).resolve() if option else data_dir_from_env()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Abaco Loans Analytics: contracts, ingestion and KPI marts on Dagster + dbt.

    \b
    Quick start:
      abaco demo                               # sample data -> full graph -> KPIs
      abaco generate --out data/landing --loans 2000 --months 12 --seed 7
      abaco run --landing data/landing         # ingest every delivery, rebuild marts
    """


def _rate_options(function):
    """One CLI option per generator rate, named after the GeneratorRates field."""
    from dataclasses import fields

    from abaco_assets.lib.generator import GeneratorRates

    for rate in reversed(fields(GeneratorRates)):
        kind = int if rate.type in ("int", int) else float
        function = click.option(f"--{rate.name.replace('_', '-')}", rate.name, type=kind, default=None,
                                help=f"Generator rate (default {rate.default}).")(function)
    return function


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Landing folder to write (must be empty or absent).")
@click.option("--loans", default=2000, show_default=True, type=click.IntRange(1), help="Loans over the horizon.")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 120), help="Month-end tapes.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed (same seed, same bytes).")
@click.option("--end-date", default="2026-10-31", show_default=True, help="Last month-end (YYYY-MM-DD).")
@click.option("--delinquency-cadence", type=click.Choice(["daily", "month-end"]), default="daily", show_default=True,
              help="Write delinquency files every day or only on tape dates.")
@click.option("--zip-tapes", is_flag=True, help="Deliver each Cascade tape as one .zip.")
@_rate_options
def generate(out: Path, loans: int, months: int, seed: int, end_date: str, delinquency_cadence: str,
             zip_tapes: bool, **rates) -> None:
    """Write a realistic landing tree exactly as the feed spec describes (deterministic per seed).

    \b
    Examples:
      abaco generate --out /tmp/landing --loans 15000 --months 24 --seed 1
      abaco generate --out /tmp/risky --loans 2000 --months 12 --seed 1 --delinquency-rate 0.1
    """
    from dataclasses import replace

    from abaco_assets.lib.generator import GeneratorRates, generate_landing

    try:
        end = dt.date.fromisoformat(end_date)
    except ValueError:
        raise UserError(f"--end-date {end_date!r} is not a YYYY-MM-DD date")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty: generate into a new folder (stale files would mix with the new tree)")
    try:
        chosen = replace(GeneratorRates(), **{name: value for name, value in rates.items() if value is not None})
    except ValueError as exc:
        raise UserError(str(exc))
    summary = generate_landing(out, loans=loans, months=months, seed=seed, end_date=end, rates=chosen,
                               delinquency_cadence=delinquency_cadence, zip_tapes=zip_tapes,
                               progress=lambda message: click.echo(f"  {message}", err=True))
    click.echo(f"wrote {summary.files_written} files ({summary.bytes_written / 2**20:.1f} MiB) to {out}")
    click.echo(f"  {summary.tapes} month-end tapes {summary.tape_dates[0]} .. {summary.tape_dates[-1]}, "
               f"{summary.collections_files} collections and {summary.delinquency_files} delinquency files")
    click.echo(f"  {summary.loans:,} loans, {summary.customers:,} customers; write-offs {summary.write_offs}, "
               f"recoveries {summary.recoveries}, prepayments {summary.prepayments}, reversals {summary.reversals}")


@main.command()
@click.option("--landing", type=str, default=None,
              help="Landing root: a folder, s3://bucket/prefix or gs://bucket/prefix "
                   "(default $ABACO_LANDING or $ABACO_DATA/landing).")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None,
              help="Data folder (default $ABACO_DATA or ./data).")
@click.option("--force", is_flag=True, help="Re-process deliveries and rebuild marts even when nothing changed.")
@click.option("--source", "sources", multiple=True, metavar="SOURCE",
              help="Only this source (cascade, collections, delinquency); repeatable.")
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD", help="Only the deliveries of this date.")
@click.option("--ingest-only", is_flag=True, help="Ingest and validate; do not rebuild the marts.")
def run(landing: str | None, data_option: Path | None, force: bool, sources: tuple[str, ...], day: str | None,
        ingest_only: bool) -> None:
    """Ingest every delivery in the landing folder (oldest first) and rebuild everything downstream.

    \b
    Examples:
      abaco run --landing data/landing
      abaco run --landing s3://abaco-feeds/landing --source cascade --date 2026-10-31
      abaco run --ingest-only
    Exit codes: 0 all accepted, 1 a delivery rejected or an ERROR check failed,
    2 user error, 3 internal error.
    """
    from contracts.registry import SOURCES

    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise UserError(f"unknown source {unknown[0]!r}: expected one of {', '.join(SOURCES)}")
    try:
        chosen_day = dt.date.fromisoformat(day) if day else None
    except ValueError:
        raise UserError(f"--date {day!r} is not a valid YYYY-MM-DD date")
    sys.exit(_guarded(lambda: _run(landing, data_option, force, sources=sources or None, day=chosen_day,
                                   ingest_only=ingest_only, warm_dbt=True)))


@main.command()
@click.option("--loans", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 120))
@click.option("--seed", default=7, show_default=True, type=int)
def demo(loans: int, months: int, seed: int) -> None:
    """Generate sample data into the data folder, run the whole graph and print the KPIs.

    \b
    Example:
      ABACO_DATA=/tmp/abaco abaco demo --loans 2000 --months 12
    The landing tree goes to $ABACO_LANDING (default $ABACO_DATA/landing) unless it already has files.
    """

    def _demo() -> int:
        from abaco_assets.lib.generator import generate_landing

        data_dir = _data_dir(None)
        landing = Path(os.environ.get("ABACO_LANDING") or data_dir / "landing").resolve()
        if not any(landing.glob("*/*/*")):
            click.echo(f"generating sample landing tree in {landing} ({loans} loans, {months} months, seed {seed})")
            generate_landing(landing, loans=loans, months=months, seed=seed)
        return _run(landing, data_dir, force=False)

    sys.exit(_guarded(_demo))


@main.command()
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
@click.option("--month", default=None, metavar="YYYY-MM", help="Month (default: the latest month with a tape).")
@click.option("--segment", default=None, help="One segment (Gob, OC, CCF, DTE, Nimal, Top, Other).")
def kpis(data_option: Path | None, month: str | None, segment: str | None) -> None:
    """Print the portfolio KPIs of one month (from marts.kpi_portfolio_monthly[_by_segment]).

    \b
    Examples:
      abaco kpis
      abaco kpis --month 2026-09 --segment Top
    """
    data_dir = _data_dir(data_option)
    sys.exit(_guarded(lambda: _print_kpis(data_dir, month, segment=segment)))


@main.group()
def contracts() -> None:
    """Inspect the feed contracts (one pydantic model per table and version)."""


@contracts.command("list")
def contracts_list() -> None:
    """Every table, its versions and its columns' rules.

    \b
    Example:
      abaco contracts list
    """
    from contracts.derive import column_specs
    from contracts.registry import CONTRACT_VERSIONS

    for (source, table), versions in CONTRACT_VERSIONS.items():
        click.echo(f"{source}/{table}: {', '.join(f'v{c.version}' for c in versions)} (owner {versions[-1].owner})")
        for spec in column_specs(versions[-1]):
            click.echo(f"    {spec.header!r:32} -> {spec.name:24} {spec.describe_rule()}")


@contracts.command("diff")
@click.argument("table")
@click.argument("old_version")
@click.argument("new_version")
def contracts_diff(table: str, old_version: str, new_version: str) -> None:
    """What changed between two versions of a table's contract.

    \b
    Example:
      abaco contracts diff collections/collections v1 v2
    """
    from contracts.derive import diff_contracts
    from contracts.registry import find

    try:
        old, new = find(table, old_version), find(table, new_version)
    except (KeyError, ValueError) as exc:
        raise UserError(str(exc).strip("'\""))
    click.echo(f"{old.contract_id()} -> {new.contract_id()}")
    for line in diff_contracts(old, new):
        click.echo(f"  {line}")


@main.command()
@click.option("--reference", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Legacy or Cascade-side KPI export (CSV: month_end + KPI columns).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="YAML mapping their column names to ours, with tolerances "
                   "(default: docs/shadow-mapping.example.yaml of the checkout).")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the difference report (default $ABACO_DATA/reports/shadow).")
def shadow(reference: Path, mapping: Path | None, data_option: Path | None, out: Path | None) -> None:
    """Shadow run for the cut-over: compare marts.kpi_portfolio_monthly with a reference export.

    \b
    Example:
      abaco shadow --reference legacy_kpis.csv --mapping docs/shadow-mapping.example.yaml
    Exit code 1 when a KPI is off beyond its tolerance.
    """

    def _shadow() -> int:
        from abaco_assets.lib.shadow import run_shadow
        from abaco_assets.warehouse import Warehouse

        data_dir = _data_dir(data_option)
        os.environ["ABACO_DATA"] = str(data_dir)
        ours = Warehouse().read_sql("select * from marts.kpi_portfolio_monthly")
        report = run_shadow(ours, reference, mapping or REPO_ROOT / "docs" / "shadow-mapping.example.yaml",
                            out or data_dir / "reports" / "shadow")
        click.echo(report.markdown())
        return EXIT_OK if report.ok else EXIT_REJECTED

    sys.exit(_guarded(_shadow))


@main.command()
@click.argument("target")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def lineage(target: str, data_option: Path | None, as_json: bool) -> None:
    """Where a KPI comes from: raw files (sha256), contract versions, runs and code revision.

    \b
    Example:
      abaco lineage kpi_portfolio_monthly.opb
    """

    def _lineage() -> int:
        data_dir = _data_dir(data_option)
        _prepare_environment(data_dir, None)
        from abaco_assets.lib.dbt_manifest import ensure_manifest

        ensure_manifest(data_dir)
        import dagster as dg

        from abaco_assets.definitions import defs
        from abaco_assets.defs.observability.lineage_command import LineageError, lineage_report

        try:
            report = lineage_report(target, defs, dg.DagsterInstance.get(), data_dir)
        except LineageError as error:
            raise UserError(str(error))
        click.echo(json.dumps(report.to_dict(), indent=1) if as_json else report.render())
        return EXIT_OK

    sys.exit(_guarded(_lineage))


@main.group()
def audit() -> None:
    """The append-only audit trail of dataset reads and writes ($ABACO_DATA/audit)."""


@audit.command("verify")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
def audit_verify(data_option: Path | None) -> None:
    """Check the hash chain of the audit trail (exit 1 when a record was altered, removed or inserted).

    \b
    Example:
      abaco audit verify
    """
    from abaco_assets.lib.audit import AuditLog

    ok, message = AuditLog(_data_dir(data_option) / "audit").verify()
    click.echo(("OK: " if ok else "TAMPERED: ") + message)
    sys.exit(EXIT_OK if ok else EXIT_REJECTED)


@audit.command("who")
@click.option("--dataset", required=True, help="Dataset name or prefix, e.g. raw/cascade/loan_data or marts/.")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
def audit_who(dataset: str, data_option: Path | None) -> None:
    """Who read or wrote a dataset, when, for what purpose and ticket.

    \b
    Example:
      abaco audit who --dataset marts/kpi_portfolio_monthly
    """
    from abaco_assets.lib.audit import AuditLog

    entries = AuditLog(_data_dir(data_option) / "audit").who(dataset)
    if not entries:
        click.echo(f"no audit record for {dataset}")
    for entry in entries:
        click.echo(f"{entry['ts']}  {entry['action']:<10} {entry['dataset']:<42} {entry['partition'] or '-':<10} "
                   f"{entry['principal']:<24} purpose={entry['purpose']!r} ticket={entry['ticket'] or '-'} "
                   f"rows={entry['rows'] if entry['rows'] is not None else '-'} run={(entry['run_id'] or '-')[:8]}")


@main.command()
@click.option("--years", type=click.IntRange(1), default=None, help="Keep this many years (default 7 or "
              "$ABACO_RETENTION_YEARS).")
@click.option("--apply", "apply_", is_flag=True, help="Delete; without it, only list what would go.")
@click.option("--data", "data_option", type=click.Path(path_type=Path), default=None)
def retention(years: int | None, apply_: bool, data_option: Path | None) -> None:
    """Apply the retention policy to validation artifacts, lineage, audit records and raw files.

    Nothing is ever deleted by a normal run; this command is the only way.

    \b
    Example:
      abaco retention            # dry run: what is older than 7 years
      abaco retention --apply
    """
    from abaco_assets.lib import retention as policy

    data_dir = _data_dir(data_option)
    entries = policy.expired(data_dir, years or policy.retention_years())
    for entry in entries:
        click.echo(f"{'deleting' if apply_ else 'would delete'} {entry.path} ({entry.reason})")
    if apply_:
        policy.apply(entries)
    click.echo(f"{len(entries)} expired entr{'y' if len(entries) == 1 else 'ies'}"
               f"{'' if apply_ else ' (dry run; --apply to delete)'}")


def _guarded(action) -> int:
    try:
        return action()
    except click.ClickException:
        raise
    except Exception:  # the one place an unexpected error becomes exit code 3
        click.echo("internal error (exit 3):\n" + traceback.format_exc(), err=True)
        return EXIT_INTERNAL


def _run(landing: str | Path | None, data_option: Path | None, force: bool, *,
         sources: tuple[str, ...] | None = None, day: dt.date | None = None, ingest_only: bool = False,
         warm_dbt: bool = False) -> int:
    """``abaco run``; ``warm_dbt`` (the command line's own process only: it forks) starts dbt early."""
    from abaco_assets.lib.storage import is_object_url, landing_store_at
    from abaco_assets.resources import landing_location_from_env, zones_from_env

    data_dir = Path(data_option).resolve() if data_option else _data_dir(None)
    landing = str(landing) if landing else landing_location_from_env()
    try:
        landing = landing if is_object_url(landing) else str(Path(landing).resolve())
        store = landing_store_at(landing)
    except ValueError as exc:
        raise UserError(str(exc))
    problem = store.unavailable_reason()
    if problem:
        raise UserError(f"{problem}; pass --landing DIR (or s3://bucket/prefix, gs://bucket/prefix) "
                        "or set ABACO_LANDING")
    _prepare_environment(data_dir, landing)
    if warm_dbt and not ingest_only:  # dbt imported on the other core while this process starts and ingests
        from abaco_assets.lib import dbt_warm
        from abaco_assets.lib.dbt_manifest import VENV_DBT

        dbt_warm.start(VENV_DBT)

    import dagster as dg

    from abaco_assets.defs.ingest.jobs import ALL_SOURCES, SOURCES, ingest_subset

    primer = None
    if ingest_only:  # the code location without dbt: nothing of it is needed
        from abaco_assets.ingest_definitions import INGEST_JOBS, defs
    else:
        from abaco_assets.lib import dbt_warm
        from abaco_assets.lib.dbt_manifest import ParseStatePrimer, ensure_manifest

        ensure_manifest(data_dir)
        # a new data folder's dbt parse state, parsed while the deliveries are ingested
        primer = ParseStatePrimer.start(data_dir, dbt_warm.client_executable())
        if primer is not None:
            atexit.register(primer.abandon)  # an early exit leaves no parse running, no scratch folder
        from abaco_assets.definitions import INGEST_JOBS, defs
    from abaco_assets.lib.deliveries import load_catalog, needs_processing, recorded_version
    from abaco_assets.lib.landing import scan_landing
    from abaco_assets.lib.run_plan import (
        changed_sources,
        code_fingerprint,
        contiguous_ranges,
        in_force_fingerprints,
        transform_subset,
    )

    zones = zones_from_env(data_dir)
    scan = scan_landing(store)
    deliveries = {key: files for key, files in scan.deliveries().items()
                  if (sources is None or key[0] in sources) and (day is None or key[1] == day)}
    click.echo(f"landing {landing}: {len(scan.files)} files in {len(deliveries)} deliveries"
               f"{f', {len(scan.skipped)} skipped' if scan.skipped else ''}")
    for skipped in scan.skipped:
        click.echo(f"  skipped {skipped.key}: {skipped.reason} (left in place, not ingested)")
    if scan.skipped:
        report = data_dir / "logs" / "landing" / f"skipped-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps([{"key": k.key, "reason": k.reason} for k in scan.skipped], indent=1))
        click.echo(f"  unexpected files reported in {report}")
    to_process: dict[str, list[dt.date]] = {}
    for (source, day), files in deliveries.items():
        catalog = load_catalog(zones, source, day)
        version_id = recorded_version(catalog, files)
        if version_id is None or needs_processing(catalog, version_id, force):
            to_process.setdefault(source, []).append(day)

    from abaco_assets.defs.observability import observe_run
    from abaco_assets.lib.json_logs import new_request_id

    request_id = new_request_id()
    instance = dg.DagsterInstance.get()

    def observe(result) -> None:
        """Lineage events and alerts for a finished run (never fails the command)."""
        observation = observe_run(instance, result.run_id, defs, log_to_stdout=False)
        for error in observation.errors:
            click.echo(f"  observability: {error}", err=True)
        for alert in observation.alerts_sent:
            click.echo(f"  ALERT {alert.title} -> {alert.runbook_url}")

    failed_checks: list[str] = []
    warned_checks: list[str] = []
    failed_runs: list[str] = []
    # one run per date range; feeds whose ranges coincide (a tape and its month-end delinquency
    # file) share it, in date order (a tape is judged against the previous one)
    spans: dict[tuple[dt.date, dt.date], list[str]] = {}
    for source in SOURCES:
        for date_range in contiguous_ranges(source, to_process.get(source, [])):
            spans.setdefault((date_range.start, date_range.end), []).append(source)
    planned = sorted(spans.items())
    progress = _progress()
    task = progress.add_task("ingest", total=sum(len(s) * ((end - start).days + 1)
                                                 for (start, end), s in planned) or 1)
    with progress:
        for (start, end), span_sources in planned:
            days, label = (end - start).days + 1, "+".join(span_sources)
            progress.update(task, description=f"ingest {label} {start}..{end}")
            if len(span_sources) == 1:
                job = defs.resolve_job_def(INGEST_JOBS[span_sources[0]].name)
            else:
                job = ingest_subset(defs.resolve_job_def(INGEST_JOBS[ALL_SOURCES].name), span_sources)
            tags = {"dagster/asset_partition_range_start": start.isoformat(),
                    "dagster/asset_partition_range_end": end.isoformat(),
                    "abaco/trigger": "cli", "abaco/request_id": request_id}
            result = job.execute_in_process(
                instance=instance, tags=tags, raise_on_error=False,
                run_config={"ops": {f"ingest_{source}": {"config": {"force": force}} for source in span_sources},
                            **QUIET_CONSOLE},
            )
            click.echo(f"  run {result.run_id[:8]} ingest {label} {start}..{end} "
                       f"({days} days): {'ok' if result.success else 'FAILED'}")
            observe(result)
            run_errors = _failed_checks(result, "ERROR")
            failed_checks += run_errors
            warned_checks += _failed_checks(result, "WARN")
            if not result.success and not run_errors:  # a failed blocking check explains itself
                failed_runs.append(f"ingest {label} {start}..{end} (run {result.run_id})")
            progress.advance(task, len(span_sources) * days)

    accepted, rejected = [], []
    for (source, day), files in deliveries.items():
        # the verdict on the version that is in the landing folder now
        catalog = load_catalog(zones, source, day)
        record = catalog["versions"].get(recorded_version(catalog, files) or "")
        if record is None:
            failed_runs.append(f"{source} {day}: not processed (see the ingest run above)")
            continue
        (accepted if record["status"] == "accepted" else rejected).append(record)

    fingerprints, project = in_force_fingerprints(zones), code_fingerprint()
    state_key = "_transform.json"
    state = json.loads(zones.catalog.read(state_key)) if zones.catalog.exists(state_key) else {}
    marts_exist = (data_dir / "warehouse.duckdb").exists()
    changed = None if (force or not marts_exist) else changed_sources(state, fingerprints, project)
    if ingest_only:
        click.echo("  --ingest-only: marts not rebuilt")
    elif changed == set():
        click.echo("  marts are up to date with the accepted deliveries (nothing to rebuild)")
    else:
        job = defs.resolve_job_def("transform_job")
        scope = "everything"
        if changed is not None:  # only what reads the feeds that changed
            assets, checks = transform_subset(job, changed)
            job = job.get_subset(asset_selection=assets, asset_check_selection=checks)
            scope = f"{len(assets)} assets downstream of {', '.join(sorted(changed))}"
        if primer is not None:
            primer.finish()
        dbt_log = data_dir / "logs" / "dbt" / f"transform-{dt.datetime.now():%Y%m%dT%H%M%S}.log"
        dbt_log.parent.mkdir(parents=True, exist_ok=True)
        # dbt's own console output goes to a file; the run's events are in the Dagster instance.
        with dbt_log.open("w") as sink, contextlib.redirect_stdout(sink):
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET_CONSOLE,
                tags={"abaco/trigger": "cli", "abaco/request_id": request_id})
        click.echo(f"  run {result.run_id[:8]} transform ({scope}): {'ok' if result.success else 'FAILED'} "
                   f"(dbt log: {dbt_log})")
        observe(result)
        run_errors = _failed_checks(result, "ERROR")
        failed_checks += run_errors
        warned_checks += _failed_checks(result, "WARN")
        if not result.success and not run_errors:
            failed_runs.append(f"transform (run {result.run_id})")
        zones.catalog.replace(state_key, json.dumps({"sources": fingerprints, "project": project,
                                                     "success": result.success,
                                                     "run_id": result.run_id}).encode())

    click.echo("")
    click.echo(f"deliveries: {len(accepted)} accepted, {len(rejected)} rejected")
    for record in rejected:
        where = [t["quarantine_key"] for t in record["tables"].values() if t.get("quarantine_key")]
        click.echo(f"  REJECTED {record['source']} {record['delivery_date']}: {record['message']}")
        counts = {rule: n for t in record["tables"].values() for rule, n in t.get("violation_counts", {}).items()}
        if counts:
            click.echo("    violations by rule: " + ", ".join(f"{rule}={n}" for rule, n in sorted(counts.items())))
        if where:
            click.echo(f"    quarantined: {', '.join(zones.quarantine.locate(k) for k in where)}")
    for check in dict.fromkeys(failed_checks):
        click.echo(f"  FAILED CHECK (ERROR) {check}")
    for check in dict.fromkeys(warned_checks):
        click.echo(f"  WARNING CHECK {check} (see the check's metadata in the Dagster UI)")
    for run_name in failed_runs:
        click.echo(f"  FAILED RUN {run_name}")
    from abaco_assets.lib.kpi_table import HEADLINE_COLUMNS

    _print_kpis(data_dir, None, columns=HEADLINE_COLUMNS)
    return EXIT_REJECTED if (rejected or failed_checks or failed_runs) else EXIT_OK


def _progress():
    """A progress bar on stderr (drawn only on a terminal; logs and pipes get the summary lines)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("deliveries"),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _failed_checks(result, severity: str) -> list[str]:
    """'asset:check' of every failed check of ``severity`` (ERROR or WARN) in a run."""
    return [
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity.value == severity
    ]


def _print_kpis(data_dir: Path, month: str | None, *, segment: str | None = None,
                columns: tuple[str, ...] | None = None) -> int:
    from abaco_assets.lib.kpi_table import KpiTableError, read_kpi_table

    try:
        table = read_kpi_table(data_dir / "warehouse.duckdb", month=month, segment=segment, columns=columns)
    except KpiTableError as exc:
        click.echo(str(exc))
        return exc.exit_code
    click.echo("")
    click.echo(table.render())
    return EXIT_OK


def entry() -> NoReturn:
    """The ``abaco`` console script: the command line, then an exit without the interpreter's teardown.

    Tearing down the ~3,000 modules a run imports (Dagster, dbt, polars, DuckDB) takes ~0.8 s after
    the last line is printed: ~8 % of a daily incremental run at the large scale (bench/results.md).
    Nothing is lost by skipping it: the handlers registered with atexit run first (logging's flush
    and close, the dbt helper's stop, temporary folders), then the standard streams are flushed, and
    everything this command writes goes through os.write (logs, audit, zones) or is committed
    (SQLite, DuckDB) before it returns. Should another thread still be running, the normal exit
    waits for it. ``main`` stays the click group (tests invoke it in-process).
    """
    try:
        main()
        code = EXIT_OK
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int) or threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
