"""`/v1/webhooks/google/<slug>`: Google Ads lead form webhook deliveries, authenticated by `google_key`.

Google only looks at the status: 200 when the lead is held (new, repeated, test, or kept as `rejected`);
4xx for what a retry cannot fix (unknown source, wrong key, a body that is no lead), which Google does not
retry; 503 when Redis is down, which Google retries.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api.bodies import json_object, limit_body
from app.errors import ApiError
from app.google import accept_google_lead, note_refusal
from app.logs import add_log_ids
from app.services import services
from app.sources import LeadSource, SourceKind

bp = Blueprint("google", __name__, url_prefix="/v1/webhooks/google")

# One lead with a few dozen answers is a few KiB.
GOOGLE_MAX_BODY_BYTES = 256 * 1024


@bp.post("/<slug>")
def receive(slug: str) -> tuple[Response, int]:
    """Take in one Google lead form submission (authenticated by `google_key` in the body).
    ---
    post:
      summary: Google Ads lead form webhook
      tags: [intake]
      requestBody:
        required: true
        content:
          application/json:
            schema: GoogleLeadSchema
      responses:
        200:
          description: The lead is held (new, repeated `lead_id`, `test`, or kept as `rejected`).
          content:
            application/json:
              schema: GoogleLeadReceiptSchema
        400:
          description: The body is no JSON object.
        401:
          description: The body carries no `google_key`.
        403:
          description: The `google_key` is not the source's key (counted as the intake outcome `unauthorized`).
        404:
          description: No google source has that slug (`fields` names `slug`).
        413:
          description: The body is over 256 KiB (declared or sent chunked).
        415:
          description: The body is sent in a content coding (a `Content-Encoding` such as gzip), which is not read.
        422:
          description: >
            The body has no `lead_id` (text of 1 to 255 characters) or no `user_column_data` list: it cannot be a
            lead. Anything else unreadable in it is dropped with a warning and the lead kept.
        503:
          description: >
            The relay's store (Redis) is unreachable: an answer Google will retry, as it does no 4xx (a `lead_id`
            already taken is not taken twice).
    """
    svc = services()
    source = svc.sources.by_slug(slug, SourceKind.GOOGLE)
    add_log_ids(source=source.slug)
    accepted = accept_google_lead(svc.intake, source, _read_body(source))
    return jsonify({"id": accepted.id, "status": accepted.status.value, "warnings": list(accepted.warnings)}), 200


def _read_body(source: LeadSource) -> dict[str, Any]:
    """The delivery's JSON object; a body refused before its key can be read (too large, in a content coding, no
    JSON object) is counted and logged like every refusal, since Google does not send that lead again."""
    try:
        limit_body(request, GOOGLE_MAX_BODY_BYTES)
        # Google does not resend a refused lead: a body naming a field twice is read (its last copy), not refused.
        return json_object(request, force=True, names_once=False)
    except ApiError as exc:
        note_refusal(source, "invalid", exc.message)
        raise
