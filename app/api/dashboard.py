"""`/dashboard`: the ops page. Static HTML and script; it asks for an ops token and calls the status API."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, make_response, render_template

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
def dashboard() -> Response:
    """The ops dashboard: live numbers, failing leads with reasons, retry buttons, the pause banner.
    ---
    get:
      summary: Ops dashboard page
      description: The page itself holds no data; it asks for an ops token and reads the status API with it.
      tags: [ops]
      responses:
        200:
          description: An HTML page.
          content:
            text/html:
              schema: {type: string}
    """
    # The token lives in the tab's sessionStorage, within reach of any script the page runs: only its own script,
    # named by a nonce new on every answer, may run (markup slipped into the page runs nothing); it loads nothing
    # from elsewhere.
    nonce = secrets.token_urlsafe(18)
    response = make_response(render_template("dashboard.html", script_nonce=nonce))
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
