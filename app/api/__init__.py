"""HTTP blueprints of the relay."""

from __future__ import annotations

from flask import Flask


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
