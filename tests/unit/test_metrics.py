"""`/metrics`: intake counters per process, and delivery state shared through Redis."""

from __future__ import annotations

import random

import pytest
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from app.metrics import hand_over_admitted
from app.models import LeadStatus
from app.store import keys
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_submission
from tests.metricscheck import scrape
from tests.unit.test_delivery import ScriptedCareCycle
from workers.carecycle import (
    CareCycleRateLimitedError,
    CareCycleRequestError,
    CareCycleTransientError,
    UploadResult,
)
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


def test_metrics_still_answer_with_the_intake_counts_while_redis_does_not_and_say_so(client, store, monkeypatch):
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
    assert scrape(client)[("leadrelay_store_up", ())] == 1

    def redis_down(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    monkeypatch.setattr(type(store.redis), "execute_command", redis_down)
    monkeypatch.setattr(type(store.redis), "pipeline", redis_down)
    samples = scrape(client)

    assert samples[("leadrelay_store_up", ())] == 0
    assert samples[("leadrelay_intake_leads_total", (("outcome", "accepted"), ("source", "partner")))] >= 1
    assert ("leadrelay_queue_depth", ()) not in samples


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


def test_the_oldest_queued_age_grows_while_carecycle_fails_and_its_lead_waits_to_retry(
    client, store, cipher, settings, clock
):
    carecycle = ScriptedCareCycle()
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(1))
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})
    carecycle.script.append(CareCycleTransientError("careCycle 503 INTERNAL_ERROR"))
    deliverer.step()
    clock.advance(20)

    samples = scrape(client)

    assert samples[("leadrelay_leads", (("status", "retrying"),))] == 1
    assert samples[("leadrelay_oldest_queued_age_seconds", ())] == 20


def test_metrics_show_a_meta_retrieval_pause(client, store, clock):
    assert scrape(client)[("leadrelay_retrieval_paused", ())] == 0
    store.fetch_pause.pause("Graph token expired (code 190)", clock.now(), clock.now() + 30)

    assert scrape(client)[("leadrelay_retrieval_paused", ())] == 1


def test_metrics_count_the_meta_pages_whose_retrieval_alone_is_paused(client, store, clock):
    assert scrape(client)[("leadrelay_retrieval_paused_pages", ())] == 0
    for page_id in ("100000000000002", "100000000000003"):
        store.page_pauses.pause(page_id, "Graph API 403 code 10: no lead access", clock.now(), clock.now() + 30, 3600)
    store.page_pauses.resume("100000000000003", clock.now())

    samples = scrape(client)

    assert samples[("leadrelay_retrieval_paused_pages", ())] == 1
    assert samples[("leadrelay_retrieval_paused", ())] == 0  # every other Page's leads are retrieved


def test_metrics_count_the_meta_forms_whose_backfill_listing_is_refused(client, store):
    assert scrape(client)[("leadrelay_retrieval_refused_forms", ())] == 0
    for form_id in ("200000000000002", "200000000000003"):
        store.refused_forms.refused(form_id, "Graph API 403 code 200: (#200) no lead access")
    store.refused_forms.listed("200000000000003")

    samples = scrape(client)

    assert samples[("leadrelay_retrieval_refused_forms", ())] == 1
    assert samples[("leadrelay_retrieval_paused_pages", ())] == 0  # no Page is paused on a guess


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


def test_a_record_careCycle_refuses_found_by_splitting_counts_as_rejected(client, store, cipher, settings, clock):
    carecycle = ScriptedCareCycle()
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(1))
    client.post("/v1/leads", json={"leads": [make_submission() for _ in range(2)]}, headers={"X-Api-Key": SOURCE_KEY})
    carecycle.script += [CareCycleRequestError("careCycle 400 BAD_REQUEST", 400)] * 2  # the batch, then its first half
    deliverer.step()

    samples = scrape(client)

    assert samples[("leadrelay_carecycle_requests_total", (("outcome", "request_error"),))] == 2
    assert samples[("leadrelay_carecycle_requests_total", (("outcome", "ok"),))] == 1
    assert samples[("leadrelay_delivery_lead_outcomes_total", (("outcome", "rejected"),))] == 1
    assert samples[("leadrelay_delivery_lead_outcomes_total", (("outcome", "delivered"),))] == 1


def test_an_answer_to_a_batch_another_worker_took_over_counts_the_request_but_no_lead(
    client, store, cipher, settings, clock
):
    carecycle = ScriptedCareCycle()
    deliverer = Deliverer(store, carecycle, cipher, settings, clock, random.Random(1))
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})

    def answered_after_the_lease(batch):
        clock.advance(settings.leadrelay_visibility_timeout_seconds + 1)
        store.batches.reclaim_stale(clock.now(), 3600)  # taken for lost: the lead is another worker's now
        return UploadResult(succeeded=len(batch))

    carecycle.script.append(answered_after_the_lease)
    deliverer.step()

    samples = scrape(client)

    assert samples[("leadrelay_carecycle_requests_total", (("outcome", "ok"),))] == 1
    assert ("leadrelay_delivery_lead_outcomes_total", (("outcome", "delivered"),)) not in samples
    assert samples[("leadrelay_delivery_latency_seconds_count", ())] == 0


def test_every_metric_the_readme_names_is_served(client, store, clock):
    import re
    from pathlib import Path

    from prometheus_client.parser import text_string_to_metric_families

    named = set(re.findall(r"\bleadrelay_[a-z_]+", (Path(__file__).parents[2] / "README.md").read_text()))
    client.post("/v1/leads", json=make_submission(), headers={"X-Api-Key": SOURCE_KEY})  # an intake series to show
    body = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).get_data(as_text=True)
    families = list(text_string_to_metric_families(body))
    served = {family.name + ("_total" if family.type == "counter" else "") for family in families}

    assert named and named <= served, f"README names metrics /metrics does not serve: {named - served}"


def test_intake_counts_workers_hand_over_while_redis_fails_a_scrape_are_counted_by_a_later_one(
    client, store, monkeypatch
):
    def accepted():
        return accepted_from(client, "fb-x")

    before = accepted()
    hand_over_admitted(store, [("fb-x", LeadStatus.FETCHING)] * 3)

    def redis_down(*args, **kwargs):
        raise RedisConnectionError("Redis is down")

    with monkeypatch.context() as patched:
        patched.setattr(type(store.redis), "pipeline", redis_down)
        patched.setattr(store.redis, "execute_command", redis_down)
        during = accepted()

    assert during == before
    assert accepted() == before + 3
    assert accepted() == before + 3


def test_metrics_show_carecycle_failing_from_its_first_failed_upload_until_it_takes_one_again(client, store, clock):
    assert scrape(client)[("leadrelay_carecycle_failing", ())] == 0
    store.outage.failing("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", clock.now())
    failing = scrape(client)[("leadrelay_carecycle_failing", ())]
    store.outage.recovered(clock.now())

    assert (failing, scrape(client)[("leadrelay_carecycle_failing", ())]) == (1, 0)


def test_intake_counts_a_scrape_took_from_redis_but_never_heard_back_are_counted_by_a_later_one(
    client, store, monkeypatch
):
    # Redis ran the take, then the connection dropped (or its 2 s ran out) before the answer came: the client
    # resends it, or gives up. Either way the counts it moved out must still be counted, once.
    before = accepted_from(client, "fb-y")
    hand_over_admitted(store, [("fb-y", LeadStatus.FETCHING)] * 3)
    lose_the_answer_to_the_next_hand_over_take(store.redis, monkeypatch)

    during = accepted_from(client, "fb-y")

    assert during == before
    assert accepted_from(client, "fb-y") == before + 3
    assert accepted_from(client, "fb-y") == before + 3


def accepted_from(client, source: str) -> float:
    """The intake counter of `source`'s accepted leads, as a scrape shows it."""
    return scrape(client).get(("leadrelay_intake_leads_total", (("outcome", "accepted"), ("source", source))), 0)


def lose_the_answer_to_the_next_hand_over_take(redis, monkeypatch):
    """The next command or pipeline naming the hand-over key runs in Redis; its answer never arrives."""
    handover = keys.intake_handover_key().encode()
    lost: list[bool] = []

    def names_handover(args) -> bool:
        return any(handover == (a.encode() if isinstance(a, str) else a) for a in args)

    def lose_once(sent):
        if not lost:
            lost.append(True)
            raise RedisConnectionError("connection lost before the reply")
        return sent

    direct = redis.execute_command

    def execute_command(*args, **options):
        reply = direct(*args, **options)
        return lose_once(reply) if names_handover(args) else reply

    pipeline_execute = Pipeline.execute

    def execute(self, *args, **options):
        named = any(names_handover(command[0]) for command in self.command_stack)
        reply = pipeline_execute(self, *args, **options)
        return lose_once(reply) if named else reply

    monkeypatch.setattr(redis, "execute_command", execute_command)
    monkeypatch.setattr(Pipeline, "execute", execute)
