"""The sandbox's Flask app: careCycle's upload endpoint plus the `/_sandbox/` control endpoints."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import HTTPException

from app.sandbox.faults import AUTH_FAULT_STATUSES, error_body
from app.sandbox.state import Sandbox

UPLOAD_PATH = "/v2/leads/upload"
EXTENSION_NAME = "carecycle_sandbox"


class FailNextSchema(Schema):
    """`fail_next` in `POST /_sandbox/faults`: queue `times` answers with `status`."""

    status = fields.Integer(required=True, strict=True, validate=validate.Range(400, 599))
    times = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10_000))
    retry_after = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(0))


class FaultsSchema(Schema):
    """Body of `POST /_sandbox/faults`: any subset of the switches."""

    error_rate = fields.Float(validate=validate.Range(0, 1))
    timeout_rate = fields.Float(validate=validate.Range(0, 1))
    stall_seconds = fields.Float(validate=validate.Range(0))
    auth_mode = fields.Integer(allow_none=True, strict=True, validate=validate.OneOf(AUTH_FAULT_STATUSES))
    down = fields.Boolean()
    rate_limit_per_min = fields.Integer(strict=True, validate=validate.Range(1))
    reject_phones = fields.List(fields.String())
    invalid_phones = fields.List(fields.String())
    choke_phones = fields.List(fields.String())
    fail_next = fields.Nested(FailNextSchema)


def create_sandbox_app(sandbox: Sandbox) -> Flask:
    """Build the sandbox's Flask app around `sandbox` (also at `app.extensions["carecycle_sandbox"]`)."""
    app = Flask(__name__)
    app.extensions[EXTENSION_NAME] = sandbox

    @app.post(UPLOAD_PATH)
    def upload() -> Response:
        answer = sandbox.handle_upload(
            request.headers.get("x-api-key"), request.get_data(cache=False), declared_json=request.is_json
        )
        return _json(answer.body, answer.status, answer.headers)

    @app.get("/_sandbox/stats")
    def stats() -> Response:
        return _json(sandbox.stats())

    @app.post("/_sandbox/faults")
    def set_faults() -> Response:
        try:
            changes: dict[str, Any] = FaultsSchema().load(request.get_json(force=True, silent=True) or {})
        except ValidationError as error:
            return _json({**error_body(400), "errors": error.messages}, 400)
        fail_next = changes.pop("fail_next", None)
        faults = sandbox.set_faults(**changes)
        if fail_next is not None:
            sandbox.fail_next(**fail_next)
        return _json({"faults": faults.as_dict(), "scripted": len(sandbox.scripted)})

    @app.post("/_sandbox/reset")
    def reset() -> Response:
        sandbox.reset()
        return _json({"reset": True})

    @app.get("/_sandbox/records")
    def records() -> Response:
        external_id = request.args.get("externalId")
        return _json({"externalId": external_id, "records": sandbox.log.records_for(external_id)})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        return _json(error_body(status), status)

    return app


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response
