"""Real local servers standing in for Slack (HTTP) and the mail relay (SMTP)."""

import pytest

from abaco_assets_tests.observability.local_servers import HttpSink, SmtpInbox


@pytest.fixture()
def slack():
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture()
def smtp():
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


@pytest.fixture()
def alert_env(slack, smtp):
    return {"ABACO_SLACK_WEBHOOK_URL": f"{slack.url}/services/T000/B000/XXXX",
            "ABACO_SMTP_HOST": "127.0.0.1", "ABACO_SMTP_PORT": str(smtp.port),
            "ABACO_SMTP_FROM": "abaco@example.org", "ABACO_SMTP_TO": "oncall@example.org, risk@example.org",
            "ABACO_DAGSTER_UI_URL": "https://dagster.example.org/",
            "ABACO_RUNBOOK_BASE_URL": "https://docs.example.org/runbooks"}
