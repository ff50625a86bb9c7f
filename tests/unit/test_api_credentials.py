"""Wrong credentials on the partner API and the ops endpoints: refused alike, and said in the log once per change."""

from __future__ import annotations

import logging

from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission

GUESSES = [f"guess-{n:04d}-abcdefghijkl" for n in range(5)]


def refusals(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "app.errors"]


def test_wrong_ops_tokens_are_said_once_then_counted_each_minute_never_shown(client, clock, caplog):
    with caplog.at_level(logging.INFO):
        answers = [client.get("/v1/stats", headers={"Authorization": f"Bearer {guess}"}) for guess in GUESSES]
        clock.advance(60)
        answers.append(client.get("/v1/leads", headers={"X-Ops-Token": "guess-after-a-minute-xyz"}))

    assert [answer.status_code for answer in answers] == [401] * 6
    assert answers[0].json["error"]["fields"] == {
        "Authorization": ["expected Bearer <ops token>, or the ops token as X-Ops-Token"]
    }
    assert refusals(caplog) == [
        "refused a wrong ops token",
        "still refusing wrong ops tokens (5 more refused in 60 s)",
    ]
    assert [r.levelname for r in caplog.records if r.name == "app.errors"] == ["WARNING", "WARNING"]
    assert not any(guess in caplog.text for guess in GUESSES)
    assert len([r for r in caplog.records if r.name == "app.requests"]) == 6  # each request keeps its own line


def test_wrong_source_keys_are_said_apart_from_wrong_ops_tokens(client, caplog):
    with caplog.at_level(logging.INFO):
        for guess in GUESSES[:3]:
            client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": guess})
        client.get("/v1/stats", headers={"Authorization": f"Bearer {GUESSES[3]}"})
        client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": GUESSES[4]})

    assert refusals(caplog) == ["refused a wrong source API key", "refused a wrong ops token"]


def test_a_request_without_credentials_or_with_right_ones_is_not_taken_for_a_guess(client, caplog):
    with caplog.at_level(logging.INFO):
        missing = client.get("/v1/stats")
        right = client.get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        taken = client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})

    assert (missing.status_code, right.status_code, taken.status_code) == (401, 200, 202)
    assert refusals(caplog) == []
