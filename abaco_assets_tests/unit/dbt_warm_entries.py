"""Entry points the warm-helper tests run in place of dbt's command line (cheap and observable)."""

import json
import os
import sys
import time
from pathlib import Path


def echo() -> None:
    """Report what the process received, then exit with the code given as the first argument."""
    print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "marker": os.environ.get("ABACO_TEST_MARKER")}))
    sys.stderr.write("a line on stderr\n")
    sys.exit(int(sys.argv[1]))


def sleeper() -> None:
    """Write this process's pid to the file given, then wait to be killed."""
    Path(sys.argv[1]).write_text(str(os.getpid()))
    time.sleep(120)
