"""The Procfile as a Procfile runner starts it: honcho runs `web` and `worker`, and a posted lead is delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.crypto import generate_key
from app.ports import free_port
from app.processes import signal_group
from tests.conftest import CARECYCLE_KEY, OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.realredis import redis_url_for_tests
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Variables a developer's shell may carry that would change what the Procfile's processes do.
INHERITED_PREFIXES = ("CARECYCLE_", "LEADRELAY_", "FACEBOOK_", "GUNICORN_", "PROMETHEUS_")
INHERITED_NAMES = {"REDIS_URL", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}
STOP_TIMEOUT_SECONDS = 20.0


def process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, read from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since the listing
            continue
        state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
        table[int(entry)] = (int(ppid), int(pgid), state)
    return table


def descendants(root: int) -> dict[int, int]:
    """pid -> process group of every process below `root`."""
    table = process_table()
    children = defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    found, stack = {}, [root]
    while stack:
        for child in children[stack.pop()]:
            found[child] = table[child][1]
            stack.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def live_members(groups: set[int]) -> list[int]:
    """Processes still running (zombies excepted) in any of `groups`."""
    return [pid for pid, (_, pgid, state) in process_table().items() if pgid in groups and state not in "ZX"]


def kill_groups(groups: set[int], sig: signal.Signals) -> None:
    for group in groups:
        signal_group(group, sig)


def procfile_environ(port: int, sandbox_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES) and k not in INHERITED_NAMES}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # so the Procfile's `leadrelay` is this one
        PYTHONUNBUFFERED="1",
        PORT=str(port),
        REDIS_URL=redis_url_for_tests(),
        CARECYCLE_BASE_URL=sandbox_url,
        CARECYCLE_API_KEY=CARECYCLE_KEY,
        LEADRELAY_ENCRYPTION_KEY=generate_key(),
        LEADRELAY_SOURCE_KEYS=f"partner={SOURCE_KEY}",
        LEADRELAY_OPS_TOKENS=f"alice={OPS_TOKEN}",
    )
    return env


class Procfile:
    """`honcho start -f Procfile` in its own process group; honcho puts each Procfile line in another."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        empty_env_file = log_dir / "empty.env"  # not the repository's .env, if a developer has one
        empty_env_file.write_text("")
        self.log_path = log_dir / "honcho.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "honcho"), "start", "-f", "Procfile", "-e", str(empty_env_file)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        self.groups = {self.process.pid}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def remember_processes(self) -> dict[int, str]:
        """Note the process groups below honcho (one per Procfile line); returns pid -> command line."""
        below = descendants(self.process.pid)
        self.groups |= set(below.values())
        return {pid: command_line(pid) for pid in below}

    def stop(self) -> None:
        """SIGTERM to honcho's group (it stops its children), then SIGKILL to every group still running."""
        self.remember_processes()
        kill_groups({self.process.pid}, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        if live_members(self.groups):
            kill_groups(self.groups, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def procfile(sandbox, real_redis, tmp_path) -> Iterator[tuple[Procfile, str]]:
    assert (VENV_BIN / "leadrelay").exists() and (VENV_BIN / "honcho").exists()
    port = free_port()
    runner = Procfile(procfile_environ(port, sandbox.url), tmp_path)
    yield runner, f"http://127.0.0.1:{port}"
    if runner.process.poll() is None or live_members(runner.groups):  # the test failed before stopping it
        runner.stop()


def is_ready(runner: Procfile, base_url: str) -> bool:
    if runner.process.poll() is not None:
        raise AssertionError(f"honcho exited with {runner.process.returncode}:\n{runner.log()}")
    try:
        return requests.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:  # not listening yet, or a worker still booting
        return False


def lead_status(base_url: str, lead_id: str) -> str:
    response = requests.get(
        f"{base_url}/v1/leads/{lead_id}", headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_procfile_under_honcho_delivers_a_posted_lead_and_stops_without_leftovers(procfile, sandbox):
    runner, base_url = procfile
    wait_until(lambda: is_ready(runner, base_url), timeout=60, interval=0.1)

    response = requests.post(
        f"{base_url}/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY}, timeout=5
    )
    assert response.status_code == 202, response.text
    lead_id = response.json()["id"]
    wait_until(lambda: sandbox.sandbox.delivered_external_ids()[lead_id] == 1, timeout=30, interval=0.1)
    wait_until(lambda: lead_status(base_url, lead_id) == "delivered", timeout=10, interval=0.1)

    commands = " | ".join(runner.remember_processes().values())
    assert "gunicorn" in commands and "leadrelay worker" in commands, commands
    assert len(runner.groups) >= 3  # honcho's own, the web line's and the worker line's
    runner.stop()

    assert live_members(runner.groups) == [], runner.log()
