"""Reading intake request bodies: size, media type and JSON shape, each refusal in SPEC's error shape."""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# No lead needs more than a few levels (a lead, its customFields, a list value); deeper bodies are
# refused before they reach code that walks them.
MAX_JSON_DEPTH = 16


def limit_body(request: Request, max_bytes: int) -> None:
    """Refuse a body over `max_bytes` now if its length is declared, else while it is read."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLargeError(f"the body may be at most {max_bytes} bytes")
    request.max_content_length = max_bytes


def form_fields(request: Request) -> dict[str, Any]:
    """The fields of a urlencoded, multipart (file parts ignored) or JSON body; a repeated name gives a list.

    Raises `UnsupportedMediaTypeError` for other media types (text/plain forms are ambiguous),
    `BadRequestError` for JSON that is not an object, `PayloadTooLargeError` past the body limit.
    """
    try:
        if request.mimetype in FORM_MIMETYPES:
            # A multipart part without a name (a hand-made body) has nowhere to go: it is left out.
            lists = request.form.lists()
            return {name: values[0] if len(values) == 1 else values for name, values in lists if name}
        if request.is_json:
            return json_object(request)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLargeError("the body is too large") from exc
    expected = "expected application/x-www-form-urlencoded, multipart/form-data or application/json"
    raise UnsupportedMediaTypeError(expected, {"Content-Type": [expected]})


def json_object(request: Request, *, force: bool = False) -> dict[str, Any]:
    """The body as a JSON object (`force`: whatever its Content-Type); raises `BadRequestError` otherwise."""
    try:
        body = request.get_json(force=force, silent=True)
    except RecursionError as exc:
        raise BadRequestError(f"expected a JSON object nested at most {MAX_JSON_DEPTH} levels") from exc
    except RequestEntityTooLarge as exc:
        raise PayloadTooLargeError("the body is too large") from exc
    if not isinstance(body, dict):
        raise BadRequestError("expected a JSON object")
    if _may_nest_deeper(request.get_data(), MAX_JSON_DEPTH) and _depth_exceeds(body, MAX_JSON_DEPTH):
        raise BadRequestError(f"expected a JSON object nested at most {MAX_JSON_DEPTH} levels")
    return body


def _may_nest_deeper(raw: bytes, limit: int) -> bool:
    """False when the text holds too few brackets to open more than `limit` containers (most bodies):
    each level opens with "{" or "[", and brackets inside strings only make the count larger."""
    return raw.count(b"{") + raw.count(b"[") > limit


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
