"""Fixtures of the deploy tests: a real PostgreSQL server and the production instance on it.

In CI (CI=true) a missing prerequisite fails the test instead of skipping it: the point of
these tests is to run against the real services that `.ci/services.sh` installs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from abaco_assets_tests.conftest import environment
from abaco_assets_tests.deploy import instance_support
from abaco_assets_tests.deploy.postgres_server import PostgresUnavailable, start_postgres

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEMPLATE_DB = "dagster_template"


def unavailable(reason: str):
    """Fail in CI, skip (with the reason, listed by -ra) on a developer machine."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the deploy tests never skip in CI; run .ci/services.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres():
    try:
        server = start_postgres()
    except PostgresUnavailable as error:
        unavailable(str(error))
    try:
        # One database with Dagster's schema already migrated; every test copies it.
        server.create_database(TEMPLATE_DB)
        home = Path(tempfile.mkdtemp(prefix="abaco-dagster-home-"))
        with environment(server.env(TEMPLATE_DB)):
            instance = instance_support.production_instance(home)
            instance.dispose()
        shutil.rmtree(home, ignore_errors=True)
        yield server
    finally:
        server.stop()


@pytest.fixture()
def prod_env(postgres, monkeypatch):
    """A fresh database (a copy of the migrated template) and the variables dagster.prod.yaml reads."""
    db_name = f"dagster_{uuid.uuid4().hex[:10]}"
    import psycopg2

    connection = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user,
                                  password=postgres.password, dbname="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        connection.close()
    env = postgres.env(db_name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ABACO_ENV", "local")
    return env


@pytest.fixture()
def prod_instance(prod_env, tmp_path):
    instance = instance_support.production_instance(tmp_path / "dagster_home")
    yield instance
    instance.dispose()


@pytest.fixture()
def queue(prod_instance):
    with instance_support.queue_workspace(prod_instance) as context:
        yield context
