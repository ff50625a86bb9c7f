"""Serving the sandbox over HTTP: in a background thread for tests, or blocking for the CLI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.sandbox.access import register_access_log
from app.sandbox.app import create_sandbox_app
from app.sandbox.faults import DEFAULT_RATE_LIMIT_PER_MIN
from app.sandbox.state import Sandbox

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 5.0
POLL_INTERVAL_SECONDS = 0.05  # how soon serve_forever notices stop(); werkzeug's default is 0.5 s


class QuietRequestHandler(WSGIRequestHandler):
    """No werkzeug access line per request: tests and the benchmark send thousands, and a sandbox served on its own
    logs its requests as JSON lines (`app.sandbox.access`)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SandboxServer:
    """Serves `create_sandbox_app(sandbox)` on `host:port` (0 picks a free port) in a daemon thread."""

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.app: Flask = create_sandbox_app(sandbox)
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to use as `CARECYCLE_BASE_URL`, e.g. `http://127.0.0.1:54321`."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        """Bind and serve in the background; returns self."""
        if self._server is not None:
            raise RuntimeError("the sandbox server is already started")
        self.sandbox.hold_stalls()
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=QuietRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL_SECONDS,), name="carecycle-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled requests are released at once so this returns quickly."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.sandbox.release_stalls()
        server.shutdown()
        server.server_close()  # joins the request threads, which no stall holds any more
        thread.join(STOP_TIMEOUT_SECONDS)
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    host: str, port: int, api_keys: Iterable[str], rate_limit_per_min: int = DEFAULT_RATE_LIMIT_PER_MIN
) -> None:
    """Serve a fresh sandbox until interrupted (`leadrelay sandbox`), logging each request."""
    sandbox = Sandbox(api_keys, rate_limit_per_min=rate_limit_per_min)
    app = create_sandbox_app(sandbox)
    register_access_log(app)
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    logger.info(
        "careCycle sandbox listening on http://%s:%s (limit %d/min)", host, server.server_port, rate_limit_per_min
    )
    try:
        server.serve_forever()
    finally:
        sandbox.release_stalls()
        server.server_close()
