"""dbt started before it is needed: a warm helper process that forks one dbt per build.

Why: a dbt build pays about 2 s importing dbt before it reads a file, and `abaco run` waits for it
with one of the machine's two cores idle. ``start()`` (called by `abaco run` before it imports
Dagster) forks a helper that imports dbt on the other core while the command starts up and
ingests. dagster-dbt then runs a small client (``client_executable()``) instead of ``dbt``; the
client hands its arguments, environment, working folder and standard streams to the helper, which
forks a child that runs dbt's own command line in them. dagster-dbt sees an ordinary dbt process:
the same argv, the same JSON log lines on the same pipe, the same exit code; SIGINT and SIGTERM
sent to the client reach dbt.

Fail-safe by construction:
- the client execs the real dbt when the helper is absent or goes away before starting dbt;
- the helper and each dbt child die with their parent (Linux parent-death signal), so a kill -9
  of `abaco run` leaves no dbt behind holding the warehouse;
- a dbt child is killed when its client goes away (a kill -9 of the client included);
- Linux only; elsewhere ``start()`` does nothing and dbt runs as usual.

This module imports only the standard library: the client must start in milliseconds.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import traceback
from pathlib import Path

CLIENT_NAME = "dbt-warm"
_PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!I")
REPO_ROOT = Path(__file__).resolve().parents[2]
# this process's helper client; nothing goes through the environment, so no other program (a
# `dagster dev` started from here, a test's subprocess) ever finds or uses this process's helper
_client: Path | None = None


DBT_ENTRY = "dbt.cli.main:cli"  # what the `dbt` console script calls


def start(real_dbt: str, *, entry: str = DBT_ENTRY) -> int | None:
    """Fork the helper (from a process with no other threads); returns its pid, or None where
    unsupported. ``client_executable()`` then names the client that runs ``real_dbt``'s builds
    through it (and ``real_dbt`` itself when the helper cannot answer).

    ``entry`` (``module:function``) is the command line the helper runs per request: dbt's.
    """
    import threading

    global _client
    # forking is safe only with one thread; a process that already has a helper keeps it
    if not sys.platform.startswith("linux") or _client is not None or threading.active_count() > 1:
        return None
    folder = Path(tempfile.mkdtemp(prefix="abaco-dbt-"))
    path = folder / "helper.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    client = folder / CLIENT_NAME
    # the interpreter of this process, isolated (-I: no user site, no PYTHON* variables) and without
    # site-packages (-S): the client needs only the standard library and this module
    client.write_text(f"#!{sys.executable} -IS\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                      f"from abaco_assets.lib.dbt_warm import client\nclient({str(path)!r}, {real_dbt!r})\n")
    client.chmod(0o755)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the helper
        code = 0
        try:
            def parent_died(_signum, _frame):  # a kill -9 of the parent leaves no folder behind either
                shutil.rmtree(folder, ignore_errors=True)
                os._exit(0)  # its dbt child, if any, follows (its own parent-death signal)

            signal.signal(signal.SIGTERM, parent_died)
            _die_with_parent(parent, signal.SIGTERM)
            _serve(server, entry)
        except BaseException:  # noqa: BLE001 - the helper must never return into the caller's code
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    server.close()
    _client = client

    def stop() -> None:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return pid


def client_executable() -> str | None:
    """The client to give dagster-dbt as its dbt executable, when this process started a helper."""
    return str(_client) if _client is not None and _client.exists() else None


def _die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _serve(server: socket.socket, entry: str) -> None:
    """Import the entry (dbt: the point of the helper), then run it once per connection, one at a time."""
    import importlib

    module, _, name = entry.partition(":")
    main = getattr(importlib.import_module(module), name)
    if entry == DBT_ENTRY:  # what every build loads next
        import dbt.adapters.duckdb  # noqa: F401
        import dbt.task.build  # noqa: F401
    while True:
        connection, _ = server.accept()
        with connection:
            try:
                _handle(server, connection, main)
            except OSError:
                pass  # the client went away; the next one is served


def _handle(server: socket.socket, connection: socket.socket, main) -> None:
    request, fds = _receive(connection)
    helper = os.getpid()
    pid = os.fork()
    if pid == 0:
        server.close()
        connection.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # dbt's own reaction to SIGTERM, not the helper's
        _die_with_parent(helper)
        _run(main, request, fds)  # never returns
    for fd in fds:
        os.close(fd)
    connection.sendall(f"PID {pid}\n".encode())
    watch = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([connection, watch], [], [])
            if watch in ready:
                break
            if not connection.recv(1):  # EOF: the client died; its dbt must not outlive it
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
    finally:
        os.close(watch)
    _, status = os.waitpid(pid, 0)
    connection.sendall(f"EXIT {os.waitstatus_to_exitcode(status)}\n".encode())


def _run(main, request: dict, fds: list[int]) -> None:
    """In the forked child: become the process the client stands for (``main()`` with its argv,
    environment, folder and streams), then exit as that process would."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = request["argv"]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a normal interpreter exit runs (dbt's and multiprocessing's)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if 0 <= code < 256 else 1)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
    if len(fds) != 3 or len(data) < _HEADER.size:
        raise OSError("malformed request")
    (length,) = _HEADER.unpack(data[:_HEADER.size])
    body = data[_HEADER.size:]
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise OSError("truncated request")
        body += chunk
    return json.loads(body), fds


def client(socket_path: str, real: str) -> None:
    """``dbt <args>`` through the helper at ``socket_path``; ``real`` (dbt) when no helper answers."""
    argv = sys.argv
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(socket_path)
        body = json.dumps({"argv": [real, *argv[1:]], "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(connection, [_HEADER.pack(len(body)) + body], [0, 1, 2])
        reply = connection.makefile("rb")
        started = reply.readline().split()
    except OSError:
        started = []
    if len(started) != 2 or started[0] != b"PID":  # no helper, or it went away before starting dbt
        os.execv(real, [real, *argv[1:]])
    pid = int(started[1])

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    finished = reply.readline().split()
    if len(finished) == 2 and finished[0] == b"EXIT":
        code = int(finished[1])
        if code < 0:  # dbt died of a signal: so does the client, as the process it stands for
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        sys.exit(code)
    sys.stderr.write("dbt-warm: the dbt helper went away before dbt finished\n")
    sys.exit(1)
