"""What a delivery pause shows while its probes meet something else than its cause: a careCycle outage met by the probe
of a pause for a refused key is said in the pause's reason (stats, dashboard, log once per change), and the pause goes
on until a probe gets an answer."""

from __future__ import annotations

import logging
import random

import pytest

from app.models import LeadStatus
from app.ops import StatsQuery, collect_stats
from tests.factories import make_lead
from tests.unit.test_delivery import ScriptedCareCycle
from workers.carecycle import CareCycleAuthError, CareCycleRateLimitedError, CareCycleTransientError, UploadResult
from workers.delivery import Deliverer

REFUSED = CareCycleAuthError("careCycle 401 UNAUTHORIZED: Invalid or missing API key", 401)
OUTAGE = CareCycleTransientError("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", 503)
TIMEOUT = CareCycleTransientError("careCycle did not answer in time")


@pytest.fixture
def carecycle():
    return ScriptedCareCycle()


@pytest.fixture
def deliverer(store, carecycle, cipher, settings, clock):
    return Deliverer(store, carecycle, cipher, settings, clock, random.Random(7))


@pytest.fixture
def lead_id(store, cipher, clock):
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], clock.now())
    return lead.id


@pytest.fixture
def shown(store, clock):
    return lambda: collect_stats(StatsQuery(store, 60, clock.now()))["pause"]


def until_the_next_probe(store, clock, lead_id):
    """Past the pause's next probe time and the lead's backoff, if it is retrying."""
    lead = store.leads.get(lead_id)
    due = max(store.pause.get().next_probe_at, lead.next_attempt_at or 0)
    clock.advance(max(0.0, due - clock.now()))


def test_a_probe_meeting_a_carecycle_outage_is_shown_in_the_pause_which_goes_on(
    store, clock, deliverer, carecycle, lead_id, shown, caplog
):
    carecycle.script += [REFUSED, OUTAGE]
    deliverer.step()  # delivery pauses for the refused key
    until_the_next_probe(store, clock, lead_id)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        deliverer.step()  # the key was fixed meanwhile: the probe meets careCycle failing

    expected = f"{REFUSED.message}; the last upload met: {OUTAGE.message}"
    assert shown()["reason"] == expected
    assert store.pause.get().next_probe_at > clock.now()  # still paused: no upload until the next probe
    assert store.leads.get(lead_id).status is LeadStatus.RETRYING
    assert [r.getMessage() for r in caplog.records if "paused" in r.getMessage()] == [f"delivery paused: {expected}"]


def test_the_pause_shows_what_each_probe_met_and_says_it_once_per_change(
    store, clock, deliverer, carecycle, lead_id, shown, caplog
):
    carecycle.script += [REFUSED, OUTAGE, OUTAGE, TIMEOUT, REFUSED]
    deliverer.step()
    caplog.clear()
    reasons = []
    with caplog.at_level(logging.INFO, logger="workers.delivery"):
        for _ in range(4):
            until_the_next_probe(store, clock, lead_id)
            deliverer.step()
            reasons.append(shown()["reason"])

    assert reasons == [
        f"{REFUSED.message}; the last upload met: {OUTAGE.message}",
        f"{REFUSED.message}; the last upload met: {OUTAGE.message}",
        f"{REFUSED.message}; the last upload met: {TIMEOUT.message}",
        REFUSED.message,  # refused again: the key is still wrong
    ]
    assert [r.getMessage() for r in caplog.records if "paused" in r.getMessage()] == [
        f"delivery paused: {REFUSED.message}; the last upload met: {OUTAGE.message}",
        f"delivery paused: {REFUSED.message}; the last upload met: {TIMEOUT.message}",
        f"delivery paused: {REFUSED.message}",
    ]


def test_a_probe_meeting_a_rate_limit_is_shown_too(store, clock, deliverer, carecycle, lead_id, shown):
    limited = CareCycleRateLimitedError("careCycle 429 RATE_LIMIT_EXCEEDED: Rate limit exceeded", retry_after=60)
    carecycle.script += [REFUSED, limited]
    deliverer.step()
    until_the_next_probe(store, clock, lead_id)

    deliverer.step()

    assert shown()["reason"] == f"{REFUSED.message}; the last upload met: {limited.message}"


def test_a_probe_careCycle_takes_after_an_outage_ends_the_pause_at_once(
    store, clock, deliverer, carecycle, lead_id, shown
):
    carecycle.script += [REFUSED, OUTAGE, UploadResult(succeeded=1)]
    deliverer.step()
    until_the_next_probe(store, clock, lead_id)
    deliverer.step()
    until_the_next_probe(store, clock, lead_id)

    deliverer.step()

    assert shown() is None and store.pause.get() is None
    assert store.leads.get(lead_id).status is LeadStatus.DELIVERED


def test_an_upload_failing_while_delivery_runs_makes_no_pause(store, clock, deliverer, carecycle, lead_id, shown):
    carecycle.script.append(OUTAGE)

    deliverer.step()

    assert shown() is None and store.leads.get(lead_id).status is LeadStatus.RETRYING
