"""What a visitor's browser shows when a native form post is refused: a short page in words, not the JSON error.

A native form post is a navigation: the answer is the page the person sees. Scripts (fetch, XHR) and API clients
keep the JSON error shape; only a request that is a navigation, or that prefers HTML outright, gets the page.
The page names the fields to fix and what each expects, never a value that was posted.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Request, Response, g, render_template

# What each refusal tells the person: a heading, and what they can do about it ({seconds}: Retry-After).
_ADVICE: dict[int, tuple[str, str]] = {
    400: ("Your answers could not be read", "Please send the form again; if this keeps happening, tell the site."),
    403: ("This form cannot be sent from this page", "Please tell the site's owner that its form is refused."),
    404: ("This form is not available", "Please tell the site's owner that its form is not found."),
    413: ("Your answers are too long to send", "Please shorten them and send the form again."),
    415: ("Your answers could not be read", "Please send the form again; if this keeps happening, tell the site."),
    422: ("Please check your answers", "Some answers need a fix before the form can be sent:"),
    429: ("Too many forms sent", "Please wait {seconds} seconds, then send the form again."),
    503: ("We could not take your details just now", "Please wait {seconds} seconds, then send the form again."),
}
_OTHER = ("Something went wrong", "Please send the form again later.")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


def is_navigation(request: Request) -> bool:
    """True for a browser's native form post (a navigation), or a client that prefers HTML to JSON outright."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    accept = request.accept_mimetypes
    return not request.is_json and accept.quality("text/html") > accept.quality("application/json")


def as_visitor_page(response: Response) -> Response:
    """The JSON error `response` rewritten in place as a page for a person (same status and headers)."""
    error = (response.get_json(silent=True) or {}).get("error") or {}
    heading, advice = _ADVICE.get(response.status_code, _OTHER)
    page = render_template(
        "form_error.html",
        heading=heading,
        advice=advice.format(seconds=response.headers.get("Retry-After", "a few")),
        # A 404 names the form's slug: the site's to fix, not the person's, who reads that the form is not available.
        fields=[] if response.status_code == 404 else _field_lines(error.get("fields")),
        request_id=g.get("request_id", ""),
        status=f"{response.status_code}: {error.get('message', '')}",
    )
    response.set_data(page)
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _field_lines(fields: Any) -> list[tuple[str, str]]:
    """(label, what was expected) per refused field: `phoneNumber` reads "Phone number"."""
    if not isinstance(fields, dict):
        return []
    lines = []
    for name, messages in fields.items():
        if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            lines.append((_label(str(name)), "; ".join(messages)))
    return lines


def _label(name: str) -> str:
    words = _WORD_START.sub(" ", name).replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower() if words else name
