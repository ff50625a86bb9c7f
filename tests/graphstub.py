"""A stand-in for Meta's Graph API, served over loopback: the relay's Graph client and workers talk to it.

It keeps leads by id and answers `GET /<version>/<lead id>` and `GET /<version>/<form id>/leads` (with
`filtering` on time_created and cursor paging) as Graph does, checks the access token (Authorization
header or `access_token` parameter) and, when given the app secret, `appsecret_proof`. Tests script
faults: a Graph error body with any status and code, an answer that is not JSON, a stall past the
client's read timeout (one answer, or every answer until told otherwise), or a token that is refused
until accepted again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

DEFAULT_TOKEN = "graph-token-example"
DEFAULT_PAGE_SIZE = 25


@dataclass(frozen=True)
class Answer:
    """A scripted answer: status with a JSON body (or raw text) and `headers`, optionally after a stall."""

    status: int
    body: Any = None
    text: str | None = None
    stall_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenRequest:
    """What the stand-in received (the token itself is not kept, only whether it was accepted)."""

    path: str
    query: dict[str, str]
    token_ok: bool
    authorization_scheme: str


@dataclass
class GraphStub:
    """The stand-in's state; thread-safe, shared by the serving thread and the test."""

    token: str = DEFAULT_TOKEN
    app_secret: str | None = None
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    script: list[Answer | None] = field(default_factory=list)  # None: that call is answered as usual
    refused_token: Answer | None = None
    stall_seconds: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_lead(
        self, lead_id: str, form_id: str, field_data: list[dict[str, Any]], created: float, **more: Any
    ) -> None:
        """A lead Graph can return; `created` is epoch seconds (shown as Graph's ISO string)."""
        stamp = datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        lead = {"id": lead_id, "created_time": stamp, "form_id": form_id, "field_data": field_data, **more}
        with self.lock:
            self.leads[lead_id] = {**lead, "_created": created}

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        after: int = 0,
        **error: Any,
    ) -> None:
        """The next `times` calls (after `after` calls answered as usual) answer a Graph error (or, without `code`, an
        empty body), with `headers` (Graph's usage headers beside a rate limit, say)."""
        body = {"error": {"message": f"(stand-in) error {code}", "type": "GraphMethodException", "code": code}}
        body["error"].update(error)
        text = "" if code is None else None
        answer = Answer(status, body if code is not None else None, text=text, headers=dict(headers or {}))
        with self.lock:
            self.script.extend([None] * after + [answer] * times)

    def answer_next(self, answer: Answer) -> None:
        with self.lock:
            self.script.append(answer)

    def refuse_token(self, code: int = 190, subcode: int = 463) -> None:
        """Every call answers a token error until `accept_token()`."""
        error = {"message": "Error validating access token: Session has expired.", "type": "OAuthException"}
        error.update({"code": code, "error_subcode": subcode, "fbtrace_id": "AbCdEfGhIjK"})
        with self.lock:
            self.refused_token = Answer(400 if code == 190 else 403, {"error": error})

    def accept_token(self) -> None:
        with self.lock:
            self.refused_token = None

    def stall_every_answer(self, seconds: float) -> None:
        """Every call waits `seconds` before it is answered (a Graph API that hangs), until `answer_promptly()`."""
        with self.lock:
            self.stall_seconds = seconds

    def answer_promptly(self) -> None:
        with self.lock:
            self.stall_seconds = 0.0

    def requests_to(self, path_end: str) -> list[SeenRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(path_end)]


def create_graph_app(stub: GraphStub) -> Flask:
    """The stand-in's Flask app."""
    app = Flask("graphstub")

    @app.get("/<version>/<object_id>")
    def get_object(version: str, object_id: str) -> Response:
        scripted = _before(stub)
        if scripted is not None:
            return scripted
        with stub.lock:
            lead = stub.leads.get(object_id)
        if lead is None:
            error = {"message": "Unsupported get request. Object does not exist.", "type": "GraphMethodException"}
            return _json(400, {"error": {**error, "code": 100, "error_subcode": 33, "fbtrace_id": "XyZ"}})
        return _json(200, _public(lead))

    @app.get("/<version>/<form_id>/leads")
    def list_leads(version: str, form_id: str) -> Response:
        scripted = _before(stub)
        if scripted is not None:
            return scripted
        since, before = _created_between(request.args.get("filtering"))
        with stub.lock:
            found = [
                lead for lead in stub.leads.values() if lead["form_id"] == form_id and since < lead["_created"] < before
            ]
        found.sort(key=lambda lead: lead["_created"], reverse=True)  # Graph lists newest first
        limit = int(request.args.get("limit", DEFAULT_PAGE_SIZE))
        start = int(request.args.get("after", "0"))
        page = found[start : start + limit]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + limit < len(found):
            paging["next"] = f"{request.base_url}?after={start + limit}&access_token=never-follow-this"
        return _json(200, {"data": [_public(lead) for lead in page], "paging": paging})

    return app


def _before(stub: GraphStub) -> Response | None:
    """Record the request; answer a token refusal or the next scripted fault, if any."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented or request.args.get("access_token", "")
    token_ok = hmac.compare_digest(presented.encode(), stub.token.encode())
    if token_ok and stub.app_secret is not None:
        proof = hmac.new(stub.app_secret.encode(), stub.token.encode(), hashlib.sha256).hexdigest()
        token_ok = hmac.compare_digest(request.args.get("appsecret_proof", "").encode(), proof.encode())
    query = {k: v for k, v in request.args.items() if k != "access_token"}
    with stub.lock:
        stub.requests.append(SeenRequest(request.path, query, token_ok, scheme))
        answer = stub.refused_token or (stub.script.pop(0) if stub.script else None)
        stall_seconds = stub.stall_seconds
    if stall_seconds:
        stub.released.wait(stall_seconds)
    if answer is None and not token_ok:
        error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
        return _json(400, {"error": error})
    if answer is None:
        return None
    if answer.stall_seconds:
        stub.released.wait(answer.stall_seconds)
    if answer.text is not None:
        return Response(answer.text, status=answer.status, mimetype="text/html", headers=answer.headers)
    return _json(answer.status, answer.body, answer.headers)


def _created_between(filtering: str | None) -> tuple[float, float]:
    """The times a listing's leads were created after and before, as its `filtering` on time_created says."""
    since, before = float("-inf"), float("inf")
    for rule in json.loads(filtering or "[]"):
        if rule.get("field") == "time_created" and rule.get("operator") == "GREATER_THAN":
            since = float(rule["value"])
        elif rule.get("field") == "time_created" and rule.get("operator") == "LESS_THAN":
            before = float(rule["value"])
    return since, before


def _public(lead: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in lead.items() if not k.startswith("_")}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@contextmanager
def serve_graph(stub: GraphStub) -> Iterator[str]:
    """Serve the stand-in on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, create_graph_app(stub), threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="graph-stub", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stub.released.set()  # stalled answers end now, so shutting down is quick
        server.shutdown()
        server.server_close()
        thread.join(5)
