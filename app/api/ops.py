"""Ops endpoints: `/v1/stats` and the ops-token check shared by status routes."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from app.api.auth import match_secret, presented_credential
from app.ops import StatsQuery, collect_stats
from app.services import services

bp = Blueprint("ops", __name__, url_prefix="/v1")


def require_ops_token() -> str:
    """The name of the ops token the request carries; 401 without a valid one."""
    name = match_secret(presented_credential(request, header="X-Ops-Token"), services().settings.leadrelay_ops_tokens)
    g.ops_token_name = name
    return name


@bp.get("/stats")
def stats() -> Response:
    """Counts, queue, budget, pause and latency numbers for dashboards."""
    require_ops_token()
    svc = services()
    query = StatsQuery(svc.store, svc.settings.carecycle_rate_limit_per_min, svc.clock.now())
    return jsonify(collect_stats(query))
