"""Request ids: taken from `X-Request-ID` when sent (if sane), else made; echoed on every response."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from app.logs import bind_log_ids, take_noted_lead_ids, unbind_log_ids

logger = logging.getLogger("app.requests")

# Where a request keeps the token that unbinds its ids: its own environ, never `g`, which a request made
# within another (a test client's, say) shares with it, so the outer one's ids would stay bound for good.
_LOG_IDS_TOKEN = "leadrelay.log_ids_token"

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_CHARS = 128
_SANE_ID = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID_CHARS}}}$")
# What a sent id must be to be kept, in the words the API description uses.
SANE_REQUEST_ID = f"1 to {MAX_REQUEST_ID_CHARS} letters, digits, `.`, `_`, `:` or `-`"


def register_request_id(app: Flask) -> None:
    """Give every request an id and put it on the response."""

    @app.before_request
    def assign_request_id() -> None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        g.request_started = time.monotonic()
        request.environ[_LOG_IDS_TOKEN] = bind_log_ids(request_id=g.request_id)
        take_noted_lead_ids()  # a thread's previous request may have left some

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
        # The path only: query strings and bodies may carry personal data.
        elapsed_ms = round((time.monotonic() - g.get("request_started", time.monotonic())) * 1000, 1)
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        extra: dict[str, object] = {"status": response.status_code, "duration_ms": elapsed_ms}
        lead_ids = take_noted_lead_ids()
        if len(lead_ids) == 1:
            extra["lead_id"] = lead_ids[0]
        elif lead_ids:
            extra["lead_ids"] = list(lead_ids)
        rule = request.url_rule.rule if request.url_rule else "<unmatched>"
        logger.log(level, "%s %s %s", request.method, rule, response.status_code, extra=extra)
        return response

    @app.teardown_request
    def unbind_request_id(exc: BaseException | None) -> None:
        token = request.environ.pop(_LOG_IDS_TOKEN, None)
        if token is not None:
            unbind_log_ids(token)
