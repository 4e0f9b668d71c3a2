"""Audit and retention through the CLI: the chain verifies, `who` answers, tampering is caught,
retention lists only what is past the policy and deletes only with --apply."""

import datetime as dt
import json
import os

from abaco_assets.lib.audit import AuditContext, AuditLog
from abaco_assets_tests.conftest import run_abaco


def test_audit_cli_verify_who_and_tamper(tmp_path):
    data = tmp_path / "data"
    log = AuditLog(data / "audit")
    context = AuditContext("risk-analyst", "quarterly review", "AUD-7", "run-1")
    log.record(context, action="read", dataset="marts/kpi_portfolio_monthly", rows=12)
    log.record(context, action="write", dataset="reports/board_pack", partition="2026-10-31")
    env = {"ABACO_DATA": str(data)}
    verified = run_abaco("audit", "verify", env=env)
    assert verified.returncode == 0 and "2 records, chain intact" in verified.stdout
    who = run_abaco("audit", "who", "--dataset", "marts/kpi_portfolio_monthly", env=env)
    assert "risk-analyst" in who.stdout and "AUD-7" in who.stdout and "board_pack" not in who.stdout
    (segment,) = log.segments()
    first, second = segment.read_text().splitlines()
    entry = json.loads(first)
    entry["principal"] = "someone-else"
    segment.write_text(json.dumps(entry) + "\n" + second + "\n")
    tampered = run_abaco("audit", "verify", env=env)
    assert tampered.returncode == 1 and "TAMPERED" in tampered.stdout


def test_retention_is_explicit_and_keeps_recent_evidence(tmp_path):
    data = tmp_path / "data"
    old_run = data / "logs" / "runs" / "2015-01-31" / "run-old"
    new_run = data / "logs" / "runs" / f"{dt.date.today().year}-01-31" / "run-new"
    old_raw = data / "raw" / "cascade" / "loan_data" / "2016-03-31"
    for folder in (old_run, new_run, old_raw):
        folder.mkdir(parents=True)
        (folder / "x.json").write_text("{}")
    old_audit = data / "audit" / "audit-2014.jsonl"
    old_audit.parent.mkdir(parents=True)
    old_audit.write_text("")
    env = {"ABACO_DATA": str(data)}
    dry = run_abaco("retention", env=env)
    assert dry.returncode == 0 and "3 expired entries (dry run" in dry.stdout
    assert old_run.exists() and old_raw.exists() and old_audit.exists()
    applied = run_abaco("retention", "--apply", env=env)
    assert applied.returncode == 0
    assert not old_run.exists() and not old_raw.exists() and not old_audit.exists() and new_run.exists()
    assert os.listdir(data / "logs" / "runs") == [new_run.parent.name]
