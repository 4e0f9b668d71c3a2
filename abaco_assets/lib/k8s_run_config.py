"""Pod sizes of runs on Kubernetes, per domain, as the `dagster-k8s/config` run tag.

The K8sRunLauncher reads `dagster-k8s/config` from a run's tags; a job that carries
``k8s_run_tags("transform")`` gets the transform pod size, wherever it is launched from.
Locally the tag is ignored. Sizes follow what each domain does: ingestion validates one
delivery at a time with polars; transform runs dbt over the month-end panel (DuckDB keeps
its working set in memory); compliance reads and writes small evidence files. Memory has a
limit (an OOM kill is a clear failure); CPU has none (a limit would only throttle).
"""

from typing import Any

DOMAIN_POD_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "ingestion": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "3Gi"}},
    "transform": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
    "compliance": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
}


def k8s_run_config(domain: str) -> dict[str, Any]:
    """The `dagster-k8s/config` value for a domain's runs."""
    if domain not in DOMAIN_POD_RESOURCES:
        raise KeyError(f"no pod size for domain {domain!r}; known: {sorted(DOMAIN_POD_RESOURCES)}")
    return {
        "container_config": {"resources": DOMAIN_POD_RESOURCES[domain]},
        "pod_template_spec_metadata": {"labels": {"abaco/domain": domain}},
    }


def k8s_run_tags(domain: str) -> dict[str, Any]:
    """Job tags for a domain: the queue lane (`domain`) and the pod size (`dagster-k8s/config`)."""
    return {"domain": domain, "dagster-k8s/config": k8s_run_config(domain)}
