"""Fail points for crash tests: ``ABACO_FAULT_POINT=<name>`` makes the process kill -9 itself there.

Crash safety is only believable when it is exercised: the tests kill a real
`abaco run` at fixed points (after the raw copy, mid-Parquet write, mid-dbt)
and check that a rerun converges to the marts of an uninterrupted run.
Unset (always, in production) this is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "ABACO_FAULT_POINT"


def fault_point(name: str, *, children: tuple[int, ...] = ()) -> None:
    if os.environ.get(FAULT_ENV) != name:
        return
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
