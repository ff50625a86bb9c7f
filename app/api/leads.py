"""`/v1/leads`: API intake (one lead or a bulk of up to 200), a lead's status, the lead list and retries."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request
from werkzeug.sansio.utils import get_current_url

from app.api.auth import SOURCE_KEY_EXPECTED, match_secret, presented_credential
from app.api.bodies import NAME_ONCE_EXPECTED, counted_if_refused, json_body, json_object, refuse_repeated_name
from app.api.ops import operator, query_args, require_ops_token
from app.errors import BadRequestError, InvalidInputError
from app.intake import IDEMPOTENCY_KEY_FIELD, MAX_BULK_LEADS, AcceptedLead, Admission, InvalidLead
from app.logs import add_log_ids, note_lead_ids
from app.models import LeadStatus
from app.schemas.ops import LeadListArgs, LeadListArgsSchema, RetryFilterSchema, lead_page_body, requeued_body
from app.schemas.status import lead_status
from app.services import services
from app.store.index import Selection

bp = Blueprint("leads", __name__, url_prefix="/v1/leads")

IDEMPOTENCY_HEADER = IDEMPOTENCY_KEY_FIELD
MAX_IDEMPOTENCY_KEY_CHARS = 200


@bp.post("")
def submit_leads() -> tuple[Response, int]:
    """Accept one lead, or `{"leads": [...]}` with up to 200.
    ---
    post:
      summary: Submit leads (API intake)
      description: >
        One lead, or `{"leads": [...]}` with up to 200. Fields in careCycle spelling or common aliases (`phone`,
        `first_name`, `zip`, `full_name`, `dob`, ...); unmapped fields become customFields. A bad required value (the
        phone; or a location: no valid ZIP, no timezone, and a phone whose area code gives no single timezone) refuses
        the lead with 422 naming the field; a bad optional value is dropped and reported in `warnings`. In a bulk
        request (a body whose `leads` is a list, and which holds nothing else) invalid items are reported by index and
        the rest accepted. A repeated `Idempotency-Key` (up to 200 printable characters; an empty one counts as none)
        returns the original lead, never a second one; sent with another body, the original lead is answered with a
        warning naming `Idempotency-Key` (that body was not taken: a key names one lead). In a bulk request each
        item is keyed by its position. The body is JSON: one sent without a Content-Type is read as JSON, one
        declared as another media type is refused with 415.
      tags: [intake]
      security: [{sourceKey: []}, {bearer: []}]
      parameters:
        - in: header
          name: Idempotency-Key
          required: false
          description: >
            Names the lead (a bulk's items by position): sent again, the original lead is answered; with another
            body, with a warning that this body was not taken. Remembered for a week, or the retention if shorter.
          schema: {type: string, maxLength: 200}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              anyOf:
                - $ref: '#/components/schemas/LeadSubmission'
                - $ref: '#/components/schemas/BulkSubmission'
      responses:
        202:
          description: Accepted (one lead), or a result per item (bulk).
          content:
            application/json:
              schema:
                oneOf:
                  - $ref: '#/components/schemas/LeadAccepted'
                  - $ref: '#/components/schemas/BulkAccepted'
        400:
          description: >
            The body is no JSON object (or nests deeper than 16 levels, or gives a name twice in one object: `fields`
            names it; a bulk item that does is refused alone, at its index), or the Idempotency-Key is longer than
            200 characters or holds one that is not printable.
        413:
          description: The body is over 1 MiB (declared or sent chunked); it is refused, never cut to fit.
        415:
          description: >
            The body is declared as another media type than JSON, or is sent in a content coding (a
            `Content-Encoding` such as gzip: send it uncompressed); `fields` names the header.
        422:
          description: >
            The lead is not valid (`fields` names each field and what was expected); or a bulk body is not a
            non-empty list of at most 200 leads, or holds other fields beside `leads`.
        503:
          description: The relay's store (Redis) is unreachable; retry shortly (with the same Idempotency-Key).
    """
    svc = services()
    slug = match_secret(presented_credential(request), svc.sources.api_keys, SOURCE_KEY_EXPECTED)
    source = svc.sources.by_slug(slug)
    add_log_ids(source=source.slug)
    bulk, payloads, admission = _read_submissions(source.slug)
    results = svc.intake.accept(source, payloads, admission)
    if not bulk:
        result = results[0]
        if isinstance(result, InvalidLead):
            raise InvalidInputError("the lead is not valid", result.fields)
        return jsonify(accepted_body(result.id, result.status, result.warnings)), 202
    return jsonify({"results": [_result_body(i, r) for i, r in enumerate(results)]}), 202


@bp.get("/<lead_id>")
def get_lead(lead_id: str) -> Response:
    """A lead's status and recent events: masked phone and ids only.
    ---
    get:
      summary: One lead's status and event history
      tags: [status]
      security: [{bearer: []}, {opsToken: []}]
      responses:
        200:
          description: The lead (no personal data but the masked phone).
          content:
            application/json:
              schema: LeadStatusSchema
        404:
          description: No lead has that id.
    """
    require_ops_token()
    lead = services().store.leads.get(lead_id)
    note_lead_ids([lead.id])  # for the request's log line; an id that names no lead is never logged
    return jsonify(lead_status(lead))


@bp.get("")
def list_leads() -> Response:
    """Leads newest first, by status, source and receipt time; cursor-paginated (ops token).
    ---
    get:
      summary: List leads
      tags: [status]
      security: [{bearer: []}, {opsToken: []}]
      parameters:
        - in: query
          schema: LeadListArgsSchema
      responses:
        200:
          description: One page of leads (masked phone and ids only) and the cursor of the next page.
          content:
            application/json:
              schema: LeadPageSchema
        422:
          description: A query arg that is unknown, given twice, or not valid; `fields` names it and what was expected.
    """
    require_ops_token()
    args: LeadListArgs = LeadListArgsSchema().load(query_args())
    page = operator().list_leads(args.selection, args.after, args.limit)
    return jsonify(lead_page_body(page.leads, page.next))


@bp.post("/<lead_id>/retry")
def retry_lead(lead_id: str) -> Response:
    """Re-queue one `dead`, `rejected` or `duplicate` lead; audited under the token's name.

    A lead that normalization refused is first normalized again under its source's current settings; a Meta lead
    whose record was never retrieved is retrieved again (`fetching`). A `duplicate` is sent although its person came
    shortly before (the operator's decision: its event names the earlier lead, which may have been rejected or gone
    dead since). 409 for a lead in another status, or one whose kept submission still fails normalization (the
    reason is given).
    ---
    post:
      summary: Retry one lead
      description: >
        Re-queues a `dead`, `rejected` or `duplicate` lead. A `duplicate` is queued as well, past its source's
        duplicate window: its event names the earlier lead of the same phone, so an operator can first check that
        that lead never reached careCycle (rejected or dead). A lead that normalization refused is normalized again
        under its source's current settings first.
      tags: [ops]
      security: [{bearer: []}, {opsToken: []}]
      responses:
        200:
          description: The lead, queued again (a Meta lead never retrieved, fetching again).
          content:
            application/json:
              schema: LeadStatusSchema
        404:
          description: No lead has that id.
        409:
          description: >
            The lead is not `dead`, `rejected` or `duplicate`, or has no record left to send, or the submission kept
            of a lead normalization refused still fails it under its source's current settings; the message gives
            the reason.
    """
    actor = require_ops_token()
    lead = operator().retry_lead(lead_id, actor)
    note_lead_ids([lead.id])
    return jsonify(lead_status(lead))


@bp.post("/retry")
def retry_leads() -> Response:
    """Re-queue every `dead` or `rejected` lead matching a filter, saying how many and which were left, by why; audited
    under the token's name.
    ---
    post:
      summary: Retry leads by filter
      tags: [ops]
      security: [{bearer: []}, {opsToken: []}]
      requestBody:
        required: true
        content:
          application/json:
            schema: RetryFilterSchema
      responses:
        200:
          description: >
            How many leads were re-queued, and how many matching leads were left as they were, counted by why
            (a lead whose kept submission still fails normalization, or whose source is gone, say).
          content:
            application/json:
              schema: RequeuedSchema
        400:
          description: The body is no JSON object, or gives a name twice in one object.
        413:
          description: The body is over 1 MiB (declared or sent chunked).
        415:
          description: >
            The body is declared as another media type than JSON, or is sent in a content coding (a
            `Content-Encoding` such as gzip: send it uncompressed); `fields` names the header.
        422:
          description: >
            The filter is not valid (`status` must be dead or rejected); `fields` names each field and what was
            expected.
    """
    actor = require_ops_token()
    body = json_object(request)
    selection: Selection = RetryFilterSchema().load(body)
    result = operator().retry_matching(selection, actor)
    return jsonify(requeued_body(result.requeued, result.skipped_reasons))


def _read_submissions(source: str) -> tuple[bool, list[Any], Admission]:
    """Whether the body is a bulk, its leads, and how to admit them. A request refused whole before any lead is read
    (no JSON object, too large, another media type, a bad Idempotency-Key, a bulk of no leads or too many) is
    counted as one `invalid` submission of its source, as Google's deliveries refused so are."""
    with counted_if_refused(source):
        read = json_body(request)
        body = read.fields
        bulk = _is_bulk(body)
        repeats = read.repeated_names("leads" if bulk else None)
        if repeats.own is not None:
            raise refuse_repeated_name(repeats.own)
        payloads = _bulk_payloads(body) if bulk else [body]
        refused = {index: {name[:40]: [NAME_ONCE_EXPECTED]} for index, name in repeats.in_items.items()}
        admission = Admission(idempotency_key=_idempotency_key(), key_binds_body=True, refused_items=refused)
    return bulk, payloads, admission


def _is_bulk(body: dict[str, Any]) -> bool:
    """A bulk body has `leads` as a list (or as something no lead's field would hold: an object, null);
    a lead whose own unmapped field is named `leads` (a text or a number) is one lead."""
    return "leads" in body and (body["leads"] is None or isinstance(body["leads"], list | dict))


def _bulk_payloads(body: dict[str, Any]) -> list[Any]:
    """The items of a bulk body (`{"leads": [...]}` and nothing else); an item that is no object is refused
    by intake at its index."""
    items, others = body["leads"], sorted(name for name in body if name != "leads")
    if others:
        stray = ", ".join(name[:40] for name in others[:5])
        expected = f"expected `leads` alone: a bulk body holds no other fields (found {stray})"
        raise InvalidInputError("the request is not valid", {"leads": [expected]})
    if not isinstance(items, list) or not items:
        raise InvalidInputError("the request is not valid", {"leads": ["expected a non-empty list of leads"]})
    if len(items) > MAX_BULK_LEADS:
        raise InvalidInputError("too many leads", {"leads": [f"at most {MAX_BULK_LEADS} leads per request"]})
    return list(items)


def _idempotency_key() -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None  # an empty header names no key
    if key is not None and (len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable()):
        expected = f"expected at most {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
        raise BadRequestError(f"{IDEMPOTENCY_HEADER}: {expected}", {IDEMPOTENCY_HEADER: [expected]})
    return key


def accepted_body(lead_id: str, status: LeadStatus, warnings: Iterable[str]) -> dict[str, Any]:
    """The answer for a lead the relay now holds (API and form intake): its id, status and where to follow it."""
    return {
        "id": lead_id,
        "status": status.value,
        "statusUrl": status_url(lead_id),
        "warnings": list(warnings),
    }


def status_url(lead_id: str) -> str:
    """The absolute URL of `get_lead` for a lead: under LEADRELAY_PUBLIC_URL when it is set, else as `url_for`
    builds it, at a fraction of the cost on the intake path (the application root as the request reached it)."""
    public = services().settings.leadrelay_public_url
    root = f"{public.rstrip('/')}/" if public else _url_root(request.scheme, request.host, request.root_path)
    return f"{root}{bp.url_prefix.lstrip('/')}/{quote(lead_id, safe='')}"  # type: ignore[union-attr]


@functools.lru_cache(maxsize=64)
def _url_root(scheme: str, host: str, root_path: str) -> str:
    """`request.url_root` of a request that reached the app by this scheme, host and root path, as werkzeug builds
    it: kept, since the same few come on every request and building one (an IRI from a URI) cost more than the
    rest of an accepted lead's answer."""
    return get_current_url(scheme, host, root_path)


def _result_body(index: int, result: AcceptedLead | InvalidLead) -> dict[str, Any]:
    if isinstance(result, InvalidLead):
        error = {"code": "VALIDATION_ERROR", "message": "the lead is not valid", "fields": dict(result.fields)}
        return {"index": index, "error": error}
    return {"index": index, **accepted_body(result.id, result.status, result.warnings)}
