"""Liveness and readiness probes (no auth), and Prometheus metrics (ops token: they name sources and their volumes)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError

from app.api.ops import require_ops_token
from app.metrics import render_metrics
from app.services import services
from app.store.refusals import is_reachable, refusal_reason

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process serves requests.
    ---
    get:
      summary: Liveness
      tags: [health]
      responses:
        200:
          description: Alive.
          content:
            application/json:
              schema: HealthSchema
    """
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Redis takes writes and stored data is in this version's layout.
    ---
    get:
      summary: Readiness
      tags: [health]
      responses:
        200:
          description: Ready to take leads.
          content:
            application/json:
              schema: ReadinessSchema
        503:
          description: >-
            Redis unreachable (`redis` false), reachable but refusing writes (`redisWrites` false), with the reason
            in `redisProblem` (read-only, out of memory, writes stopped, unreachable, ...), or stored data in
            another layout (`schemaCurrent` false).
          content:
            application/json:
              schema: ReadinessSchema
    """
    svc = services()
    store = svc.store
    try:
        store.accepts_writes(svc.clock.now())
        schema_ok = store.is_schema_current()
    except RedisError as exc:
        # Reachable but refusing writes is its own answer: on-call looks at Redis's role or memory, not the network.
        if is_reachable(exc):
            return jsonify(
                {"status": "unavailable", "redis": True, "redisWrites": False, "redisProblem": refusal_reason(exc)}
            ), 503
        return jsonify({"status": "unavailable", "redis": False, "redisProblem": refusal_reason(exc)}), 503
    if not schema_ok:
        return jsonify({"status": "unavailable", "redis": True, "schemaCurrent": False}), 503
    return jsonify({"status": "ready", "redis": True, "schemaCurrent": True}), 200


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: intake counters per process, shared delivery state from Redis.
    ---
    get:
      summary: Prometheus metrics
      description: "Needs an ops token, sent as `Authorization: Bearer` (Prometheus' `authorization` scrape setting)."
      tags: [health]
      security: [{bearer: []}, {opsToken: []}]
      responses:
        200:
          description: Metrics in the Prometheus text exposition format.
          content:
            text/plain:
              schema: {type: string}
    """
    require_ops_token()
    svc = services()
    body, content_type = render_metrics(svc.store, svc.clock.now())
    return Response(body, content_type=content_type)
