"""The code-location image (helm/Dockerfile), checked without a Docker engine.

No engine runs here, so the Dockerfile is read as data (instructions per stage) and its
decisive steps are replayed on a copy of exactly what it copies into the image: the dbt
manifest step is the Dockerfile's own command, run in that layout, and then the
definitions are loaded there with every way of invoking dbt watched, and the gRPC server
is started with the Dockerfile's CMD and probed the way the Helm readiness probe probes it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from abaco_assets_tests.deploy.postgres_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "helm" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """[(INSTRUCTION, arguments)] per build stage; continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), arguments.strip()))
        else:
            assert keyword.upper() == "ARG", f"only ARG may precede the first FROM: {line}"
    return stages


STAGES = dockerfile_stages(DOCKERFILE.read_text())
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def instructions(stage, keyword):
    return [arguments for key, arguments in stage if key == keyword]


def manifest_step() -> str:
    """The Dockerfile's own manifest step (dbt parse for the build's target), as a shell command."""
    for run in instructions(BUILD, "RUN"):
        match = re.search(r'ABACO_DBT_TARGET="\$DBT_TARGET" (dbt parse [^&]*)', run)
        if match:
            return match.group(1).strip()
    raise AssertionError("no RUN builds the dbt manifest (dbt parse) at build time")


def cmd_arguments() -> list[str]:
    (cmd,) = instructions(RUNTIME, "CMD")
    return json.loads(cmd)


def test_runs_as_a_fixed_non_root_user():
    users = instructions(RUNTIME, "USER")
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit() and int(user) >= 1000, user
    created = " ".join(instructions(RUNTIME, "RUN"))
    assert f"--uid {user}" in created, "the uid must exist in the image (useradd)"
    # Nothing after USER switches back to root.
    keys = [key for key, _ in RUNTIME]
    assert "RUN" not in keys[keys.index("USER"):]


def test_installs_exactly_the_hashed_lock_with_the_projects_uv():
    copies = " ".join(instructions(BUILD, "COPY"))
    runs = " ".join(instructions(BUILD, "RUN"))
    assert "requirements.lock" in copies
    assert re.search(r"uv pip install [^&]*--require-hashes [^&]*-r requirements\.lock", runs)
    makefile_uv = re.search(r"^UV_VERSION := (\S+)", (REPO_ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"ARG UV_VERSION={makefile_uv}" in "\n".join(f"ARG {a}" for a in instructions(BUILD, "ARG"))
    base = instructions(STAGES[0], "FROM")[0]
    assert "PYTHON_IMAGE" in base
    assert re.search(r"python:3\.11\.\d+-slim", DOCKERFILE.read_text()), "the image runs the project's Python 3.11"


def test_every_copied_path_exists_and_the_context_is_filtered():
    for arguments in instructions(BUILD, "COPY"):
        for source in shlex.split(arguments)[:-1]:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[line.strip() for line in ignore].index("**")] and "dbt_project/target/" in ignore


def test_the_chart_starts_the_server_the_image_starts():
    values = yaml.safe_load((REPO_ROOT / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    grpc_args = deployment["dagsterApiGrpcArgs"]
    command = cmd_arguments()
    assert command[:3] == ["dagster", "api", "grpc"]
    for flag in ("--module-name", "--working-directory"):
        assert grpc_args[grpc_args.index(flag) + 1] == command[command.index(flag) + 1]
    assert str(deployment["port"]) == command[command.index("--port") + 1]


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory) -> Path:
    """/opt/abaco as the build stage leaves it: the copied sources, then the manifest step."""
    root = tmp_path_factory.mktemp("image") / "opt" / "abaco"
    root.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "target", "logs", "dbt_packages")
    for arguments in instructions(BUILD, "COPY"):
        for source in shlex.split(arguments)[:-1]:
            path = REPO_ROOT / source
            if path.is_dir():
                shutil.copytree(path, root / source, ignore=skip)
            else:
                shutil.copy2(path, root / source)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(root),
           "ABACO_DATA": str(root.parent / "var"), "ABACO_DBT_TARGET": "local",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("DAGSTER_IS_DEV_CLI", None)
    env["DBT_TARGET"] = "local"
    completed = subprocess.run(["bash", "-ec", manifest_step()], cwd=root, env=env, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (root / "dbt_project" / "target" / "manifest.json").stat().st_size > 0
    return root


LOAD_WITHOUT_DBT = textwrap.dedent("""
    import json, subprocess, sys, time
    launched = []
    real_init = subprocess.Popen.__init__
    def watched_init(self, args, *a, **k):
        launched.append(args if isinstance(args, str) else [str(x) for x in args])
        return real_init(self, args, *a, **k)
    subprocess.Popen.__init__ = watched_init
    import dbt.cli.main
    def no_dbt(self, *a, **k):
        launched.append(["dbtRunner.invoke", *map(str, a)])
        raise RuntimeError("dbt invoked while loading the code location")
    dbt.cli.main.dbtRunner.invoke = no_dbt
    started = time.monotonic()
    import abaco_assets
    from abaco_assets.definitions import defs
    from abaco_assets.defs.transform.dbt_models import dbt_project
    graph = defs.resolve_asset_graph()
    print(json.dumps({"launched": launched, "seconds": time.monotonic() - started,
                      "package": abaco_assets.__file__, "manifest": str(dbt_project.manifest_path),
                      "assets": len(graph.get_all_asset_keys())}))
""")


def test_definitions_load_from_the_prepared_manifest_without_running_dbt(image_layout):
    manifest = image_layout / "dbt_project" / "target" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    env = {**os.environ, "PYTHONPATH": str(image_layout), "ABACO_ENV": "prod",
           "ABACO_DATA": str(image_layout.parent / "var")}
    env.pop("DAGSTER_IS_DEV_CLI", None)
    completed = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_DBT], cwd=image_layout, env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(image_layout), "loaded the image's sources"
    assert Path(report["manifest"]) == manifest
    dbt_calls = [call for call in report["launched"] if "dbt" in " ".join(call if isinstance(call, list) else [call])]
    assert dbt_calls == [], f"dbt ran while loading: {dbt_calls}"
    assert manifest.stat().st_mtime_ns == before, "the manifest was rewritten at load"
    assert report["assets"] > 0


def test_the_grpc_server_answers_the_readiness_probe_within_its_budget(image_layout):
    values = yaml.safe_load((REPO_ROOT / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    startup = deployment["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    command = cmd_arguments()
    port = free_port()
    command[command.index("--working-directory") + 1] = str(image_layout)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    env = {**os.environ, "PYTHONPATH": str(image_layout), "ABACO_ENV": "prod",
           "ABACO_DATA": str(image_layout.parent / "var"),
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DAGSTER_IS_DEV_CLI", None)
    server = subprocess.Popen(command, cwd=image_layout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    started = time.monotonic()
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    try:
        while True:
            assert server.poll() is None, f"the code server exited:\n{server.stdout.read()[-4000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                serving = client.health_check_query() == "SERVING"
            except OSError:  # not listening yet
                serving = False
            elapsed = time.monotonic() - started
            if serving:
                break
            assert elapsed < budget, f"not ready after {elapsed:.0f}s (startup probe budget {budget}s)"
            time.sleep(0.25)
        # The probe command itself, as the chart runs it in the pod, within its timeout.
        probe = subprocess.run([str(VENV_BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                               capture_output=True, text=True, timeout=deployment["readinessProbe"]["timeoutSeconds"],
                               env=env)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        # Sized with margin: a node twice as slow as this machine still starts within the budget.
        print(f"code server ready after {elapsed:.1f}s; startup budget {budget}s")
        assert elapsed * 2 < budget, f"ready after {elapsed:.1f}s, too close to the {budget}s budget"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
