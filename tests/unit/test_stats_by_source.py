"""`/v1/stats?source=` and `leadrelay stats --source`: the counts by status of one source, read as cheaply as the
relay-wide ones; every other number stays relay-wide, and says so."""

from __future__ import annotations

import json

import pytest

from app import cli
from app.models import LeadStatus
from app.store import keys
from app.store.batches import Outcome
from tests.conftest import OPS_TOKEN
from tests.storecheck import leads_in

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
SOURCE_EXPECTED = "expected a source slug: 1 to 63 lowercase letters, digits, - and _, starting with a letter or digit"
UNKNOWN_EXPECTED = "unknown: expected a configured source (GET /v1/sources) or one that leads came from"


def some_leads_of_two_sources(store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=3, source="web")
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=2, source="web")
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=12, source="partner")
    leads_in(store, cipher, clock, LeadStatus.DELIVERED, source="partner")


def test_stats_of_a_source_count_its_leads_alone_and_name_it(client, store, cipher, clock):
    some_leads_of_two_sources(store, cipher, clock)

    stats = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json

    assert stats["countsSource"] == "web"
    assert {status: n for status, n in stats["counts"].items() if n} == {"dead": 3, "queued": 2}
    assert set(stats["counts"]) == {status.value for status in LeadStatus}


def test_stats_of_a_source_keep_every_other_number_relay_wide(client, store, cipher, clock):
    some_leads_of_two_sources(store, cipher, clock)
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=4, source="partner")

    everyone = client.get("/v1/stats", headers=OPS).json
    narrowed = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json

    assert everyone["countsSource"] is None
    assert {name: value for name, value in narrowed.items() if name not in ("counts", "countsSource")} == {
        name: value for name, value in everyone.items() if name not in ("counts", "countsSource")
    }
    assert narrowed["queueDepth"] == 6


def test_stats_of_a_configured_source_without_leads_are_zeros(client):
    stats = client.get("/v1/stats", query_string={"source": "partner"}, headers=OPS).json

    assert stats["countsSource"] == "partner" and set(stats["counts"].values()) == {0}


def test_stats_of_a_source_take_one_round_trip_to_redis(client, store, cipher, clock, round_trips):
    some_leads_of_two_sources(store, cipher, clock)
    round_trips.clear()

    response = client.get("/v1/stats", query_string={"source": "partner"}, headers=OPS)

    assert response.status_code == 200
    assert round_trips == ["PIPELINE(24)"]  # the relay-wide stats' 22, and since when leads are counted by source


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("", SOURCE_EXPECTED, id="empty"),
        pytest.param("Web", SOURCE_EXPECTED, id="capitals"),
        pytest.param("web\n", SOURCE_EXPECTED, id="newline"),
        pytest.param("s" * 64, SOURCE_EXPECTED, id="longer-than-a-slug"),
        pytest.param("acme-from", UNKNOWN_EXPECTED, id="neither-configured-nor-seen"),
    ],
)
def test_stats_refuse_a_source_that_is_no_known_slug_naming_source(client, store, cipher, clock, source, expected):
    some_leads_of_two_sources(store, cipher, clock)

    response = client.get("/v1/stats", query_string={"source": source}, headers=OPS)

    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"source": [expected]}


def test_stats_take_a_source_no_longer_configured_whose_leads_remain(client, store, cipher, clock):
    leads_in(store, cipher, clock, LeadStatus.REJECTED, source="gone-form")

    stats = client.get("/v1/stats", query_string={"source": "gone-form"}, headers=OPS).json

    assert stats["counts"]["rejected"] == 1


def test_stats_refuse_an_unknown_arg_naming_it(client):
    response = client.get("/v1/stats", query_string={"sources": "web"}, headers=OPS)

    assert response.status_code == 422
    assert response.json["error"]["fields"] == {"sources": ["unknown: expected only source"]}


def stored_by_an_earlier_release(store, lead):
    """Make `lead` as a release that kept no counts by source stored it: no mark, no count of its source."""
    store.redis.hdel(keys.lead_key(lead.id), keys.SOURCE_COUNTED_FIELD)
    status = store.leads.get(lead.id).status
    store.redis.hincrby(keys.source_status_counts_key(lead.source), status.value, -1)


def test_a_lead_taken_in_before_counts_by_source_is_left_out_of_them_through_its_transitions(
    client, store, cipher, clock
):
    [earlier] = leads_in(store, cipher, clock, LeadStatus.QUEUED, source="web")
    stored_by_an_earlier_release(store, earlier)
    batch = store.batches.claim(clock.now(), 10, 30)
    store.batches.settle(batch.id, [Outcome(earlier.id, LeadStatus.DELIVERED, "ok")], clock.now(), release=True)
    [later] = leads_in(store, cipher, clock, LeadStatus.QUEUED, source="web")

    counts = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json["counts"]

    assert {status: n for status, n in counts.items() if n} == {"queued": 1}  # the later lead; no queued -1
    assert client.get("/v1/stats", headers=OPS).json["counts"]["delivered"] == 1


def test_stats_of_a_source_say_since_when_its_leads_are_counted_while_an_earlier_lead_is_held(
    client, store, cipher, clock
):
    [earlier] = leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")
    stored_by_an_earlier_release(store, earlier)
    clock.advance(60)
    store.leads.start_counting_by_source(clock.now())  # the upgraded worker's start
    began = clock.now()
    clock.advance(60)
    store.leads.start_counting_by_source(clock.now())  # a later start changes nothing
    leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")

    narrowed = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json
    everyone = client.get("/v1/stats", headers=OPS).json

    assert narrowed["counts"]["dead"] == 1 and narrowed["countsSourceSince"] == began
    assert everyone["counts"]["dead"] == 2 and everyone["countsSourceSince"] is None


def test_stats_of_a_source_say_its_counts_hold_every_lead_once_the_earlier_leads_are_purged(
    client, store, cipher, clock
):
    [earlier] = leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")
    stored_by_an_earlier_release(store, earlier)
    store.leads.start_counting_by_source(clock.now() + 1)
    clock.advance(31 * 86400)
    leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")
    store.retention.purge(clock.now())

    narrowed = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json

    assert narrowed["countsSourceSince"] is None
    assert narrowed["counts"]["dead"] == 1 == client.get("/v1/stats", headers=OPS).json["counts"]["dead"]


def test_a_relay_counting_by_source_from_its_first_lead_says_no_time(client, store, cipher, clock):
    # Started over no lead, by a worker whose clock runs a minute ahead of the web tier's: no lead is left out, so none
    # taken in after it (its receipt time earlier than the worker's start by that clock) makes the counts say a time.
    store.leads.start_counting_by_source(clock.now() + 60)
    leads_in(store, cipher, clock, LeadStatus.DEAD, source="web")

    narrowed = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json

    assert narrowed["countsSourceSince"] is None and narrowed["counts"]["dead"] == 1


def test_purging_a_lead_whose_hash_was_deleted_by_hand_takes_it_out_of_its_sources_counts(client, store, cipher, clock):
    store.leads.start_counting_by_source(clock.now())  # over an empty relay: every lead is counted by source
    [lead] = leads_in(store, cipher, clock, LeadStatus.REJECTED, source="web")
    store.redis.delete(keys.lead_key(lead.id))  # by hand
    clock.advance(31 * 86400)
    store.retention.purge(clock.now())

    counts = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json["counts"]

    assert counts["rejected"] == 0 == client.get("/v1/stats", headers=OPS).json["counts"]["rejected"]


def test_purging_a_lead_of_an_earlier_release_whose_hash_was_deleted_by_hand_leaves_its_sources_counts(
    client, store, cipher, clock
):
    [earlier] = leads_in(store, cipher, clock, LeadStatus.REJECTED, source="web")
    stored_by_an_earlier_release(store, earlier)
    clock.advance(60)
    store.leads.start_counting_by_source(clock.now())
    clock.advance(2 * 86400)
    leads_in(store, cipher, clock, LeadStatus.REJECTED, source="web")  # counted; not due when the earlier one is
    store.redis.delete(keys.lead_key(earlier.id))  # by hand
    clock.advance(29 * 86400)
    assert store.retention.purge(clock.now()).leads == 1

    counts = client.get("/v1/stats", query_string={"source": "web"}, headers=OPS).json["counts"]

    assert counts["rejected"] == 1 == client.get("/v1/stats", headers=OPS).json["counts"]["rejected"]


@pytest.fixture
def shell(monkeypatch, redis):
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_cli_stats_of_a_source_count_its_leads_alone(shell, store, cipher, clock, capsys):
    some_leads_of_two_sources(store, cipher, clock)

    code, out, _ = run(capsys, "stats", "--source", "partner")

    assert code == 0
    assert out["countsSource"] == "partner"
    assert {status: n for status, n in out["counts"].items() if n} == {"dead": 12, "delivered": 1}


@pytest.mark.parametrize(
    ("source", "expected"), [pytest.param("Web", SOURCE_EXPECTED, id="no-slug"), ("acme-from", UNKNOWN_EXPECTED)]
)
def test_cli_stats_refuse_a_source_that_is_no_known_slug(shell, store, cipher, clock, capsys, source, expected):
    some_leads_of_two_sources(store, cipher, clock)

    code, out, err = run(capsys, "stats", "--source", source)

    assert (code, out) == (2, None)
    assert err == f"leadrelay: --source: {expected}\n"
