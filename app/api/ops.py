"""Ops endpoints: `/v1/stats`, `/v1/sources`, `/v1/audit`, and the ops-token check and operator of status routes."""

from __future__ import annotations

from operator import attrgetter

from flask import Blueprint, Response, after_this_request, jsonify, request

from app.api.auth import OPS_TOKEN_EXPECTED, match_secret, presented_credential
from app.errors import InvalidInputError
from app.ops import UNKNOWN_SOURCE_EXPECTED, Operator, StatsQuery, UnknownStatsSourceError, collect_stats
from app.queues import wake_delivery
from app.resubmit import Normalizing, Resubmitter
from app.schemas.ops import AuditArgsSchema, StatsArgsSchema, audit_body
from app.schemas.responses import SourceListSchema, StatsSchema
from app.services import services

bp = Blueprint("ops", __name__, url_prefix="/v1")


def require_ops_token() -> str:
    """The name of the ops token the request carries; 401 without a valid one.

    What an ops token opens is not to be kept by a browser's or proxy's cache: its answer (or its error)
    leaves with `Cache-Control: no-store`, so nothing of it stays on an operator's disk.
    """
    tokens = services().settings.leadrelay_ops_tokens
    name = match_secret(presented_credential(request, header="X-Ops-Token"), tokens, OPS_TOKEN_EXPECTED)
    after_this_request(_not_stored)
    return name


def query_args() -> dict[str, str]:
    """The query args of an ops request, one value each; a name given twice is refused naming it (422): the
    schemas read one value, and a second filter dropped without a word would answer for the first alone."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        expected = ["expected once: one value per request"]
        raise InvalidInputError("the request is not valid", {name: expected for name in repeated})
    return request.args.to_dict()


def _not_stored(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def operator() -> Operator:
    """Operator queries and actions over the running app's store."""
    svc = services()
    normalizing = Normalizing(svc.cipher, svc.sources, svc.intake)
    resubmitter = Resubmitter(svc.store, svc.clock, lambda: normalizing)
    return Operator(svc.store, svc.clock, lambda: wake_delivery(svc.redis, svc.store.lanes), resubmitter.resubmit)


@bp.get("/stats")
def stats() -> Response:
    """Counts, queue, budget, pause and latency numbers for dashboards.
    ---
    get:
      summary: Delivery statistics
      description: >
        A fixed number of Redis reads, cheap enough to poll every few seconds. With `source`, the counts by status
        (`counts`) are that source's; every other number (queue depth, in-flight batches, oldest queued age,
        delivered and failed, rate budget, drain estimate, pauses, last delivery, latency) stays relay-wide, of all
        sources: `countsSource` names what `counts` are of.
      tags: [ops]
      security: [{bearer: []}, {opsToken: []}]
      parameters:
        - in: query
          schema: StatsArgsSchema
      responses:
        200:
          description: The numbers.
          content:
            application/json:
              schema: StatsSchema
        422:
          description: >
            A query arg that is unknown, given twice, or not valid (a `source` that is no slug, or names no configured
            source and no source any lead came from); `fields` names it and what was expected.
    """
    require_ops_token()
    svc = services()
    args = StatsArgsSchema().load(query_args())
    configured = frozenset(source.slug for source in svc.sources)
    query = StatsQuery(
        svc.store, svc.settings.carecycle_rate_limit_per_min, svc.clock.now(), args.get("source"), configured
    )
    try:
        numbers = collect_stats(query)
    except UnknownStatsSourceError as exc:
        raise InvalidInputError("the request is not valid", {"source": [UNKNOWN_SOURCE_EXPECTED]}) from exc
    return jsonify(StatsSchema().dump(numbers))


@bp.get("/sources")
def sources() -> Response:
    """The configured sources, by which the lead list and a bulk retry may be narrowed.
    ---
    get:
      summary: Configured lead sources
      description: Each source's slug and kind, sorted by slug; read from the configuration, not from Redis.
      tags: [ops]
      security: [{bearer: []}, {opsToken: []}]
      responses:
        200:
          description: The sources.
          content:
            application/json:
              schema: SourceListSchema
    """
    require_ops_token()
    return jsonify(SourceListSchema().dump({"sources": sorted(services().sources, key=attrgetter("slug"))}))


@bp.get("/audit")
def audit() -> Response:
    """The newest operator actions (retries), with the ops token's name, never the token.
    ---
    get:
      summary: Audit trail of operator actions
      tags: [ops]
      security: [{bearer: []}, {opsToken: []}]
      parameters:
        - in: query
          schema: AuditArgsSchema
      responses:
        200:
          description: Newest entries first.
          content:
            application/json:
              schema: AuditTrailSchema
        422:
          description: A query arg that is unknown, given twice, or not valid; `fields` names it and what was expected.
    """
    require_ops_token()
    args = AuditArgsSchema().load(query_args())
    return jsonify(audit_body(operator().audit_trail(args["limit"], args["offset"])))
