"""Request ids: taken from `X-Request-ID` when sent (if sane), else made; echoed on every response."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """The id of the request being served."""
    return str(g.get("request_id", ""))


def register_request_id(app: Flask) -> None:
    """Give every request an id and put it on the response."""

    @app.before_request
    def assign_request_id() -> None:
        sent = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
        return response
