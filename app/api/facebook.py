"""`/v1/webhooks/facebook`: Meta's subscription handshake and its `leadgen` notifications."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api.bodies import body_refused, limit_body
from app.errors import BadRequestError, ForbiddenError, UnauthorizedError
from app.meta import SUBSCRIPTION_EXPECTED, is_signature_valid, subscription_faults
from app.metrics import record_admitted, record_meta_skipped
from app.schemas.meta import LeadgenNotification, LeadgenNotificationSchema
from app.services import services

logger = logging.getLogger(__name__)

bp = Blueprint("facebook", __name__, url_prefix="/v1/webhooks/facebook")

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta batches up to 1000 changes a POST and documents no size limit: room for twice the app's default, so a
# batch is never refused (and re-sent by Meta for 36 hours, then dropped) for its size alone.
META_MAX_BODY_BYTES = 2 * 1024 * 1024

_SIGNATURE_EXPECTED = "expected sha256= and the HMAC-SHA256 of the raw body with the Meta app's secret, in hex"


@bp.get("")
def verify_subscription() -> Response:
    """Answer Meta's handshake with `hub.challenge`, as plain text, when the verify token matches.
    ---
    get:
      summary: Meta webhook verification handshake
      tags: [intake]
      parameters:
        - {in: query, name: hub.mode, required: true, schema: {type: string, enum: [subscribe]}}
        - {in: query, name: hub.verify_token, required: true, schema: {type: string}}
        - {in: query, name: hub.challenge, required: true, schema: {type: string}}
      responses:
        200:
          description: The challenge, echoed.
          content:
            text/plain:
              schema: {type: string}
        400:
          description: The verify token matches but `hub.challenge` is missing or empty; `fields` names it.
        403:
          description: >
            `hub.mode` is not subscribe or `hub.verify_token` is not the configured one; or FACEBOOK_VERIFY_TOKEN
            is not set on the relay, which the message then says.
    """
    args = request.args
    expected_token = services().settings.facebook_verify_token
    if not expected_token:
        raise _unconfigured("FACEBOOK_VERIFY_TOKEN", "Meta's verification handshake cannot succeed")
    faults = subscription_faults(args.get("hub.mode"), args.get("hub.verify_token"), expected_token)
    if faults:
        raise ForbiddenError(f"verification refused: {', '.join(faults)} not as expected", faults)
    challenge = args.get("hub.challenge", "")
    if not challenge:  # an empty 200 would read as a handshake that worked to whoever tried the URL by hand
        expected = SUBSCRIPTION_EXPECTED["hub.challenge"]
        raise BadRequestError(f"hub.challenge: {expected}", {"hub.challenge": [expected]})
    return Response(challenge, status=200, mimetype="text/plain")  # nosniff, as every answer (app.api)


@bp.post("")
def receive_notification() -> tuple[Response, int]:
    """Check the signature over the raw body, then admit each `leadgen` change as a `fetching` lead.
    ---
    post:
      summary: Meta leadgen notifications
      description: >
        Signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret). Answered at
        once; each new `leadgen_id` becomes a lead in `fetching` that a worker retrieves from the Graph API.
        A repeated `leadgen_id` returns the original lead (with status null once that lead was deleted, its
        retention over: the leadgen id is remembered as long as Meta keeps the lead). Of a signed JSON
        object, only one without an `entry` list is refused: an entry or change that cannot be read is
        skipped alone, and optional metadata that cannot be read (entry `id` or `time`, `created_time`,
        `ad_id`, ...) is dropped while its lead is still taken.
      tags: [intake]
      parameters:
        - {in: header, name: X-Hub-Signature-256, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: LeadgenNotificationSchema
      responses:
        200:
          description: The leads each change became, and how many changes were skipped.
          content:
            application/json:
              schema: LeadgenReceiptSchema
        400:
          description: The body is no JSON object.
        401:
          description: The request carries no X-Hub-Signature-256.
        403:
          description: >
            The signature does not match the body; or FACEBOOK_APP_SECRET is not set on the relay, which the
            message then says.
        413:
          description: >
            The body is over 2 MiB (declared or sent chunked): room for twice the 1000 changes Meta batches in
            a POST.
        415:
          description: The body is sent in a content coding (a `Content-Encoding` such as gzip), which is not read.
        422:
          description: The body has no `entry` list.
        503:
          description: >
            The relay's store (Redis) is unreachable: Meta will retry the notification for up to 36 hours (a
            `leadgen_id` already taken is not taken twice).
    """
    svc = services()
    limit_body(request, META_MAX_BODY_BYTES)
    raw = request.get_data(cache=True)  # the exact bytes Meta signed: never re-serialized JSON
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise UnauthorizedError(f"{SIGNATURE_HEADER} required", {SIGNATURE_HEADER: [_SIGNATURE_EXPECTED]})
    if not svc.settings.facebook_app_secret:
        raise _unconfigured("FACEBOOK_APP_SECRET", "no notification's signature can be checked")
    if not is_signature_valid(raw, signature, svc.settings.facebook_app_secret):
        # Meta's own notifications fail so when FACEBOOK_APP_SECRET is not its app's secret (reset at Meta, or a
        # wrong value set): each is refused until Meta drops it, 36 hours on, so say why where on-call looks.
        logger.warning(
            "Meta webhook refused: %s does not match the body; if Meta's notifications are refused so,"
            " FACEBOOK_APP_SECRET is not the Meta app's secret",
            SIGNATURE_HEADER,
        )
        raise ForbiddenError(f"{SIGNATURE_HEADER} does not match the body", {SIGNATURE_HEADER: [_SIGNATURE_EXPECTED]})
    notification: LeadgenNotification = LeadgenNotificationSchema().load(_json_object(raw))
    _log_unread(notification)
    admitted = svc.meta.admit(notification.changes)
    for a in admitted:  # counted here, where /metrics is served: the workers' backfill admits leads too
        record_admitted(a.source, a.status, a.repeated)
    # An entry that cannot be read as a whole held leads unknown to us: each is counted as one, beside its changes.
    unreadable = len(notification.unreadable) + len(notification.unreadable_entries)
    record_meta_skipped(len(notification.changes) - len(admitted), unreadable)
    body = {
        "leads": [
            {"leadgenId": a.leadgen_id, "id": a.lead_id, "status": a.status and a.status.value, "repeated": a.repeated}
            for a in admitted
        ],
        "skipped": len(notification.changes) + len(notification.unreadable) - len(admitted),
    }
    return jsonify(body), 200


def _unconfigured(variable: str, consequence: str) -> ForbiddenError:
    """A refusal for a setting the relay lacks, said to the caller and to the on-call engineer: without it the
    answer would read as the caller's mistake (a wrong token or signature). The caller hears it every time; the
    log says it at the first refusal and then at most once a minute (a scanner must not flood the error log)."""
    services().meta_unset_alarm.refused(variable, consequence)
    return ForbiddenError(f"refused: {variable} is not set on the relay, so {consequence}")


def _log_unread(notification: LeadgenNotification) -> None:
    """Warn of each part of the notification that could not be read, by place and field name, never by value."""
    for entry in notification.unreadable_entries:
        logger.warning("unreadable leadgen entry skipped: %s", sorted(entry.messages), extra={"entry": entry.entry})
    for change in notification.unreadable:
        logger.warning(
            "unreadable leadgen change skipped: %s",
            sorted(change.messages),
            extra={"entry": change.entry, "change": change.change},
        )
    for dropped in notification.dropped:
        logger.warning(
            "unreadable optional leadgen value dropped, its lead kept: %s",
            dropped.field,
            extra={"entry": dropped.entry, "change": dropped.change},
        )


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise body_refused("expected a JSON object") from exc
    if not isinstance(body, dict):
        raise body_refused("expected a JSON object")
    return body
