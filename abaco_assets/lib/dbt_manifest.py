"""Keep the dbt manifest prepared so that loading the code location never parses dbt on the hot path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# The dbt installed beside this interpreter (the project venv), whatever PATH says.
VENV_DBT = str(Path(sys.executable).parent / "dbt")


def _newest_source_mtime() -> float:
    patterns = ("models/**/*.sql", "models/**/*.yml", "macros/**/*.sql", "tests/**/*.sql", "*.yml")
    return max((p.stat().st_mtime for pattern in patterns for p in DBT_PROJECT_DIR.glob(pattern)), default=0.0)


def manifest_is_current() -> bool:
    return MANIFEST.exists() and MANIFEST.stat().st_mtime >= _newest_source_mtime()


def _parse_command(dbt: str, *options: str) -> list[str]:
    """``dbt parse`` of this project with its own profiles (the manifest's, and a data folder's state)."""
    return [dbt, "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            *options, "--quiet"]


def ensure_manifest(data_dir: Path) -> None:
    """Run ``dbt parse`` when the manifest is missing or older than any project file."""
    if manifest_is_current():
        return
    env = {**os.environ, "ABACO_DATA": str(data_dir)}
    completed = subprocess.run(_parse_command(VENV_DBT), env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{completed.stdout}\n{completed.stderr}")
    MANIFEST.touch()


PARSE_STATE = "partial_parse.msgpack"


class ParseStatePrimer:
    """dbt's parse state for a new data folder, parsed while `abaco run` ingests.

    The project's parse state (dbt_project/target) was written for one data folder: dbt hashes the
    profile's connection keys, the DuckDB path among them, so the first build in any other folder
    parses the whole project again ("profile has changed": ~2.4 s of the first transform at the
    large scale). ``start`` runs ``dbt parse`` for this folder in the background, through the warm
    helper when there is one; the daily feeds' ingest leaves a core idle for it. ``finish`` links
    the state into ``$ABACO_DATA/dbt/target``, where dagster-dbt finds it (it copies the project's
    state only into a target folder that has none). Best effort: when the parse fails, or the
    folder got a state meanwhile, nothing changes and dbt parses as before; dbt checks the state's
    hashes either way, so a state can never be used for a project or profile it was not parsed for.
    """

    def __init__(self, process: subprocess.Popen, scratch: Path, target: Path):
        self.process, self.scratch, self.target = process, scratch, target

    @classmethod
    def start(cls, data_dir: Path, dbt_executable: str | None = None) -> "ParseStatePrimer | None":
        target = data_dir / "dbt" / "target"
        if (target / PARSE_STATE).exists():
            return None  # the folder's own state: partial parsing works already
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target.parent))
        process = subprocess.Popen(
            _parse_command(dbt_executable or VENV_DBT, "--target-path", str(scratch)),
            env={**os.environ, "ABACO_DATA": str(data_dir)}, cwd=DBT_PROJECT_DIR,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return cls(process, scratch, target)

    def finish(self) -> bool:
        """Wait for the parse and put its state in place; True when it is now the folder's state."""
        if self.scratch is None:
            return False
        placed = False
        try:
            if self.process.wait() == 0 and (self.scratch / PARSE_STATE).exists():
                self.target.mkdir(parents=True, exist_ok=True)
                os.link(self.scratch / PARSE_STATE, self.target / PARSE_STATE)  # never replaces a state
                placed = True
        except FileExistsError:  # a build wrote the folder's own state meanwhile
            pass
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
        return placed

    def abandon(self) -> None:
        """Stop the parse and remove its scratch folder (the command ends without a transform)."""
        if self.scratch is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None
