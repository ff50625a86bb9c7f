"""`/openapi.json` and `/docs`: the API description and a readable page rendered from it (no CDN, no JS)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, make_response, render_template

from app.openapi import build_spec

bp = Blueprint("docs", __name__)

_SPEC_EXTENSION = "leadrelay.openapi"


def _spec() -> dict[str, Any]:
    cached: dict[str, Any] | None = current_app.extensions.get(_SPEC_EXTENSION)
    if cached is None:
        cached = build_spec(current_app._get_current_object())  # type: ignore[attr-defined]
        current_app.extensions[_SPEC_EXTENSION] = cached
    return cached


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 description of every endpoint.
    ---
    get:
      summary: OpenAPI description
      tags: [docs]
      responses:
        200:
          description: The OpenAPI 3 document.
          content:
            application/json:
              schema: {type: object}
    """
    return jsonify(_spec())


# The page is text and one inline style sheet: it runs nothing, loads nothing and is framed by no one.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@bp.get("/docs")
def docs() -> Response:
    """Human-readable API documentation, rendered from the OpenAPI document.
    ---
    get:
      summary: API documentation page
      tags: [docs]
      responses:
        200:
          description: An HTML page.
          content:
            text/html:
              schema: {type: string}
    """
    spec = _spec()
    operations = [
        {"method": method.upper(), "path": path, **operation}
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]
    response = make_response(render_template("docs.html", spec=spec, operations=operations))
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response
