"""Each alert kind fires once per incident, through a real SMTP server and an HTTP webhook on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from abaco_assets.lib import alerts
from abaco_assets.lib.alerts import Alert, raise_alert

RUN_A, RUN_B = "6f1c3c36-1111-4b1e-9a52-8d1e1c2d3e4f", "0a2b4c6d-2222-4e8f-a1b2-c3d4e5f60718"
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"


def incident(kind: str, run_id: str = RUN_A, fingerprint: str = "f1", partition: str | None = "2026-10-31") -> Alert:
    asset = {"run_failure": "raw/cascade/*", "blocking_check": "raw/cascade/loan_data",
             "reconciliation_break": "raw/collections/collections",
             "freshness_breach": "raw/cascade/loan_data"}[kind]
    check = {"blocking_check": "contract", "reconciliation_break": "reconciles_with_cascade",
             "freshness_breach": "freshness_sla"}.get(kind)
    return Alert(kind, asset, partition, f"{kind} happened", run_id, fingerprint, ["detail one"],
                 job="ingest_cascade_job", check=check)


@pytest.mark.parametrize("kind", sorted(alerts.RUNBOOKS))
def test_one_alert_per_incident_on_every_route(kind, tmp_path, alert_env, slack, smtp):
    first = raise_alert(incident(kind), tmp_path, env=alert_env)
    assert first.new and first.delivered == {"outbox": "sent", "slack": "sent", "email": "sent"}
    again = raise_alert(incident(kind, run_id=RUN_B), tmp_path, env=alert_env)  # same incident, seen by a later run
    assert not again.new and again.delivered == {}
    assert len(slack.received) == 1 and len(smtp.messages) == 1

    page, anchor, headline = alerts.RUNBOOKS[kind]
    runbook = f"https://docs.example.org/runbooks/{page}#{anchor}"
    run_link = f"https://dagster.example.org/runs/{RUN_A}"
    posted = slack.received[0].json()
    assert slack.received[0].path == "/services/T000/B000/XXXX"
    assert posted["blocks"][0]["text"]["text"].startswith(headline)
    assert f"<{run_link}|Run in Dagster>" in json.dumps(posted) and f"<{runbook}|Runbook>" in json.dumps(posted)
    mail = smtp.messages[0]
    assert str(mail["Subject"]).strip().startswith(f"[abaco] {headline}: {incident(kind).asset} [2026-10-31]")
    assert smtp.envelopes[0].rcpt_tos == ["oncall@example.org", "risk@example.org"]
    body = mail.get_content()
    for expected in (f"What broke: {kind} happened", f"Asset: {incident(kind).asset}", "Partition: 2026-10-31",
                     f"Run: {run_link}", f"Runbook: {runbook}"):
        assert expected in body
    outbox = [json.loads(line) for line in (tmp_path / "logs/alerts/outbox.jsonl").read_text().splitlines()]
    assert len(outbox) == 1 and outbox[0]["runbook_url"] == runbook and outbox[0]["run_url"] == run_link
    state = json.loads((tmp_path / "logs/alerts/state.json").read_text())
    (entry,) = state["incidents"].values()
    assert entry["times_seen"] == 2 and entry["run_ids"] == [RUN_A, RUN_B]


def test_a_new_incident_alerts_again(tmp_path, alert_env, slack, smtp):
    raise_alert(incident("reconciliation_break", fingerprint="breaks-1"), tmp_path, env=alert_env)
    raise_alert(incident("reconciliation_break", fingerprint="breaks-2"), tmp_path, env=alert_env)  # a different break
    raise_alert(incident("run_failure", run_id=RUN_A, fingerprint=RUN_A), tmp_path, env=alert_env)
    raise_alert(incident("run_failure", run_id=RUN_B, fingerprint=RUN_B), tmp_path, env=alert_env)  # another failure
    raise_alert(incident("freshness_breach", partition="2026-11-03"), tmp_path, env=alert_env)
    raise_alert(incident("freshness_breach", partition="2026-11-04"), tmp_path, env=alert_env)  # other asset/partition
    assert len(slack.received) == 6 and len(smtp.messages) == 6


def test_a_failed_route_is_retried_and_the_others_are_not_repeated(tmp_path, alert_env, slack, smtp):
    slack.status = 500
    first = raise_alert(incident("blocking_check"), tmp_path, env=alert_env)
    assert first.delivered["slack"].startswith("error") and first.delivered["email"] == "sent"
    slack.status = 200
    retry = raise_alert(incident("blocking_check"), tmp_path, env=alert_env)
    assert retry.delivered == {"slack": "sent"}
    assert len(slack.received) == 2 and len(smtp.messages) == 1


def test_outbox_only_by_default_and_secrets_only_from_env(tmp_path):
    routes = alerts.routes_from_env(tmp_path, {})
    assert [r.name for r in routes] == ["outbox"]
    raise_alert(incident("run_failure"), tmp_path, env={})
    (line,) = (tmp_path / "logs/alerts/outbox.jsonl").read_text().splitlines()
    assert json.loads(line)["run_url"] == f"http://127.0.0.1:3000/runs/{RUN_A}"
    with pytest.raises(ValueError, match="ABACO_SMTP_TO"):
        alerts.routes_from_env(tmp_path, {"ABACO_SMTP_HOST": "127.0.0.1"})


@pytest.mark.parametrize("kind", sorted(alerts.RUNBOOKS))
def test_every_alert_kind_links_to_an_existing_runbook_section(kind):
    page, anchor, _ = alerts.RUNBOOKS[kind]
    headings = re.findall(r"^#+\s+(.+)$", (RUNBOOKS / page).read_text(), flags=re.MULTILINE)
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}
    assert anchor in slugs, f"{page} has no section #{anchor}"
