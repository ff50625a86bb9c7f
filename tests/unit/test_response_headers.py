"""Headers every answer of the relay carries, whatever its route or status."""

from __future__ import annotations

import pytest

from tests.conftest import OPS_TOKEN, SOURCE_KEY


@pytest.mark.parametrize(
    ("method", "path", "request_args"),
    [
        pytest.param("get", "/dashboard", {}, id="dashboard"),
        pytest.param("get", "/docs", {}, id="docs"),
        pytest.param("get", "/openapi.json", {}, id="openapi"),
        pytest.param("get", "/healthz", {}, id="healthz"),
        pytest.param("get", "/v1/stats", {"headers": {"Authorization": f"Bearer {OPS_TOKEN}"}}, id="stats"),
        pytest.param("get", "/v1/stats", {}, id="refused"),
        pytest.param("get", "/no/such/page", {}, id="not-found"),
        pytest.param("delete", "/v1/stats", {}, id="method-not-allowed"),
        # A refusal names the fields a client sent, by the names it chose.
        pytest.param(
            "post",
            "/v1/leads",
            {"json": {"<b>phone</b>": "12"}, "headers": {"X-Api-Key": SOURCE_KEY}},
            id="invalid-lead",
        ),
    ],
)
def test_every_answer_is_read_only_as_the_type_it_declares(client, method, path, request_args):
    response = getattr(client, method)(path, **request_args)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
