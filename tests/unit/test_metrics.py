"""`/metrics`: intake counters per process, and delivery state shared through Redis."""

from __future__ import annotations

import random

import pytest

from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.metricscheck import scrape
from tests.unit.test_delivery import ScriptedCareCycle
from workers.carecycle import CareCycleRateLimitedError
from workers.delivery import Deliverer


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {SOURCE_KEY}"}],
    ids=["no-token", "wrong-token", "source-key"],
)
def test_metrics_need_an_ops_token_because_they_name_sources_and_their_volumes(client, headers):
    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert b"leadrelay_" not in response.data


def test_metrics_take_the_ops_token_as_prometheus_sends_it(client):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})

    assert response.status_code == 200
    assert b"leadrelay_intake_leads_total" in response.data


def test_metrics_count_intake_by_source_and_outcome(client):
    before = scrape(client).get(("leadrelay_intake_leads_total", (("outcome", "invalid"), ("source", "partner"))), 0)
    leads = [make_submission(), make_submission(phoneNumber="nope")]

    client.post("/v1/leads", json={"leads": leads}, headers={"X-Api-Key": SOURCE_KEY})

    samples = scrape(client)
    assert samples[("leadrelay_intake_leads_total", (("outcome", "invalid"), ("source", "partner")))] == before + 1
    assert samples[("leadrelay_intake_leads_total", (("outcome", "accepted"), ("source", "partner")))] >= 1
    assert samples[("leadrelay_queue_depth", ())] == 1
    assert samples[("leadrelay_leads", (("status", "queued"),))] == 1


def test_metrics_show_how_long_the_oldest_queued_lead_has_waited(client, clock):
    assert scrape(client)[("leadrelay_oldest_queued_age_seconds", ())] == 0
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
    clock.advance(42)
    client.post("/v1/leads", json=make_submission(phoneNumber="+12125550143"), headers={"X-Api-Key": SOURCE_KEY})

    samples = scrape(client)

    assert samples[("leadrelay_oldest_queued_age_seconds", ())] == 42
    assert samples[("leadrelay_queue_depth", ())] == 2
    assert samples[("leadrelay_delivery_paused", ())] == 0


def test_metrics_show_upload_outcomes_batch_sizes_latency_and_pause(client, store, cipher, settings, clock):
    carecycle = ScriptedCareCycle()
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(1))
    client.post("/v1/leads", json={"leads": [make_submission() for _ in range(3)]}, headers={"X-Api-Key": SOURCE_KEY})
    carecycle.script.append(CareCycleRateLimitedError("careCycle 429", retry_after=2))
    deliverer.step()
    clock.advance(3)
    clock.advance(0.5)
    deliverer.step()
    store.pause.pause("careCycle 401", clock.now(), clock.now() + 30)

    samples = scrape(client)

    assert samples[("leadrelay_carecycle_requests_total", (("outcome", "rate_limited"),))] == 1
    assert samples[("leadrelay_carecycle_requests_total", (("outcome", "ok"),))] == 1
    assert samples[("leadrelay_delivery_lead_outcomes_total", (("outcome", "delivered"),))] == 3
    assert samples[("leadrelay_delivery_lead_outcomes_total", (("outcome", "retrying"),))] == 3
    assert samples[("leadrelay_batch_size_records_count", ())] == 2
    assert samples[("leadrelay_batch_size_records_bucket", (("le", "5.0"),))] == 2
    assert samples[("leadrelay_delivery_latency_seconds_count", ())] == 3
    assert samples[("leadrelay_delivery_latency_seconds_sum", ())] == 3 * 3.5
    assert samples[("leadrelay_delivery_latency_seconds_bucket", (("le", "2.0"),))] == 0
    assert samples[("leadrelay_delivery_latency_seconds_bucket", (("le", "5.0"),))] == 3
    assert samples[("leadrelay_delivery_paused", ())] == 1
