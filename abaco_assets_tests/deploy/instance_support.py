"""Load the production instance (dagster.prod.yaml) against the test server, and drive its queue.

Only the run launcher is swapped: instead of a Kubernetes Job or a subprocess, launching a
run records it and leaves it in STARTING, which is an in-progress status for the queue. The
coordinator, the concurrency settings and the storage are exactly those of the file.
Queue processing is Dagster's own: one iteration of the daemon's QueuedRunCoordinatorDaemon,
called in process, is what `dagster-daemon run` does every few seconds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster._serdes import ConfigurableClass

REPO_ROOT = Path(__file__).resolve().parents[2]
PROD_INSTANCE_FILE = "dagster.prod.yaml"
LOCATION_NAME = "queue_test"

LAUNCHED: list[str] = []


class RecordingRunLauncher(RunLauncher, ConfigurableClass):
    """Launching = remembering the run id; the run stays STARTING (in progress) until a test ends it."""

    def __init__(self, inst_data=None):
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self):
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data)

    def launch_run(self, context: LaunchRunContext) -> None:
        LAUNCHED.append(context.dagster_run.run_id)

    def terminate(self, run_id: str) -> bool:
        return False


RECORDING_LAUNCHER = {"module": __name__, "class": RecordingRunLauncher.__name__}


def production_instance(home: Path, overrides: Mapping | None = None) -> dg.DagsterInstance:
    """dagster.prod.yaml from the repository, as is, with the recording launcher."""
    home.mkdir(parents=True, exist_ok=True)
    ref = InstanceRef.from_dir(
        str(home),
        config_dir=str(REPO_ROOT),
        config_filename=PROD_INSTANCE_FILE,
        overrides={"run_launcher": RECORDING_LAUNCHER, **(overrides or {})},
    )
    return dg.DagsterInstance.from_ref(ref)


@contextlib.contextmanager
def queue_workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            module_name="abaco_assets_tests.deploy.queue_location", working_directory=str(REPO_ROOT)
        ),
        location_name=LOCATION_NAME,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        yield context


def create_run(context: WorkspaceProcessContext, job_name: str, tags: Mapping[str, str] | None = None) -> dg.DagsterRun:
    """A run as the UI creates it: from the code location's remote job, with its origins."""
    from abaco_assets_tests.deploy import queue_location

    request = context.create_request_context()
    location = request.get_code_location(LOCATION_NAME)
    repository = next(iter(location.get_repositories().values()))
    remote_job = repository.get_full_job(job_name)
    job_def = queue_location.defs.resolve_job_def(job_name)
    return context.instance.create_run_for_job(
        job_def,
        tags={**job_def.tags, **(tags or {})},
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )


def submit(context: WorkspaceProcessContext, run: dg.DagsterRun, headers: Mapping[str, str] | None = None) -> dg.DagsterRun:
    """instance.submit_run, as the webserver calls it (optionally with the proxy's headers)."""
    source = type("ProxiedRequest", (), {"headers": dict(headers or {})})() if headers else None
    return context.instance.submit_run(run.run_id, context.create_request_context(source=source))


def process_queue(context: WorkspaceProcessContext) -> list[str]:
    """One pass of the daemon's queue processing; returns the runs it launched."""
    before = len(LAUNCHED)
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    with daemon:
        for _ in daemon.run_iteration(context):
            pass
    return LAUNCHED[before:]


def finish(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run worker ends the run (the queue only looks at the status)."""
    run = instance.get_run_by_id(run_id)
    instance.report_run_failed(run, "ended by the test")


PLATFORM_CHART_VALUES = REPO_ROOT / "helm" / "abaco-platform" / "values.yaml"


def chart_pool_limits() -> dict[str, int]:
    import yaml

    return dict(yaml.safe_load(PLATFORM_CHART_VALUES.read_text())["poolLimits"])


def apply_pool_limits_with_cli(home: Path) -> dict[str, int]:
    """What the chart's post-install hook does: `dagster instance concurrency set POOL LIMIT`."""
    import shutil
    import subprocess
    import sys

    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / PROD_INSTANCE_FILE, home / "dagster.yaml")
    dagster_cli = str(Path(sys.executable).parent / "dagster")
    limits = chart_pool_limits()
    for pool, limit in limits.items():
        completed = subprocess.run([dagster_cli, "instance", "concurrency", "set", pool, str(limit)],
                                   env={**os.environ, "DAGSTER_HOME": str(home)},
                                   capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
    return limits
