"""`/openapi.json` and `/docs`: the API description and a readable page rendered from it (no CDN, no JS)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, make_response, render_template
from markupsafe import Markup, escape

from app.openapi import REQUEST_ID_HEADER, build_spec

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
        {
            "method": method.upper(),
            "path": path,
            **operation,
            "bodies": _bodies(operation),
            "answers": _answers(operation),
        }
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]
    response = make_response(render_template("docs.html", spec=spec, operations=operations))
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response


_CODE_SPAN = re.compile(r"`([^`]+)`")


@bp.app_template_filter("code_spans")
def code_spans(text: str | None) -> Markup:
    """A description's `code` spans (Markdown backticks) as <code>, the rest escaped."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text or ""))))


def _schema_names(schema: Any) -> list[str]:
    """The component schemas a body's schema names: itself, or each of its anyOf/oneOf choices."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        return [str(schema["$ref"]).rsplit("/", 1)[-1]]
    return [name for key in ("anyOf", "oneOf") for choice in schema.get(key, []) for name in _schema_names(choice)]


def _bodies(operation: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(media type, schema names) of each body an operation takes."""
    content = (operation.get("requestBody") or {}).get("content", {})
    return [(media, _schema_names(body.get("schema"))) for media, body in content.items()]


def _answers(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Each answer of an operation: its status, description, body schemas and headers (but X-Request-ID, which
    every answer carries and the page says once)."""
    return [
        {
            "status": status,
            "description": answer.get("description", ""),
            "schemas": [
                name for body in answer.get("content", {}).values() for name in _schema_names(body.get("schema"))
            ],
            "headers": [name for name in answer.get("headers", {}) if name not in REQUEST_ID_HEADER],
        }
        for status, answer in operation.get("responses", {}).items()
    ]
