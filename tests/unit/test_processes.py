"""Signalling and reaping a child's whole process group: nothing it forked outlives it."""

from __future__ import annotations

import signal
import subprocess
import sys

from app.processes import reap_group, signal_group
from tests.support import is_running, wait_until

# The leader forks a grandchild into its group, prints the grandchild's pid, then waits on it.
_LEADER_WITH_GRANDCHILD = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


def _start_leader() -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen([sys.executable, "-c", _LEADER_WITH_GRANDCHILD], stdout=subprocess.PIPE, process_group=0)
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    process.stdout.close()
    assert is_running(grandchild)
    return process, grandchild


def test_reap_group_kills_the_leader_and_its_grandchild_when_the_leader_outstays_the_timeout():
    process, grandchild = _start_leader()

    exited = reap_group(process, 0)

    assert exited is False
    assert process.returncode == -signal.SIGKILL
    wait_until(lambda: not is_running(grandchild))


def test_reap_group_reports_a_leader_that_exits_in_time_and_still_sweeps_its_group():
    process, grandchild = _start_leader()
    process.send_signal(signal.SIGTERM)  # the leader only: its grandchild lives on in the group

    exited = reap_group(process, 30)

    assert exited is True
    assert process.returncode == -signal.SIGTERM
    wait_until(lambda: not is_running(grandchild))


def test_signal_group_does_nothing_when_the_group_is_gone():
    process = subprocess.Popen([sys.executable, "-c", "pass"], process_group=0)
    process.wait()

    signal_group(process.pid, signal.SIGTERM)

    assert process.returncode == 0
