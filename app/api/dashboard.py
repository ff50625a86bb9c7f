"""`/dashboard`: the ops page. Static HTML and script; it asks for an ops token and calls the status API."""

from __future__ import annotations

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
    response = make_response(render_template("dashboard.html"))
    # The token lives in the tab's sessionStorage; the page loads nothing from elsewhere.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
