"""The sandbox's access log when served on its own (`leadrelay sandbox`, as `leadrelay dev` runs it): one JSON line
per request, as the web tier's request lines, in place of werkzeug's plain text."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

logger = logging.getLogger("app.sandbox.requests")


def register_access_log(app: Flask) -> None:
    """Log each request of `app` once: method, route, status and duration. The route's pattern, not the path, and
    never the query string or the body: a client may put anything there, a lead's personal data among it."""

    @app.before_request
    def note_start() -> None:
        g.sandbox_request_started = time.monotonic()

    @app.after_request
    def log_request(response: Response) -> Response:
        started = g.get("sandbox_request_started", time.monotonic())
        extra = {"status": response.status_code, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        rule = request.url_rule.rule if request.url_rule else "<unmatched>"
        logger.log(level, "%s %s %s", request.method, rule, response.status_code, extra=extra)
        return response
