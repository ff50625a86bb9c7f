"""HTTP blueprints of the relay."""

from __future__ import annotations

from flask import Flask, Response


def register_blueprints(app: Flask) -> None:
    """Mount every blueprint on `app`."""
    from app.api import dashboard, docs, facebook, forms, google, health, leads, ops

    app.register_blueprint(leads.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(facebook.bp)
    app.register_blueprint(forms.bp)
    app.register_blueprint(google.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(dashboard.bp)


def register_response_headers(app: Flask) -> None:
    """Headers every answer carries, whatever its route or status."""
    app.after_request(_read_as_declared)


def _read_as_declared(response: Response) -> Response:
    # Answers quote what clients chose (the field names of a refused lead or form post): a browser is to read each
    # only as the type it declares, never guess it a page or a script.
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
