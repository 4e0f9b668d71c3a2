"""The dbt project on its production targets (BigQuery, Snowflake), offline and without credentials.

Each target is compiled (which parses first) with the real adapter, from the separate
environment of requirements-warehouses.lock. No credential exists: Snowflake opens no
connection to compile models; BigQuery builds its client when dbt starts, so it gets a
service-account file with a key generated here, for a project that does not exist. Every
HTTP(S) request would go to a closed local port, so nothing can reach the network.
The compiled SQL of every model is then checked for DuckDB-only syntax.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from abaco_assets_tests.deploy.targets_venv import ensure_targets_venv

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO_ROOT / "dbt_project"
TARGETS = ("bigquery", "snowflake")

# DuckDB spellings the other warehouses reject. Comments are removed before matching.
DUCKDB_ONLY = {
    "read_parquet(": r"\bread_parquet\s*\(",
    "strftime(": r"\bstrftime\s*\(",
    "date_diff('part', ...)": r"\bdate_diff\s*\(\s*'",
    "epoch(": r"\bepoch(_ms)?\s*\(",
    "list functions": r"\blist_[a-z_]+\s*\(",
    "struct_pack(": r"\bstruct_pack\s*\(",
    "arg_max/arg_min": r"\barg_(max|min)\s*\(",
    "interval 'n unit'": r"\binterval\s+'",
    "hugeint": r"\bhugeint\b",
    "generate_series/range": r"\b(generate_series|range)\s*\(",
}
BIGQUERY_ONLY_REJECTS = {
    ":: cast": r"::",
    "double / double precision": r"\bdouble(\s+precision)?\b",
    "varchar": r"\bvarchar\b",
    "ilike": r"\bilike\b",
}


def throwaway_service_account(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "abaco-ci-nonexistent", "private_key_id": "0",
        "private_key": pem, "client_email": "dbt-ci@abaco-ci-nonexistent.iam.gserviceaccount.com",
        "client_id": "0", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    dbt = ensure_targets_venv()
    work = tmp_path_factory.mktemp("dbt-targets")
    closed = "http://127.0.0.1:9"
    base_env = {key: value for key, value in os.environ.items()
                if not key.startswith(("GOOGLE_", "SNOWFLAKE_", "DBT_ENV_SECRET_", "ABACO_BQ_", "ABACO_SNOWFLAKE_"))}
    base_env.update({"ABACO_DATA": str(work / "data"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                     "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
                     "NO_PROXY": "", "no_proxy": ""})
    target_env = {
        "bigquery": {"ABACO_BQ_PROJECT": "abaco-ci-nonexistent", "ABACO_BQ_METHOD": "service-account",
                     "ABACO_BQ_KEYFILE": str(throwaway_service_account(work / "sa.json"))},
        "snowflake": {"ABACO_SNOWFLAKE_ACCOUNT": "ci-nonexistent", "ABACO_SNOWFLAKE_USER": "ci"},
    }
    processes = {}
    for target in TARGETS:  # both at once: each is CPU-bound on one core
        target_path = work / target
        command = [str(dbt), "compile", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
                   "--target", target, "--target-path", str(target_path), "--log-path", str(work / f"logs-{target}"),
                   "--no-partial-parse", "--no-populate-cache", "--select", "resource_type:model",
                   "--indirect-selection", "empty", "--quiet"]
        env = {**base_env, "ABACO_DBT_TARGET": target, **target_env[target]}
        processes[target] = (subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              text=True, cwd=work), target_path)
    results = {}
    for target, (process, target_path) in processes.items():
        output, _ = process.communicate(timeout=300)
        results[target] = (subprocess.CompletedProcess(process.args, process.returncode, output, ""), target_path)
    return results


def compiled_models(target_path: Path) -> dict[str, str]:
    root = target_path / "compiled" / "abaco" / "models"
    return {path.relative_to(root).as_posix(): path.read_text() for path in root.rglob("*.sql")}


def without_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)


@pytest.mark.parametrize("target", TARGETS)
def test_target_parses_and_compiles_offline_without_credentials(compiled, target):
    completed, target_path = compiled[target]
    assert completed.returncode == 0, completed.stdout[-4000:]
    manifest = json.loads((target_path / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == target
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert models, "the project has models"
    sql = compiled_models(target_path)
    assert len(sql) == len(models), "every model compiled"
    database = {"bigquery": "abaco-ci-nonexistent", "snowflake": "ABACO"}[target]
    for source in manifest["sources"].values():
        assert database in source["relation_name"], source["relation_name"]


@pytest.mark.parametrize("target", TARGETS)
def test_compiled_models_use_no_duckdb_only_syntax(compiled, target):
    completed, target_path = compiled[target]
    assert completed.returncode == 0, completed.stdout[-4000:]
    patterns = {**DUCKDB_ONLY, **(BIGQUERY_ONLY_REJECTS if target == "bigquery" else {})}
    findings = []
    for name, sql in sorted(compiled_models(target_path).items()):
        text = without_comments(sql)
        for label, pattern in patterns.items():
            for match in re.finditer(pattern, text, flags=re.I):
                line = text.count("\n", 0, match.start()) + 1
                findings.append(f"{name}:{line}: {label}")
    assert findings == [], "DuckDB-only SQL (move it into an adapter.dispatch macro):\n" + "\n".join(findings)


def test_the_local_duckdb_target_is_unchanged():
    profile = yaml.safe_load((DBT_PROJECT / "profiles.yml").read_text())["abaco"]
    assert profile["target"] == "{{ env_var('ABACO_DBT_TARGET', 'local') }}"
    assert profile["outputs"]["local"] == {"type": "duckdb", "path": "{{ env_var('ABACO_DATA') }}/warehouse.duckdb",
                                           "threads": 2}
    # Secrets only through DBT_ENV_SECRET_* (scrubbed from dbt's logs), never literal values.
    for name, output in profile["outputs"].items():
        for key, value in output.items():
            if any(word in key for word in ("password", "private_key", "keyfile", "token")):
                assert "env_var(" in str(value), f"{name}.{key} must come from the environment"
