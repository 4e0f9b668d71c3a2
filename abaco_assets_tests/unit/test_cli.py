"""The CLI as a user meets it: complete help with examples (snapshot), and one clear sentence
plus a non-zero exit code for every error a user can cause — never a traceback."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from abaco_assets.cli import main
from abaco_assets_tests.conftest import ABACO

SNAPSHOTS = Path(__file__).resolve().parents[1] / "fixtures" / "cli_help"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


COMMANDS = list(_commands(main))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "abaco")
def test_help_matches_its_snapshot_and_has_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=100, prog_name="abaco")
    assert result.exit_code == 0
    snapshot = SNAPSHOTS / f"{'_'.join(path) or 'abaco'}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(result.output)
    assert result.output == snapshot.read_text(), f"help changed: UPDATE_SNAPSHOTS=1 to accept ({snapshot})"
    leaf = path and not isinstance(main.commands.get(path[0]), click.Group) or len(path) > 1
    if leaf:
        assert "Example" in result.output


@pytest.mark.parametrize("args, message", [
    (["run", "--landing", "/nonexistent/landing"], "does not exist"),
    (["run", "--landing", ".", "--source", "cascad"], "unknown source 'cascad'"),
    (["run", "--landing", ".", "--date", "2026-02-30"], "is not a valid YYYY-MM-DD date"),
    (["generate", "--out", "/tmp", "--loans", "10"], "is not empty"),
    (["generate", "--out", "/nonexistent/x", "--end-date", "31/10/2026"], "is not a YYYY-MM-DD date"),
    (["contracts", "diff", "cascade/loans", "v1", "v2"], "unknown table 'cascade/loans'"),
    (["kpis", "--month", "2026-13"], ""),
])
def test_user_errors_give_one_sentence_and_exit_2(args, message, tmp_path):
    env = {**os.environ, "ABACO_DATA": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dh")}
    done = subprocess.run([ABACO, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_data_dir_without_write_permission_is_a_user_error():
    """As an unprivileged user (CI runs as root, for whom every folder is writable): the check that
    guards `abaco run` refuses a data folder the user cannot write, with one sentence.

    The venv's interpreter lives under /root here, which other users cannot execute, so the
    check runs in a forked child that drops to the test user rather than in a new process."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the unprivileged user")
    from abaco_assets.cli import UserError, _prepare_environment

    user = "abaco-cli-test"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    account = pwd.getpwnam(user)
    workdir = Path(tempfile.mkdtemp(prefix="abaco-perm-", dir="/tmp"))
    os.chmod(workdir, 0o755)
    locked = workdir / "data"
    locked.mkdir(mode=0o755)  # owned by root: not writable by the test user
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, then run the check
        os.close(read_end)
        code = 3
        try:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            _prepare_environment(locked, None)
            message = "no error"
        except UserError as exc:
            message, code = exc.format_message(), exc.exit_code
        except BaseException as exc:  # report anything else to the parent
            message = f"unexpected {exc!r}"
        os.write(write_end, message.encode())
        os._exit(code)
    os.close(write_end)
    message = os.read(read_end, 4096).decode()
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(workdir)
    assert account.pw_uid != 0
    assert os.waitstatus_to_exitcode(status) == 2, message
    assert message.startswith(f"cannot write to the data folder {locked}") and "Permission denied" in message


ENTRY_WITH_A_LATE_WRITER = """
import sys, threading, time
from pathlib import Path
from abaco_assets.cli import entry

marker = Path(sys.argv[1])


def late_write():
    time.sleep(2)  # well after the command has returned
    marker.write_text("written")

threading.Thread(target=late_write).start()
sys.argv = ["abaco", "kpis"]
entry()
"""


def test_the_console_script_exits_fast_without_losing_output_or_a_running_thread(tmp_path):
    # `abaco` skips the interpreter's teardown: the exit code, the printed lines and the work of a
    # thread that is still running must come through exactly as with a normal exit
    env = {**os.environ, "ABACO_DATA": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dh")}
    done = subprocess.run([ABACO, "kpis"], capture_output=True, text=True, env=env, timeout=120)
    in_process = CliRunner().invoke(main, ["kpis"], env=env)
    assert done.returncode == in_process.exit_code != 0
    assert "no warehouse at" in done.stdout and done.stdout == in_process.output
    marker = tmp_path / "marker"
    late = subprocess.run([str(Path(ABACO).parent / "python"), "-c", ENTRY_WITH_A_LATE_WRITER, str(marker)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert late.returncode == done.returncode, late.stderr
    assert marker.read_text() == "written"
