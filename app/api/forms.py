"""`/v1/forms/<slug>`: public landing-page form posts (urlencoded, multipart or JSON), with CORS per source.

Answers: 202 JSON `{"id", "status", "statusUrl", "warnings"}`; or, for a native form post, 303 to an
allow-listed `_redirect` or the source's thank-you page (Post/Redirect/Get). A post that fails validation
is answered 422 naming the fields even when the source has a thank-you page: the lead was not taken,
so sending the person to "thank you" would be a lie; landing pages should validate in the browser first
(`required`, `type=tel`, `pattern`) so a person rarely meets this answer. Every refusal is JSON, but for a
native post (a browser's navigation), which gets a page in words instead (`app.api.visitorpages`).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue

from app.api.bodies import counted_if_refused, limit_body
from app.api.formbodies import read_form_body
from app.api.leads import accepted_body
from app.api.visitorpages import as_visitor_page, is_navigation
from app.errors import InvalidInputError
from app.forms import FormDesk, FormPost, cors_headers, ip_without_port, preflight_headers, submit_form
from app.intake import InvalidLead
from app.logs import add_log_ids
from app.models import LeadStatus
from app.services import services
from app.sources import SourceKind, UnknownSourceError

bp = Blueprint("forms", __name__, url_prefix="/v1/forms")

# A form post is a few hundred bytes; 64 KiB leaves room for long consent texts and multipart overhead.
FORM_MAX_BODY_BYTES = 64 * 1024
SCRIPT_FETCH_MODES = frozenset({"cors", "no-cors", "same-origin"})


@bp.post("/<slug>", provide_automatic_options=False)
def submit(slug: str) -> ResponseReturnValue:
    """Accept one landing-page form post (public: origin allow-list, honeypot, per-IP rate limit).
    ---
    post:
      summary: Submit a landing-page form
      tags: [intake]
      description: >
        Field names in careCycle spelling or common aliases; unmapped fields (UTM parameters, click ids)
        become customFields. `_redirect` names an allow-listed thank-you page (one not on the list is never followed:
        the source's thank-you page is taken instead, with a warning kept on the lead). Consent and provenance inputs:
        `tcpa_consent_text`/`consent_text` (or the text's id, `tcpa_consent_id`/`consent_text_id`), `consent`,
        `page_url` (else the Referer header), `xxTrustedFormCertUrl`, `universal_leadid`; a consent text over 5,000
        characters (an id over 255) is cut to them with a warning, and the consent is still recorded;
        a repeated `consent` (or yes/no field, such as `doNotSMS`) is ticked when any of its values is, and on a
        source with `consent_checkbox` a post without `consent` records no consent.
        A native form post is answered 303 to the thank-you page; script posts get 202 JSON. Invalid posts
        get 422 even when the source has a thank-you page. Refusals are JSON in the error shape, but for a
        browser's native post (`Sec-Fetch-Mode: navigate`, or without that header an Accept preferring text/html
        to JSON): it gets the same status with a short text/html page for the person, naming the fields to fix
        and what each expects, never a posted value. A urlencoded or multipart body is read in the
        charset its Content-Type names, else in the one a `_charset_` input names (415 for one that is no web
        text charset), else as UTF-8, or, when it is not UTF-8, as windows-1252 with a warning.
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema: {type: object, additionalProperties: {type: string}}
          multipart/form-data:
            schema: {type: object, additionalProperties: {type: string}}
          application/json:
            schema: {type: object, additionalProperties: true}
      responses:
        202:
          description: >
            The lead is held. Every answer to a post from an allowed origin carries Access-Control-Allow-Origin
            (and exposes Retry-After and X-Request-ID to the page's script), errors included.
          headers:
            Access-Control-Allow-Origin: {description: "The post's Origin, if allowed.", schema: {type: string}}
            Access-Control-Expose-Headers: {description: "Retry-After, X-Request-ID", schema: {type: string}}
          content:
            application/json:
              schema: LeadAcceptedSchema
        303:
          description: Native form post accepted; the browser is sent to the allow-listed thank-you page.
          headers:
            Location: {description: The thank-you page., schema: {type: string}}
          content:
            text/html:
              schema: {type: string}
        400:
          description: >
            A multipart body that cannot be read (cut off, without parts, or without a boundary in its
            Content-Type), or a JSON body that is no object or gives a name twice in one object.
        403:
          description: >
            The post's Origin is not among the source's allowed origins (or is `null`, from a page whose
            Referrer-Policy is no-referrer, on a source without accept_null_origin).
        404:
          description: No form source has that slug (`fields` names `slug`).
        413:
          description: The body is over 64 KiB (declared or sent chunked); it is refused, never cut to fit.
        415:
          description: >
            The body is not urlencoded, multipart or JSON, or names a charset that is no web text encoding, or is
            sent in a content coding (a `Content-Encoding` such as gzip: send it uncompressed).
        422:
          description: The post is not valid (even when the source has a thank-you page); `fields` names each field.
        429:
          description: Too many posts from this client, or to this source, in the last minute.
          headers:
            Retry-After: {description: Seconds until the limit resets., schema: {type: integer}}
        503:
          description: The relay's store (Redis) is unreachable; retry shortly.
    """
    svc = services()
    source = svc.sources.by_slug(slug, SourceKind.FORM)
    add_log_ids(source=source.slug)
    with counted_if_refused(source.slug):
        limit_body(request, FORM_MAX_BODY_BYTES)
        body = read_form_body(request)
    post = FormPost(
        fields=body.fields,
        origin=request.headers.get("Origin"),
        referer=request.headers.get("Referer"),
        client_ip=ip_without_port(request.remote_addr),
        wants_json=_wants_json(),
        warnings=body.warnings,
    )
    result = submit_form(FormDesk(svc.intake, svc.clock), source, post)
    if isinstance(result, InvalidLead):
        raise InvalidInputError("the form is not valid", result.fields)
    if result.redirect_to:
        return redirect(result.redirect_to, code=303)
    return jsonify(accepted_body(result.id, LeadStatus.QUEUED, result.warnings)), 202  # see FormReceipt


@bp.route("/<slug>", methods=["OPTIONS"])
def preflight(slug: str) -> Response:
    """Answer a CORS preflight: granted to the source's allowed origins only.
    ---
    options:
      summary: CORS preflight of a form post
      tags: [intake]
      responses:
        204:
          description: Allowed origin (or no Origin at all); the Access-Control-* headers grant POST.
          headers:
            Access-Control-Allow-Origin: {description: The request's Origin., schema: {type: string}}
            Access-Control-Allow-Methods: {description: "POST, OPTIONS", schema: {type: string}}
            Access-Control-Allow-Headers: {description: Content-Type, schema: {type: string}}
            Access-Control-Max-Age: {description: "Seconds a browser keeps it (600).", schema: {type: integer}}
            Access-Control-Expose-Headers: {description: "Retry-After, X-Request-ID", schema: {type: string}}
            Allow: {description: "POST, OPTIONS: the answer to an OPTIONS without Origin.", schema: {type: string}}
        403:
          description: The Origin is not among the source's allowed origins.
        404:
          description: No form source has that slug (`fields` names `slug`).
    """
    source = services().sources.by_slug(slug, SourceKind.FORM)
    return Response(status=204, headers=preflight_headers(source, request.headers.get("Origin")))


@bp.after_request
def add_cors_headers(response: Response) -> Response:
    """Let scripts on allowed origins read every answer of this endpoint, errors included."""
    response.vary.add("Origin")
    slug = (request.view_args or {}).get("slug")
    try:
        source = services().sources.by_slug(str(slug), SourceKind.FORM)
    except UnknownSourceError:
        return response
    response.headers.update(cors_headers(source, request.headers.get("Origin")))
    return response


@bp.after_request
def show_refusals_to_visitors(response: Response) -> Response:
    """A refused native form post shows the person a page in words, not the JSON error."""
    if response.status_code >= 400 and response.is_json and is_navigation(request):
        return as_visitor_page(response)
    return response


def _wants_json() -> bool:
    """True for script posts (JSON, or fetch/XHR by their Sec-Fetch-Mode) and clients that prefer JSON."""
    if request.is_json or request.headers.get("Sec-Fetch-Mode", "") in SCRIPT_FETCH_MODES:
        return True
    accept = request.accept_mimetypes
    return accept.quality("application/json") > accept.quality("text/html")
