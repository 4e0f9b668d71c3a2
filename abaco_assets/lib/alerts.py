"""Alerts: one per incident, with the run link and the runbook section that says what to do.

Four kinds, each tied to one runbook anchor (docs/runbooks/):

* ``run_failure``          a Dagster run failed for a reason no check explains
* ``blocking_check``       an ERROR-severity blocking check failed (contract, tape history, dbt test)
* ``reconciliation_break`` ``reconciles_with_cascade`` found cash or DPD that the tape does not match
* ``freshness_breach``     ``freshness_sla``: a delivery due by its deadline has not been accepted

Deduplication: an incident is identified by (kind, asset, partition, fingerprint).  The
fingerprint is what makes it *this* incident: the failed run's id, the rejected files and
messages, the breaking rows, the late delivery date.  ``$ABACO_DATA/logs/alerts/state.json``
remembers every incident seen (under a file lock, several processes may alert at once):
seeing it again bumps a counter and sends nothing, unless a route failed last time, which is
retried.  A different run failure, a different break or another late date is a new incident.

Routes by configuration, secrets only from the environment:

* outbox (always): ``$ABACO_DATA/logs/alerts/outbox.jsonl``, one JSON alert per line
* Slack incoming webhook: ``ABACO_SLACK_WEBHOOK_URL``
* e-mail: ``ABACO_SMTP_HOST``, ``ABACO_SMTP_PORT`` (25), ``ABACO_SMTP_FROM``, ``ABACO_SMTP_TO``
  (comma-separated), optional ``ABACO_SMTP_USER``/``ABACO_SMTP_PASSWORD``, ``ABACO_SMTP_STARTTLS=1``

Links: ``ABACO_DAGSTER_UI_URL`` (default http://127.0.0.1:3000) + ``/runs/<run_id>``;
``ABACO_RUNBOOK_BASE_URL`` (default: the docs/runbooks folder of this checkout, as file://).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import smtplib
import urllib.request
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator, Mapping

from abaco_assets.lib.storage import append_line

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_UI_URL = "http://127.0.0.1:3000"

RUN_FAILURE = "run_failure"
BLOCKING_CHECK = "blocking_check"
RECONCILIATION_BREAK = "reconciliation_break"
FRESHNESS_BREACH = "freshness_breach"

# kind -> (runbook file, anchor, headline)
RUNBOOKS: dict[str, tuple[str, str, str]] = {
    RUN_FAILURE: ("incident-response.md", "run-failure", "Run failed"),
    BLOCKING_CHECK: ("data-quality-remediation.md", "blocking-check-failure", "Blocking check failed"),
    RECONCILIATION_BREAK: ("reconciliation-breaks.md", "reconciliation-break", "Reconciliation break"),
    FRESHNESS_BREACH: ("freshness-misses.md", "freshness-sla-breach", "Freshness SLA breach"),
}


@dataclass
class Alert:
    kind: str
    asset: str
    partition: str | None
    summary: str  # what broke, one line
    run_id: str | None
    fingerprint: str
    details: list[str] = field(default_factory=list)
    job: str | None = None
    check: str | None = None
    run_url: str | None = None
    runbook_url: str | None = None
    raised_at: str = ""

    @property
    def incident_key(self) -> str:
        return "|".join([self.kind, self.asset, self.partition or "-", self.fingerprint])

    @property
    def alert_id(self) -> str:
        return hashlib.sha256(self.incident_key.encode()).hexdigest()[:12]

    @property
    def title(self) -> str:
        headline = RUNBOOKS[self.kind][2]
        where = f"{self.asset}" + (f" [{self.partition}]" if self.partition else "")
        return f"{headline}: {where}" + (f" ({self.check})" if self.check else "")

    def text(self) -> str:
        lines = [self.title, "", f"What broke: {self.summary}", f"Asset: {self.asset}",
                 f"Partition: {self.partition or '(not partitioned)'}"]
        if self.job:
            lines.append(f"Job: {self.job}")
        if self.run_url:
            lines.append(f"Run: {self.run_url}")
        lines.append(f"Runbook: {self.runbook_url}")
        if self.details:
            lines += ["", "Details:"] + [f"  - {d}" for d in self.details]
        lines += ["", f"Alert id {self.alert_id} (deduplicated: the same incident does not alert again)"]
        return "\n".join(lines)

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "title": self.title, "alert_id": self.alert_id, "incident_key": self.incident_key}


def fingerprint_of(value: Any) -> str:
    """A short stable hash of any JSON-able value (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_url(run_id: str | None, env: Mapping[str, str] | None = None) -> str | None:
    if not run_id:
        return None
    env = os.environ if env is None else env
    return f"{(env.get('ABACO_DAGSTER_UI_URL') or DEFAULT_UI_URL).rstrip('/')}/runs/{run_id}"


def runbook_url(kind: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    base = env.get("ABACO_RUNBOOK_BASE_URL") or f"file://{REPO_ROOT / 'docs' / 'runbooks'}"
    page, anchor, _ = RUNBOOKS[kind]
    return f"{base.rstrip('/')}/{page}#{anchor}"


def complete(alert: Alert, env: Mapping[str, str] | None = None) -> Alert:
    """Fill the links and the time from the configuration."""
    alert.run_url = alert.run_url or run_url(alert.run_id, env)
    alert.runbook_url = alert.runbook_url or runbook_url(alert.kind, env)
    alert.raised_at = alert.raised_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return alert


# ---------------------------------------------------------------------------------------------
# State (deduplication)


def alerts_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "logs" / "alerts"


@contextlib.contextmanager
def _locked_state(data_dir: Path) -> Iterator[dict[str, Any]]:
    folder = alerts_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.json"
    with open(folder / "state.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
            state.setdefault("incidents", {})
            yield state
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_state(data_dir: Path) -> dict[str, Any]:
    path = alerts_dir(data_dir) / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"incidents": {}}


# ---------------------------------------------------------------------------------------------
# Routes


class Route:
    name = "route"

    def send(self, alert: Alert) -> None:
        raise NotImplementedError


class OutboxRoute(Route):
    """The local default: every alert, one JSON line; also the audit trail of what was sent."""

    name = "outbox"

    def __init__(self, data_dir: Path):
        self.path = alerts_dir(data_dir) / "outbox.jsonl"

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, (json.dumps(alert.record(), sort_keys=True, default=str) + "\n").encode())


class SlackWebhookRoute(Route):
    """A Slack incoming webhook (the URL is the secret): Block Kit message with both links."""

    name = "slack"

    def __init__(self, webhook_url: str, timeout: float = 10.0):
        self.webhook_url = webhook_url
        self.timeout = timeout

    @staticmethod
    def payload(alert: Alert) -> dict[str, Any]:
        links = " | ".join(filter(None, [f"<{alert.run_url}|Run in Dagster>" if alert.run_url else None,
                                         f"<{alert.runbook_url}|Runbook>"]))
        fields = [f"*Asset*\n`{alert.asset}`", f"*Partition*\n{alert.partition or 'not partitioned'}"]
        if alert.check:
            fields.append(f"*Check*\n`{alert.check}`")
        if alert.job:
            fields.append(f"*Job*\n`{alert.job}`")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*What broke:* {alert.summary}"[:3000]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ]
        if alert.details:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(
                f"• {d}" for d in alert.details)[:3000]}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{links} | alert `{alert.alert_id}`"}]})
        return {"text": f"{alert.title}: {alert.summary} {alert.run_url or ''} {alert.runbook_url}", "blocks": blocks}

    def send(self, alert: Alert) -> None:
        body = json.dumps(self.payload(alert)).encode()
        request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise RuntimeError(f"Slack webhook answered {response.status}")


class EmailRoute(Route):
    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: list[str], user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 10.0):
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[abaco] {alert.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["X-Abaco-Alert-Id"] = alert.alert_id
        message.set_content(alert.text())
        return message

    def send(self, alert: Alert) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(alert))


def routes_from_env(data_dir: Path, env: Mapping[str, str] | None = None) -> list[Route]:
    env = os.environ if env is None else env
    routes: list[Route] = [OutboxRoute(data_dir)]
    if env.get("ABACO_SLACK_WEBHOOK_URL"):
        routes.append(SlackWebhookRoute(env["ABACO_SLACK_WEBHOOK_URL"]))
    if env.get("ABACO_SMTP_HOST"):
        recipients = [r.strip() for r in env.get("ABACO_SMTP_TO", "").split(",") if r.strip()]
        if not recipients:
            raise ValueError("ABACO_SMTP_HOST is set but ABACO_SMTP_TO (comma-separated recipients) is empty")
        routes.append(EmailRoute(
            host=env["ABACO_SMTP_HOST"], port=int(env.get("ABACO_SMTP_PORT") or 25),
            sender=env.get("ABACO_SMTP_FROM") or "abaco-alerts@localhost", recipients=recipients,
            user=env.get("ABACO_SMTP_USER") or None, password=env.get("ABACO_SMTP_PASSWORD") or None,
            starttls=(env.get("ABACO_SMTP_STARTTLS", "").lower() in ("1", "true", "yes")),
        ))
    return routes


@dataclass
class Dispatch:
    alert: Alert
    new: bool  # first time this incident was seen
    delivered: dict[str, str]  # route -> "sent" | "error: ..." (routes tried this time)


def raise_alert(alert: Alert, data_dir: Path, routes: list[Route] | None = None,
                env: Mapping[str, str] | None = None) -> Dispatch:
    """Send ``alert`` unless its incident was already alerted; retry only the routes that failed."""
    complete(alert, env)
    routes = routes_from_env(data_dir, env) if routes is None else routes
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with _locked_state(data_dir) as state:
        entry = state["incidents"].get(alert.incident_key)
        new = entry is None
        if new:
            entry = {"alert_id": alert.alert_id, "kind": alert.kind, "asset": alert.asset,
                     "partition": alert.partition, "check": alert.check, "first_seen": now, "times_seen": 0,
                     "run_ids": [], "routes": {}, "title": alert.title}
            state["incidents"][alert.incident_key] = entry
        entry["times_seen"] += 1
        entry["last_seen"] = now
        if alert.run_id and alert.run_id not in entry["run_ids"]:
            entry["run_ids"] = (entry["run_ids"] + [alert.run_id])[-20:]
        pending = [r for r in routes if entry["routes"].get(r.name) != "sent"]
        delivered: dict[str, str] = {}
        for route in pending:
            try:
                route.send(alert)
                delivered[route.name] = "sent"
            except Exception as error:  # a broken route must not hide the alert from the others
                delivered[route.name] = f"error: {type(error).__name__}: {error}"
        entry["routes"].update(delivered)
    return Dispatch(alert, new, delivered)
