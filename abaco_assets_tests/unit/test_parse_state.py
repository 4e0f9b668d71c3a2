"""The background dbt parse of a new data folder (lib/dbt_manifest.ParseStatePrimer): placed only
when it succeeded, never over a state already there, and nothing left behind either way.

The executables here stand in for dbt (they only honour --target-path); the real dbt parse is run
by the end-to-end test, whose first transform must then parse partially."""

import os
import stat
import sys
from pathlib import Path

from abaco_assets.lib.dbt_manifest import PARSE_STATE, ParseStatePrimer

WRITES_STATE = """
import sys, pathlib
args = sys.argv[1:]
target = pathlib.Path(args[args.index("--target-path") + 1])
(target / "partial_parse.msgpack").write_bytes(b"state for " + sys.argv[1].encode())
"""


def _executable(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_successful_parse_becomes_the_folder_state_and_its_scratch_folder_goes(tmp_path):
    data = tmp_path / "data"
    primer = ParseStatePrimer.start(data, _executable(tmp_path, "dbt", WRITES_STATE))
    assert primer is not None and primer.finish()
    assert (data / "dbt" / "target" / PARSE_STATE).read_bytes() == b"state for parse"
    assert [p.name for p in (data / "dbt").iterdir()] == ["target"]
    assert ParseStatePrimer.start(data, _executable(tmp_path, "dbt", WRITES_STATE)) is None  # has its state


def test_a_failed_parse_or_a_state_written_meanwhile_changes_nothing(tmp_path):
    data = tmp_path / "data"
    failing = ParseStatePrimer.start(data, _executable(tmp_path, "dbt-fails", "import sys\nsys.exit(2)\n"))
    assert failing is not None and not failing.finish()
    assert not (data / "dbt" / "target" / PARSE_STATE).exists()
    late = ParseStatePrimer.start(data, _executable(tmp_path, "dbt", WRITES_STATE))
    (data / "dbt" / "target").mkdir(parents=True)
    (data / "dbt" / "target" / PARSE_STATE).write_bytes(b"a build's own state")
    assert not late.finish()
    assert (data / "dbt" / "target" / PARSE_STATE).read_bytes() == b"a build's own state"
    assert [p.name for p in (data / "dbt").iterdir()] == ["target"]


def test_abandoning_stops_the_parse_and_removes_its_scratch_folder(tmp_path):
    data = tmp_path / "data"
    primer = ParseStatePrimer.start(data, _executable(tmp_path, "dbt-slow", "import time\ntime.sleep(60)\n"))
    primer.abandon()
    assert primer.process.returncode is not None and primer.process.returncode < 0  # killed, not finished
    assert not any(p.name.startswith(".parse-") for p in (data / "dbt").iterdir())
    primer.abandon()  # idempotent (also registered with atexit)
    assert not primer.finish()
    assert os.listdir(data / "dbt") == []
