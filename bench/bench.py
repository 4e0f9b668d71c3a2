"""Benchmark: full backfill, one incremental day, the plain-DuckDB floor and the fixed overhead.

    .venv/bin/python bench/bench.py --loans 15000 --months 24          # Abaco's size
    .venv/bin/python bench/bench.py --loans 200000 --months 24         # the 'large' scale
    .venv/bin/python bench/bench.py --loans 300 --months 3 --no-write  # smoke

Each step runs as its own process; wall seconds and peak RSS come from
``os.wait4`` (the kernel's accounting for that process tree's largest
member).  Results are printed and appended to bench/results.md with the
machine they were measured on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from abaco_assets.lib.generator import append_next_day  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results.md"


@dataclass
class Measure:
    step: str
    seconds: float
    peak_rss_mib: float
    exit_code: int
    note: str = ""


def measure(step: str, command: list[str], env: dict[str, str], note: str = "") -> tuple[Measure, str]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=REPO, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    result = Measure(step, round(seconds, 2), round(usage.ru_maxrss / 1024, 1), code, note)
    print(f"{step:<34} {result.seconds:>9.2f} s  {result.peak_rss_mib:>8.1f} MiB  exit {code}  {note}", flush=True)
    if code not in (0, 1):
        print(output[-4000:], file=sys.stderr)
    return result, output


def machine() -> str:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), {int(memory) / 2**20:.1f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, required=True)
    parser.add_argument("--months", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delinquency-cadence", choices=("daily", "month-end"), default="month-end")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/results.md")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="abaco-bench-"))
    shutil.rmtree(work / "landing", ignore_errors=True)
    shutil.rmtree(work / "data", ignore_errors=True)
    landing, data = work / "landing", work / "data"
    env = {"ABACO_DATA": str(data), "DAGSTER_HOME": str(data / "dagster_home"), "ABACO_PII_HMAC_KEY": "bench"}
    abaco = str(BIN / "abaco")
    print(f"scale: {args.loans:,} loans x {args.months} months, seed {args.seed}; work dir {work}\n{machine()}")
    rows = []
    rows.append(measure("generate landing", [abaco, "generate", "--out", str(landing), "--loans", str(args.loans),
                                             "--months", str(args.months), "--seed", str(args.seed),
                                             "--delinquency-cadence", args.delinquency_cadence], env)[0])
    files = sum(1 for p in landing.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 2**20
    backfill, _ = measure("1. full backfill (abaco run)", [abaco, "run", "--landing", str(landing)], env,
                          f"{files} files, {size:,.0f} MiB")
    rows.append(backfill)
    day = append_next_day(landing)
    rows.append(measure("2. incremental: one more day", [abaco, "run", "--landing", str(landing)], env, str(day))[0])
    floor_run, floor_output = measure("3. floor (plain DuckDB SQL)", [str(BIN / "python"), "bench/floor.py",
                                                                      "--landing", str(landing), "--out",
                                                                      str(work / "floor")], env)
    floor_sql = json.loads(floor_output.strip().splitlines()[-1])["seconds"]
    floor_run.note = f"SQL {floor_sql:.2f} s (+ dbt compile and start-up: {floor_run.seconds - floor_sql:.1f} s)"
    print(f"{'   floor SQL alone':36s} {floor_sql:7.2f} s")
    rows.append(floor_run)
    # Fixed overhead: a data folder that has run before (instance, warehouse and dbt parse state
    # exist), then one tiny tape ingested only (4a) and one tiny tape run through everything (4b).
    # The very first run in a new folder also creates those; it is reported as 4c.
    tiny = work / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    subprocess.run([abaco, "generate", "--out", str(tiny / "landing"), "--loans", "20", "--months", "3",
                    "--seed", "2", "--delinquency-cadence", "month-end"], check=True, capture_output=True)
    tapes = sorted((tiny / "landing" / "cascade").iterdir())
    tiny_landing = tiny / "tapes"
    tiny_env = {**env, "ABACO_DATA": str(tiny / "data"), "DAGSTER_HOME": str(tiny / "data" / "dagster_home")}
    shutil.copytree(tapes[0], tiny_landing / "cascade" / tapes[0].name)
    cold = measure("4c. first run in a new data folder", [abaco, "run", "--landing", str(tiny_landing)], tiny_env,
                   "one tiny tape; creates instance, warehouse, dbt state")[0]
    shutil.copytree(tapes[1], tiny_landing / "cascade" / tapes[1].name)
    rows.append(measure("4a. fixed overhead, ingest only", [abaco, "run", "--landing", str(tiny_landing),
                                                             "--ingest-only"], tiny_env, "one more tiny tape")[0])
    shutil.copytree(tapes[2], tiny_landing / "cascade" / tapes[2].name)
    rows.append(measure("4b. fixed overhead, full run", [abaco, "run", "--landing", str(tiny_landing)], tiny_env,
                        "one more tiny tape; every mart rebuilt")[0])
    rows.append(cold)
    ratio = backfill.seconds / floor_sql if floor_sql else float("nan")
    print(f"backfill / floor (SQL) = {ratio:.1f}x")
    if not args.no_write:
        with RESULTS.open("a") as out:
            out.write(f"\n### {args.loans:,} loans x {args.months} months (seed {args.seed}, delinquency "
                      f"{args.delinquency_cadence}), {dt.date.today()}\n\nMachine: {machine()}\n\n"
                      "| step | wall s | peak RSS MiB | note |\n| --- | ---: | ---: | --- |\n")
            for row in rows:
                out.write(f"| {row.step} | {row.seconds:.2f} | {row.peak_rss_mib:.0f} | {row.note} |\n")
            out.write(f"| backfill / floor | {ratio:.1f}x | | |\n")


if __name__ == "__main__":
    main()
