"""`GET /v1/sources`: the configured sources an operator narrows the lead list and retries by, and nothing more."""

from __future__ import annotations

from app import create_app
from app.sources import SourceRegistry
from app.sources.source import SourceKind
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_source

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def test_sources_are_listed_by_slug_with_their_kind_and_no_secret(settings, redis, clock):
    registry = SourceRegistry(
        [
            make_source(slug="partner", secret="partner-secret-0123456789", source_id="cc-partner-7"),
            make_source(slug="gads", kind=SourceKind.GOOGLE, secret="google-key-0123456789"),
            make_source(slug="landing", kind=SourceKind.FORM),
        ]
    )
    client = create_app(settings, redis=redis, clock=clock, sources=registry).test_client()

    response = client.get("/v1/sources", headers=OPS)

    assert response.status_code == 200
    assert response.json == {
        "sources": [
            {"slug": "gads", "kind": "google"},
            {"slug": "landing", "kind": "form"},
            {"slug": "partner", "kind": "api"},
        ]
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_sources_need_an_ops_token_not_a_source_key(client):
    assert client.get("/v1/sources").status_code == 401
    assert client.get("/v1/sources", headers={"X-Api-Key": SOURCE_KEY}).status_code == 401
