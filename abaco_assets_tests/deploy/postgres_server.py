"""A throwaway PostgreSQL server on 127.0.0.1 for the deploy tests (Debian's package).

PostgreSQL refuses to run as root, and CI runs as root: the server then runs as the
unprivileged ``postgres`` account that Debian's package creates, through ``runuser``. The
data directory lives in a fresh folder under /tmp (pytest's own temp folders are mode 0700
under root and the postgres account could not enter them). fsync is off: the data is
disposable and a test must not wait for the disk.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_ACCOUNT = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL binaries or the unprivileged account are missing, or the server did not start."""


def postgres_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(os.path.realpath(pg_ctl)).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (pg_ctl, initdb): run .ci/services.sh "
        "(apt-get install postgresql)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    user: str
    password: str
    run_as: str | None  # account the server runs as when we are root

    host = "127.0.0.1"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _command(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
        completed = subprocess.run(self._command(*args), capture_output=True, text=True, timeout=timeout,
                                   cwd=self.root)
        if completed.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            for path in (self.root, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        pwfile.chmod(0o600)
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                  "--pwfile", str(pwfile), "--auth", "scram-sha-256", "--encoding", "UTF8",
                  "--no-sync", "--no-instructions")
        pwfile.unlink()
        options = (f"-p {self.port} -c listen_addresses={self.host} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "-t", "30", "start")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(self._command(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                                         "-w", "stop"), capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def create_database(self, name: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                      dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()

    def env(self, db_name: str) -> dict[str, str]:
        """The variables dagster.prod.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": db_name,
            "PGSSLMODE": "disable",
        }


def start_postgres() -> PostgresServer:
    bindir = postgres_bindir()
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError as error:
            raise PostgresUnavailable(
                f"running as root and there is no '{SERVER_ACCOUNT}' account to run PostgreSQL as"
            ) from error
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root and runuser (util-linux) is missing")
        run_as = SERVER_ACCOUNT
    root = Path(tempfile.mkdtemp(prefix="abaco-pg-", dir="/tmp"))
    root.chmod(0o700)
    server = PostgresServer(bindir=bindir, root=root, port=free_port(), user="abaco",
                            password=secrets.token_urlsafe(18), run_as=run_as)
    try:
        server.start()
    except Exception:
        log = server.log()
        server.stop()
        raise PostgresUnavailable(f"PostgreSQL did not start:\n{log[-3000:]}") from None
    return server
