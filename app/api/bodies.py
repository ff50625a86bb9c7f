"""Reading intake request bodies: size, media type and JSON shape, each refusal in SPEC's error shape.

Form bodies, and the encodings they come in, are read in `app.api.formbodies`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import ApiError, BadRequestError, UnsupportedMediaTypeError, too_large
from app.metrics import record_intake

# No lead needs more than a few levels (a lead, its customFields, a list value); deeper bodies are
# refused before they reach code that walks them.
MAX_JSON_DEPTH = 16


@contextmanager
def counted_if_refused(source: str) -> Iterator[None]:
    """A request refused whole (an `ApiError`) while its body is read, before any lead is, counts as one `invalid`
    submission of `source`: a sender whose every request is refused shows on /metrics."""
    try:
        yield
    except ApiError:
        record_intake(source, "invalid")
        raise


def limit_body(request: Request, max_bytes: int | None = None) -> None:
    """Refuse a body over `max_bytes` (default: the app's MAX_CONTENT_LENGTH) with `PayloadTooLargeError`.

    A declared length is checked at once. A body sent without one (chunked) is read now, at most one byte
    past the limit: werkzeug stops reading such a body at the limit without a word, which would hand the
    view its first `max_bytes` bytes as if they were all of it (a lead with its last fields cut off).
    """
    refuse_content_coding(request)
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


def refuse_content_coding(request: Request) -> None:
    """Raise `UnsupportedMediaTypeError` for a body sent in a content coding (gzip, br, ...): bodies are read as
    sent, and a compressed one read so would be refused for what it is not (JSON that is not UTF-8, a form
    without a phone), pointing its sender away from the cause (RFC 9110: 415 for an unsupported coding)."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding in ("", "identity"):
        return
    # Said by where the coding was and what is expected, never the value sent (a header is the sender's to fill).
    expected = "expected none: the body uncompressed, as the relay reads no content coding"
    message = "Content-Encoding: expected none, the body uncompressed"
    raise UnsupportedMediaTypeError(message, {"Content-Encoding": [expected]})


def json_object(request: Request, *, force: bool = False, names_once: bool = True) -> dict[str, Any]:
    """The body as a JSON object (`json_body`); with `names_once`, one whose object gives a name twice is refused
    (`BadRequestError` naming it)."""
    body = json_body(request, force=force)
    if names_once and (name := body.repeated_names().own) is not None:
        raise refuse_repeated_name(name)
    return body.fields


def json_body(request: Request, *, force: bool = False) -> JsonBody:
    """The body as a JSON object (`force`: whatever its Content-Type; without one, it is read as JSON too), parsed
    once, with the names its objects give twice. Raises `UnsupportedMediaTypeError` when it is declared as another
    media type, `BadRequestError` when it is no JSON object, `PayloadTooLargeError` past the request's body limit
    (however the body was sent)."""
    limit_body(request)  # the limit a view set, else the app's
    # A body sent without a Content-Type is read as JSON; one declared as something else is refused (415).
    if not (force or not request.mimetype or request.is_json):
        expected = "expected application/json"
        raise UnsupportedMediaTypeError(f"Content-Type: {expected}", {"Content-Type": [expected]})  # never the value
    repeats: list[tuple[dict[str, Any], str]] = []

    def unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) < len(pairs):  # rare: only then are the names looked at one by one
            repeats.append((found, _first_repeated(pairs)))
        return found

    try:
        body = json.loads(request.get_data(cache=True), object_pairs_hook=unique_names)
    except RecursionError as exc:
        raise body_refused(f"expected a JSON object nested at most {MAX_JSON_DEPTH} levels") from exc
    except RequestEntityTooLarge as exc:
        raise too_large(request) from exc
    except ValueError:  # not JSON, or not UTF-8/16/32 text: said below
        body = None
    if body is None and request.get_data().strip() not in (b"", b"null"):
        raise body_refused(f"expected a JSON object; {_parse_problem(request.get_data())}")
    if not isinstance(body, dict):
        raise body_refused("expected a JSON object")
    if _may_nest_deeper(request.get_data(), MAX_JSON_DEPTH) and _depth_exceeds(body, MAX_JSON_DEPTH):
        raise body_refused(f"expected a JSON object nested at most {MAX_JSON_DEPTH} levels")
    return JsonBody(body, tuple(repeats))


NAME_ONCE_EXPECTED = "expected once in its object, not given twice"


@dataclass(frozen=True)
class RepeatedNames:
    """Where a JSON body gives a name twice in one object: the first such name outside its items (`own`, None for
    none), and the first within each item of its list of items that gives one, by index."""

    own: str | None = None
    in_items: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JsonBody:
    """A request's JSON object (`fields`) and the objects in it that give a name twice, each with the first such
    name (`repeats`). Parsers disagree on which copy counts (Python's keeps the last, others the first), so such an
    object says two things at once."""

    fields: dict[str, Any]
    repeats: tuple[tuple[dict[str, Any], str], ...] = ()

    def repeated_names(self, items: str | None = None) -> RepeatedNames:
        """The names given twice; with `items`, those within each element of the body's list of that name are told
        apart by index (a bulk's items, each refused alone)."""
        if not self.repeats:
            return RepeatedNames()
        listed = self.fields.get(items) if items else None
        in_items: dict[int, str] = {}
        within_items: set[int] = set()
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            objects = {id(found) for found in _objects_in(item)}
            within_items |= objects
            named = [name for found, name in self.repeats if id(found) in objects]
            if named:
                in_items[index] = named[0]
        own = next((name for found, name in self.repeats if id(found) not in within_items), None)
        return RepeatedNames(own, in_items)


def refuse_repeated_name(name: str) -> BadRequestError:
    """The refusal of a body that gives `name` twice in one of its objects, naming it."""
    name = name[:40]
    return BadRequestError(f"{name}: {NAME_ONCE_EXPECTED}", {name: [NAME_ONCE_EXPECTED]})


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return name
        seen.add(name)
    return ""  # not reached: the caller saw fewer names than pairs


def _objects_in(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in `value`, itself included (nesting is bounded by MAX_JSON_DEPTH)."""
    if isinstance(value, dict):
        return [value, *(found for inner in value.values() for found in _objects_in(inner))]
    if isinstance(value, list):
        return [found for inner in value for found in _objects_in(inner)]
    return []


def body_refused(expected: str) -> BadRequestError:
    """The refusal of a body as a whole, naming `body` in `fields` as a field's refusal names the field."""
    return BadRequestError(expected, {"body": [expected]})


def _parse_problem(raw: bytes) -> str:
    """Why a body does not parse as JSON, by its position, never by its content (it holds personal data)."""
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    except UnicodeDecodeError:
        return "the body is not valid JSON: expected UTF-8 text"
    except ValueError:  # Python reads no integer of more than 4300 digits
        return "the body holds a number with more digits than any lead needs"
    return "the body is not valid JSON"


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
