"""Child processes started in their own process group, signalled and reaped group and all.

A child started with `process_group=0` leads a group that also holds what it forks (gunicorn's workers,
RQ's scheduler); signalling the group rather than the child is what keeps none of those alive after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to every process of group `pgid`; nothing when the group is gone already."""
    # PermissionError: on macOS a group left with only zombies refuses signals instead of being gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def reap_group(process: subprocess.Popen[bytes], timeout_seconds: float) -> bool:
    """Wait up to `timeout_seconds` for a group leader to exit, then SIGKILL what is left of its group.

    Returns True when the leader exited in time (False: it was killed).
    """
    try:
        process.wait(timeout=max(0.0, timeout_seconds))
        exited = True
    except subprocess.TimeoutExpired:
        exited = False
    signal_group(process.pid, signal.SIGKILL)
    process.wait()
    return exited
