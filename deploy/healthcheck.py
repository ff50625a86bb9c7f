"""The image's HEALTHCHECK (deploy/Dockerfile): `python /app/deploy/healthcheck.py`, exit 0 healthy, 1 not.

One image runs every role. A container serving the web tier (`leadrelay web`, which becomes gunicorn) is healthy
while it answers `/healthz` on PORT. A container of any other role (`worker`, `sandbox`, a one-shot command) serves
no web tier to ask: it is healthy while it runs, since a worker that fails exits and the restart policy brings it
back (a probe of Redis would flag every worker during a Redis outage, which a restart does not cure). Probing
`/healthz` in a worker container marked it unhealthy for good, and Docker Swarm replaces an unhealthy task.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

TIMEOUT_SECONDS = 4


def serves_web(proc: Path = Path("/proc")) -> bool:
    """Whether a process of this container is the web tier: gunicorn, or `leadrelay web` before it execs it."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = entry.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if is_web_command(argv):
            return True
    return False


def is_web_command(argv: list[bytes]) -> bool:
    """`python -m gunicorn ...` as `leadrelay web` runs it, or `python .../leadrelay web`."""
    if argv[1:3] == [b"-m", b"gunicorn"]:
        return True
    return len(argv) > 2 and os.path.basename(argv[1]) == b"leadrelay" and argv[2] == b"web"


def web_answers(port: str) -> bool:
    """Whether the web tier on this port answers `/healthz` with 200 in time."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_SECONDS) as answer:
            return bool(answer.status == 200)
    except OSError:  # refused, timed out, or an HTTP error status
        return False


def healthy(environ: Mapping[str, str], proc: Path = Path("/proc")) -> bool:
    """The container's health: its web tier answers, or it runs no web tier."""
    if not serves_web(proc):
        return True
    # As deploy/gunicorn.conf.py reads it: blank counts as unset.
    return web_answers(environ.get("PORT", "").strip() or "8000")


if __name__ == "__main__":
    sys.exit(0 if healthy(os.environ) else 1)
