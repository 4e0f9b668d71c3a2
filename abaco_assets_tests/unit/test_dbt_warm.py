"""The warm dbt helper (abaco_assets/lib/dbt_warm.py) is invisible to its caller and never leaks a process.

A launcher process starts the helper with a cheap entry point in place of dbt's command line; the
tests run the client the way dagster-dbt runs dbt and check what the child received, the exit
code, signals, and that nothing outlives the client or the launcher.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper is Linux only")
REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_until(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _launch(tmp_path: Path, entry: str) -> tuple[Path, str, int, subprocess.Popen]:
    """A launcher process that starts a helper running ``entry`` and stays alive until its stdin
    closes: (the real dbt the client falls back to, client path, helper pid, launcher)."""
    real = tmp_path / "real-dbt"
    real.write_text("#!/bin/sh\necho \"real dbt $*\"\nexit 3\n")
    real.chmod(0o755)
    launcher = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import json, os, sys
            sys.path.insert(0, {str(REPO)!r})
            from abaco_assets.lib import dbt_warm
            pid = dbt_warm.start({str(real)!r}, entry="abaco_assets_tests.unit.dbt_warm_entries:{entry}")
            assert dbt_warm.start("/elsewhere/dbt") is None  # one helper per process
            print(json.dumps({{"pid": pid, "client": dbt_warm.client_executable(),
                              "environment_names_it": any("abaco-dbt-" in value for value in os.environ.values())}}),
                  flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    started = json.loads(launcher.stdout.readline())
    assert started["pid"] and started["client"]
    # nothing goes through the environment: a program started from here (a `dagster dev`, a test's
    # subprocess) never finds or uses this process's helper
    assert not started["environment_names_it"]
    return real, started["client"], started["pid"], launcher


def _stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None and process.stdin:
            process.stdin.close()  # a launcher's normal exit: it stops its helper and removes its folder
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture
def helper(tmp_path):
    real, client, pid, launcher = _launch(tmp_path, "echo")
    yield real, client, pid, launcher
    _stop(launcher)


def test_the_client_is_the_process_it_stands_for(helper, tmp_path):
    real, client, _, _ = helper
    done = subprocess.run([client, "7", "--flag"], cwd=tmp_path, env={**os.environ, "ABACO_TEST_MARKER": "m1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 7
    seen = json.loads(done.stdout)
    assert seen["argv"] == [str(real), "7", "--flag"]
    assert seen["cwd"] == str(tmp_path) and seen["marker"] == "m1"
    assert done.stderr == "a line on stderr\n"
    assert subprocess.run([client, "0"], capture_output=True, timeout=60).returncode == 0


def test_without_a_helper_the_client_runs_the_real_dbt(helper):
    _, client, helper_pid, _ = helper
    os.kill(helper_pid, signal.SIGKILL)
    assert _wait_until(lambda: _gone(helper_pid))
    done = subprocess.run([client, "build", "--select", "x"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (3, "real dbt build --select x\n")


@pytest.fixture
def sleeping(tmp_path):
    """A helper whose entry sleeps, and a client running it: (client process, child pid, helper pid, launcher,
    the helper's folder)."""
    _, client_path, helper_pid, launcher = _launch(tmp_path, "sleeper")
    pid_file = tmp_path / "child.pid"
    client = subprocess.Popen([client_path, str(pid_file)])
    assert _wait_until(lambda: pid_file.exists() and pid_file.read_text())
    yield client, int(pid_file.read_text()), helper_pid, launcher, Path(client_path).parent
    _stop(client, launcher)


def test_a_signal_to_the_client_reaches_the_child(sleeping):
    client, child, helper_pid, _, _ = sleeping
    client.send_signal(signal.SIGTERM)
    assert client.wait(10) == -signal.SIGTERM  # the client ends as its child did
    assert _wait_until(lambda: _gone(child))
    assert not _gone(helper_pid)  # the helper serves the next build


def test_a_killed_client_takes_its_child_along(sleeping):
    client, child, helper_pid, _, _ = sleeping
    client.kill()
    client.wait(10)
    assert _wait_until(lambda: _gone(child)), "the child outlived its client"
    assert not _gone(helper_pid)


def test_nothing_outlives_the_process_that_started_the_helper(sleeping):
    _, child, helper_pid, launcher, folder = sleeping
    launcher.kill()  # kill -9: no atexit, only the parent-death signal
    launcher.wait(10)
    assert _wait_until(lambda: _gone(helper_pid)), "the helper outlived its parent"
    assert _wait_until(lambda: _gone(child)), "a child outlived the helper"
    assert _wait_until(lambda: not folder.exists()), "the helper's folder was left behind"

