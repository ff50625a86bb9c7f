"""The image's HEALTHCHECK (deploy/healthcheck.py): a web container answers /healthz, a worker container is healthy
while it runs."""

from __future__ import annotations

import runpy
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.ports import free_port
from tests.support import REPO_ROOT

HEALTHCHECK = REPO_ROOT / "deploy" / "healthcheck.py"

# As `leadrelay web` execs it (app/cli.py).
GUNICORN = [
    b"/opt/venv/bin/python",
    b"-m",
    b"gunicorn",
    b"--config",
    b"/app/deploy/gunicorn.conf.py",
    b"app:create_app()",
]
LEADRELAY_WEB = [b"/opt/venv/bin/python", b"/opt/venv/bin/leadrelay", b"web"]
LEADRELAY_WORKER = [b"/opt/venv/bin/python", b"/opt/venv/bin/leadrelay", b"worker"]
LEADRELAY_SANDBOX = [b"/opt/venv/bin/python", b"/opt/venv/bin/leadrelay", b"sandbox", b"--port", b"8001"]
DOCKER_INIT = [b"/sbin/docker-init", b"--", b"leadrelay", b"worker"]


def healthy() -> Callable[..., bool]:
    return runpy.run_path(str(HEALTHCHECK))["healthy"]


def container_processes(folder: Path, *commands: list[bytes]) -> Path:
    """A /proc of these processes (pids from 1), as the container's own /proc lists them."""
    for pid, argv in enumerate(commands, start=1):
        (folder / str(pid)).mkdir()
        (folder / str(pid) / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (folder / "self").mkdir()
    return folder


@pytest.fixture
def web_tier() -> Iterator[Callable[[int], str]]:
    """Start a server answering /healthz with a status; returns its port."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status if self.path == "/healthz" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return str(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", [LEADRELAY_WORKER, LEADRELAY_SANDBOX, DOCKER_INIT])
def test_a_container_of_another_role_than_web_is_healthy_while_it_runs(tmp_path, command):
    # Nothing listens on PORT there: probing /healthz marked every worker unhealthy (Swarm replaces such a task).
    proc = container_processes(tmp_path, command)

    assert healthy()({"PORT": str(free_port())}, proc) is True


@pytest.mark.parametrize("command", [GUNICORN, LEADRELAY_WEB])
def test_a_web_container_is_healthy_while_healthz_answers_200_on_its_port(tmp_path, web_tier, command):
    proc = container_processes(tmp_path, [b"/sbin/docker-init", b"--", b"leadrelay", b"web"], command)

    assert healthy()({"PORT": web_tier(200)}, proc) is True
    assert healthy()({"PORT": web_tier(503)}, proc) is False
    assert healthy()({"PORT": str(free_port())}, proc) is False


def test_a_web_container_with_a_blank_port_is_asked_on_8000_as_gunicorn_binds(tmp_path, monkeypatch):
    asked: list[str] = []
    check = runpy.run_path(str(HEALTHCHECK))
    monkeypatch.setitem(check["healthy"].__globals__, "web_answers", lambda port: asked.append(port) or True)

    assert check["healthy"]({"PORT": " "}, container_processes(tmp_path, GUNICORN)) is True
    assert asked == ["8000"]
