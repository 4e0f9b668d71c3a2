"""Helm, validated offline: our values against the official chart's own JSON schemas, and the
manifests our companion chart renders (helm lint + helm template) against Kubernetes schemas.

The official chart's templates are not available offline (only its values and schemas are
vendored, helm/vendor/dagster-helm/), so its manifests cannot be rendered here; its values
are validated the way Helm does it (chart defaults merged with ours, then the schema). The
schema's remote Kubernetes references are resolved to the Kubernetes definitions bundled
with kubernetes-validate, so probes, resources and security contexts are checked too.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from abaco_assets.lib.k8s_run_config import DOMAIN_POD_RESOURCES, k8s_run_config
from abaco_assets_tests.deploy.conftest import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = REPO_ROOT / "helm"
VENDOR = HELM_DIR / "vendor" / "dagster-helm"
PLATFORM_CHART = HELM_DIR / "abaco-platform"
HELM = REPO_ROOT / "build" / "tools" / "helm"
OVERLAYS = ["values-gcp.yaml", "values-aws.yaml"]
REMOTE_K8S_DEFINITIONS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
KUBERNETES_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]  # the chart's floor and the newest


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def helm_merge(base, override):
    """Helm's coalescing of values: maps merge key by key, a null deletes, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_for(*files: str) -> dict:
    values = {}
    for name in files:
        values = helm_merge(values, load_yaml(HELM_DIR / name))
    return values


def k8s_definitions() -> dict:
    """Kubernetes 1.27 definitions from kubernetes-validate, addressable both as the chart's
    schema names them (#/definitions/...) and as they name each other (#/$defs/...). The
    non-strict variant: the chart adds keys of its own to Kubernetes objects (probes'
    `enabled`), so unknown keys are allowed there while types and required fields are checked."""
    package = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    bundled = json.loads((package / "v1.27.0-local" / "_definitions.json").read_text())
    definitions = bundled["$defs"]
    return {"definitions": definitions, "$defs": definitions}


def schema_validator(schema_path: Path) -> jsonschema.Draft7Validator:
    registry = Registry().with_resource(REMOTE_K8S_DEFINITIONS, Resource(contents=k8s_definitions(),
                                                                         specification=DRAFT7))
    return jsonschema.Draft7Validator(json.loads(schema_path.read_text()), registry=registry)


def schema_errors(validator, instance) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(instance)]


# The chart's `concurrency` block is newer than the vendored schema. Its shape, from the
# chart's values model (Concurrency / ConcurrencyPools / ConcurrencyRuns, extra fields forbidden):
CONCURRENCY_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean"},
        "pools": {"type": "object", "additionalProperties": False, "properties": {
            "defaultLimit": {"type": ["integer", "null"]},
            "granularity": {"enum": ["run", "op", None]},
            "opGranularityRunBuffer": {"type": ["integer", "null"]}}},
        "runs": {"type": "object", "additionalProperties": False, "properties": {
            "maxConcurrentRuns": {"type": ["integer", "null"]},
            "tagConcurrencyLimits": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["key", "limit"],
                "properties": {"key": {"type": "string"}, "value": {"type": ["string", "object", "null"]},
                               "limit": {"type": "integer"}}}}}},
    },
}


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_values_pass_the_official_charts_schemas(overlay):
    ours = values_for("values.yaml", *([overlay] if overlay else []))
    merged = helm_merge(load_yaml(VENDOR / "values.yaml"), ours)
    assert schema_errors(schema_validator(VENDOR / "values.schema.json"), merged) == []

    subchart = VENDOR / "charts" / "dagster-user-deployments"
    sub_values = helm_merge(load_yaml(subchart / "values.yaml"), ours["dagster-user-deployments"])
    assert schema_errors(schema_validator(subchart / "values.schema.json"), sub_values) == []

    assert schema_errors(jsonschema.Draft7Validator(CONCURRENCY_SCHEMA), ours["concurrency"]) == []


def test_the_schema_check_catches_mistakes():
    """The validator is not vacuous: wrong types, in the chart's own fields and inside the
    Kubernetes objects it passes through, are both reported."""
    ours = values_for("values.yaml")
    broken = copy.deepcopy(ours)
    deployment = broken["dagster-user-deployments"]["deployments"][0]
    deployment["port"] = "3030"
    broken["runLauncher"]["config"]["k8sRunLauncher"]["resources"] = {"requests": {"cpu": ["1"]}}
    broken["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]["modul"] = "x"
    errors = schema_errors(schema_validator(VENDOR / "values.schema.json"),
                           helm_merge(load_yaml(VENDOR / "values.yaml"), broken))
    assert any("port" in error for error in errors)
    # (errors under an anyOf are reported at the object that holds them)
    assert any(error.startswith("runLauncher/config/k8sRunLauncher:") for error in errors)
    assert any(error.startswith("dagsterDaemon/runCoordinator/config/customRunCoordinator:") for error in errors)
    assert len(errors) == 3


def test_chart_values_say_what_dagster_prod_yaml_says():
    values = values_for("values.yaml")
    prod = load_yaml(REPO_ROOT / "dagster.prod.yaml")

    pools, runs = values["concurrency"]["pools"], values["concurrency"]["runs"]
    assert values["concurrency"]["enabled"] is True
    assert {"default_limit": pools["defaultLimit"], "granularity": pools["granularity"]} == prod["concurrency"]["pools"]
    assert runs["maxConcurrentRuns"] == prod["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == prod["concurrency"]["runs"]["tag_concurrency_limits"]
    # With `concurrency` set, the queued coordinator must not carry limits of its own.
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert (custom["module"], custom["class"]) == (prod["run_coordinator"]["module"], prod["run_coordinator"]["class"])
    assert custom["config"] == prod["run_coordinator"]["config"]

    monitoring = values["dagsterDaemon"]["runMonitoring"]
    for snake, value in prod["run_monitoring"].items():
        camel = snake.split("_")[0] + "".join(part.title() for part in snake.split("_")[1:])
        assert monitoring[camel] == value, snake
    assert values["dagsterDaemon"]["runRetries"]["maxRetries"] == prod["run_retries"]["max_retries"]
    assert values["postgresql"]["postgresqlScheme"] == prod["storage"]["postgres"]["postgres_db"]["scheme"]
    # Every domain lane has a pod size.
    domain_lanes = [limit for limit in runs["tagConcurrencyLimits"] if limit["key"] == "domain"]
    assert {limit["value"] for limit in domain_lanes} == set(DOMAIN_POD_RESOURCES)


def test_production_processes_run_the_guard_and_no_secret_is_written_down():
    values = values_for("values.yaml")
    image = values["dagster-user-deployments"]["deployments"][0]["image"]
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert values[component]["image"]["repository"] == image["repository"], component
        assert {"name": "ABACO_ENV", "value": "prod"} in values[component]["env"]
    assert values["generatePostgresqlPasswordSecret"] is False and values["postgresql"]["postgresqlPassword"] == ""
    assert values["ingress"]["enabled"] is False and values["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    secret_keys = re.compile(r"^\s*-?\s*([A-Za-z_]*(password|token|privatekey|private_key|clientsecret|"
                             r"client_secret|cookiesecret))\s*:\s*(.*)$", re.I)
    for name in ["values.yaml", *OVERLAYS, "abaco-platform/values.yaml"]:
        for line in (HELM_DIR / name).read_text().splitlines():
            assert "PRIVATE KEY" not in line, f"{name}: key material"
            match = secret_keys.match(line)
            if match:
                assert match.group(3).strip() in ('""', "''", ""), f"{name}: {line.strip()}"


def test_overlays_change_identity_image_and_warehouse_only():
    base = values_for("values.yaml")["dagster-user-deployments"]["deployments"][0]
    for overlay, annotation in (("values-gcp.yaml", "iam.gke.io/gcp-service-account"),
                                ("values-aws.yaml", "eks.amazonaws.com/role-arn")):
        values = values_for("values.yaml", overlay)
        (deployment,) = values["dagster-user-deployments"]["deployments"]
        differing = {key for key in set(base) | set(deployment) if base.get(key) != deployment.get(key)}
        assert differing <= {"image", "env"}, (overlay, differing)
        base_env = {item["name"]: item["value"] for item in base["env"]}
        overlay_env = {item["name"]: item["value"] for item in deployment["env"]}
        assert base_env.items() <= overlay_env.items() and "ABACO_DBT_TARGET" in overlay_env
        assert annotation in values["serviceAccount"]["annotations"]
        for component in ("dagsterWebserver", "dagsterDaemon"):
            assert values[component]["image"] == deployment["image"]


@pytest.fixture(scope="module")
def helm() -> Path:
    if not HELM.exists():
        unavailable(f"{HELM} is missing: run .ci/services.sh")
    return HELM


def render(helm: Path, *arguments: str) -> list[dict]:
    completed = subprocess.run([str(helm), "template", "abaco", str(PLATFORM_CHART), "--namespace", "abaco",
                                *arguments], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc]


def test_platform_chart_lints_and_renders_valid_kubernetes_manifests(helm):
    lint = subprocess.run([str(helm), "lint", "--strict", str(PLATFORM_CHART)], capture_output=True, text=True,
                          timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifests = render(helm)
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == ["Deployment", "Ingress", "Job", "NetworkPolicy", "Service"]
    for version in KUBERNETES_VERSIONS:
        for doc in manifests:
            kubernetes_validate.validate(doc, version, strict=True)

    by_kind = {doc["kind"]: doc for doc in manifests}
    # The hook applies exactly the chart's pool limits, with the command the deploy test runs.
    job = by_kind["Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    limits = load_yaml(PLATFORM_CHART / "values.yaml")["poolLimits"]
    assert [line.strip() for line in script.strip().splitlines()] == [
        f"dagster instance concurrency set {pool} {limit}" for pool, limit in limits.items()]
    # Only the proxy reaches the webserver; the proxy forwards to the chart's webserver Service.
    policy = by_kind["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"]["component"] == "dagster-webserver"
    proxy = by_kind["Deployment"]["spec"]["template"]["spec"]
    args = proxy["containers"][0]["args"]
    assert "--upstream=http://dagster-dagster-webserver:80/" in args and "--pass-user-headers=true" in args
    assert by_kind["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"].endswith(
        "oauth2-proxy")
    for doc in (by_kind["Deployment"], job):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["securityContext"]["runAsNonRoot"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_platform_chart_refuses_bad_values(helm):
    completed = subprocess.run([str(helm), "template", "abaco", str(PLATFORM_CHART), "--set", "image.tag=latest",
                                "--set", "poolLimits.warehouse_writer=-1"], capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "values don't meet the specifications of the schema" in completed.stderr


@pytest.mark.parametrize("domain", sorted(DOMAIN_POD_RESOURCES))
def test_per_domain_run_pods_are_valid_kubernetes(domain):
    """The `dagster-k8s/config` of each domain, placed into a run pod as the K8sRunLauncher does."""
    config = k8s_run_config(domain)
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"dagster-run-{domain}", **config["pod_template_spec_metadata"]},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "dagster", "image": "registry.example.com/abaco/abaco-dagster:0.1.0",
             **config["container_config"]}]},
    }
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    resources = config["container_config"]["resources"]
    assert "memory" in resources["limits"] and "cpu" not in resources["limits"]


def test_vendored_chart_files_are_the_recorded_upstream_blobs():
    """helm/vendor/dagster-helm/README.md records each file's git blob id; the copies still match."""
    import hashlib

    readme = (VENDOR / "README.md").read_text()
    rows = re.findall(r"^\| (\S+) \| helm/dagster/\S+ \| [0-9a-f]{40} \| \d+ \| ([0-9a-f]{40}) \|$", readme, re.M)
    assert len(rows) == 5
    for name, blob in rows:
        content = (VENDOR / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() == blob, name
    assert "Apache License, Version 2.0" in readme
