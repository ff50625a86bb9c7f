"""Reading intake request bodies: size, media type and JSON shape, each refusal in SPEC's error shape."""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, too_large

URLENCODED = "application/x-www-form-urlencoded"

FORM_MIMETYPES = (URLENCODED, "multipart/form-data")
# No lead needs more than a few levels (a lead, its customFields, a list value); deeper bodies are
# refused before they reach code that walks them.
MAX_JSON_DEPTH = 16


def limit_body(request: Request, max_bytes: int | None = None) -> None:
    """Refuse a body over `max_bytes` (default: the app's MAX_CONTENT_LENGTH) with `PayloadTooLargeError`.

    A declared length is checked at once. A body sent without one (chunked) is read now, at most one byte
    past the limit: werkzeug stops reading such a body at the limit without a word, which would hand the
    view its first `max_bytes` bytes as if they were all of it (a lead with its last fields cut off).
    """
    limit = request.max_content_length if max_bytes is None else max_bytes
    request.max_content_length = limit
    if limit is None:
        return
    if request.content_length is not None:
        if request.content_length > limit:
            raise too_large(request)
        return
    request.max_content_length = limit + 1
    try:
        body = request.get_data(cache=True)  # cached: the view reads these bytes again, not the stream
    finally:
        request.max_content_length = limit
    if len(body) > limit:
        raise too_large(request)


def form_fields(request: Request) -> dict[str, Any]:
    """The fields of a urlencoded, multipart (file parts ignored) or JSON body.

    A name given more than once (a page with a desktop and a mobile copy of an input) keeps its filled
    values: one gives a string, several a list. Raises `UnsupportedMediaTypeError` for other media types
    (text/plain forms are ambiguous), `BadRequestError` for JSON that is not an object,
    `PayloadTooLargeError` past the body limit.
    """
    try:
        if request.mimetype == URLENCODED:
            return _by_name(_urlencoded_pairs(request))
        if request.mimetype in FORM_MIMETYPES:
            # A multipart part without a name (a hand-made body) has nowhere to go: it is left out.
            return _by_name((name, value) for name, values in request.form.lists() for value in values)
        if request.is_json:
            return json_object(request)
    except RequestEntityTooLarge as exc:
        raise too_large(request) from exc
    expected = "expected application/x-www-form-urlencoded, multipart/form-data or application/json"
    raise UnsupportedMediaTypeError(expected, {"Content-Type": [expected]})


def _urlencoded_pairs(request: Request) -> list[tuple[str, str]]:
    """A urlencoded body's pairs, in its declared charset (UTF-8 by default). A byte that is not text in that
    charset (a page sending Latin-1 unannounced) becomes U+FFFD rather than costing the whole form."""
    charset = _form_charset(request.mimetype_params.get("charset", "utf-8"))
    text = request.get_data(cache=True).decode(charset, errors="replace")
    try:
        return parse_qsl(
            text, keep_blank_values=True, encoding=charset, errors="replace", max_num_fields=request.max_form_parts
        )
    except ValueError:
        raise PayloadTooLargeError(f"the body may hold at most {request.max_form_parts} form fields") from None


# Charsets a web page may post a form in (the WHATWG encodings that are plain byte-to-text codecs).
_FORM_CHARSETS = frozenset(
    ["utf-8", "ascii", "cp866", "cp874", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic"]
    + ["shift_jis", "euc_jp", "iso2022_jp", "gbk", "gb2312", "gb18030", "big5", "euc_kr"]
    + [f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)]
    + [f"cp{n}" for n in range(1250, 1259)]
)


def _form_charset(declared: str) -> str:
    """The codec of a form's declared charset; `UnsupportedMediaTypeError` for one that is not a text charset."""
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        name = ""
    if name not in _FORM_CHARSETS:
        expected = "expected a text charset such as utf-8 or iso-8859-1"
        raise UnsupportedMediaTypeError(f"unsupported charset {declared[:40]!r}", {"Content-Type": [expected]})
    return name


def _by_name(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    values_by_name: dict[str, list[Any]] = {}
    for name, value in pairs:
        if name:
            values_by_name.setdefault(name, []).append(value)
    fields: dict[str, Any] = {}
    for name, values in values_by_name.items():
        filled = [value for value in values if not isinstance(value, str) or value.strip()] or values[:1]
        fields[name] = filled[0] if len(filled) == 1 else filled
    return fields


def json_object(request: Request, *, force: bool = False) -> dict[str, Any]:
    """The body as a JSON object (`force`: whatever its Content-Type; without one, it is read as JSON too).
    Raises `UnsupportedMediaTypeError` when it is declared as another media type, `BadRequestError` when it
    is no JSON object, `PayloadTooLargeError` past the request's body limit (however the body was sent)."""
    limit_body(request)  # the limit a view set, else the app's
    try:
        # A body sent without a Content-Type is read as JSON; one declared as something else is refused (415).
        body = request.get_json(force=force or not request.mimetype, silent=True)
    except RecursionError as exc:
        raise BadRequestError(f"expected a JSON object nested at most {MAX_JSON_DEPTH} levels") from exc
    except RequestEntityTooLarge as exc:
        raise too_large(request) from exc
    if body is None and not force and request.mimetype and not request.is_json:
        expected = "expected application/json"
        raise UnsupportedMediaTypeError(f"{expected}, not {request.mimetype[:80]}", {"Content-Type": [expected]})
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
