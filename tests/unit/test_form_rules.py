"""Web-form intake rules: honeypot, rate limits and the client IP, double-submit and duplicate windows."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from app import create_app, crypto
from app.config import ConfigError, Settings
from app.crypto import RecordCipher
from app.forms import ip_without_port
from app.models import LeadStatus
from app.sources import SourceRegistry
from app.store import keys
from tests.factories import make_phone
from tests.intake_support import (
    FORM_URL,
    LANDING,
    THANKS,
    URLENCODED,
    custom_fields,
    form,
    form_source,
    stored_ids,
    stored_record,
)
from tests.metricscheck import scrape


@pytest.fixture
def make_client(settings, redis, clock):
    def build(*sources, **setting_changes):
        configured = settings.replace(**setting_changes) if setting_changes else settings
        app = create_app(configured, redis=redis, clock=clock, sources=SourceRegistry(sources or [form_source()]))
        return app.test_client()

    return build


def fingerprint_of(settings, value: str) -> str:
    """What Redis key names carry instead of a phone number (on a Redis whose fingerprint secret is the initial one)."""
    return crypto.fingerprint_of(RecordCipher(settings.leadrelay_encryption_key).initial_fingerprint_secret(), value)


def post_form(client, fields, ip="203.0.113.7", **headers):
    return client.post(
        FORM_URL, data=urlencode(fields), content_type=URLENCODED, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


@pytest.mark.parametrize(
    "accept", [pytest.param("text/html", id="native-form"), pytest.param("application/json", id="fetch")]
)
def test_honeypot_catch_is_stored_as_spam_and_answered_like_a_person(make_client, store, accept):
    client = make_client()
    person = post_form(client, form(company_website=""), Accept=accept)
    bot = post_form(client, form(company_website="https://spam.example"), ip="198.51.100.9", Accept=accept)

    assert bot.status_code == person.status_code
    assert bot.headers.get("Location") == person.headers.get("Location")
    if accept == "application/json":
        assert set(bot.json) == set(person.json) and bot.json["status"] == person.json["status"] == "queued"
        assert bot.json["warnings"] == person.json["warnings"] == []
    counts = store.leads.status_counts()
    assert (counts[LeadStatus.QUEUED], counts[LeadStatus.SPAM]) == (1, 1)
    if accept == "application/json":
        assert store.leads.get(bot.json["id"]).status is LeadStatus.SPAM
    assert store.batches.depth() == 1


def test_honeypot_field_name_is_per_source_and_never_forwarded(make_client, redis, settings):
    client = make_client(form_source(honeypot_field="fax_number"))

    response = post_form(client, form(fax_number="", company_website="a real answer"), Accept="application/json")

    record = stored_record(redis, settings, response.json["id"])
    assert "fax_number" not in custom_fields(record)
    assert custom_fields(record)["company_website"] == "a real answer"


def test_a_bot_reusing_a_persons_phone_does_not_swallow_that_persons_post(make_client, store):
    client = make_client()
    phone = make_phone()

    post_form(client, form(phone=phone, company_website="x"))
    person = post_form(client, form(phone=phone), Accept="application/json")

    assert store.leads.get(person.json["id"]).status is LeadStatus.QUEUED


def test_form_limits_posts_per_client_ip_per_minute_with_429_and_retry_after(make_client, redis, clock):
    client = make_client(form_source(rate_limit_per_ip_per_min=2))
    clock.current = 1_800_000_015.0  # 45 s before the minute ends

    answers = [post_form(client, form()).status_code for _ in range(3)]
    refused = post_form(client, form())
    other_ip = post_form(client, form(), ip="203.0.113.8")

    assert answers == [303, 303, 429]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"
    assert refused.json["error"]["code"] == "RATE_LIMITED"
    assert other_ip.status_code == 303
    assert len(stored_ids(redis)) == 3
    clock.advance(45)
    assert post_form(client, form()).status_code == 303


def test_form_limits_posts_per_source_per_minute_across_clients(make_client, redis):
    client = make_client(form_source(rate_limit_per_min=3))

    answers = [post_form(client, form(), ip=f"203.0.113.{n}").status_code for n in range(1, 5)]

    assert answers == [303, 303, 303, 429]
    assert len(stored_ids(redis)) == 3


def test_invalid_posts_count_against_the_limit_too_and_past_it_are_refused_with_429(make_client, redis):
    client = make_client(form_source(rate_limit_per_ip_per_min=2))

    answers = [post_form(client, form(phone="12"), Accept="application/json").status_code for _ in range(3)]

    assert answers == [422, 422, 429]
    assert post_form(client, form()).status_code == 429
    assert stored_ids(redis) == []


def test_posts_past_the_limit_are_counted_as_throttled_not_as_what_they_would_have_been(make_client):
    client = make_client(form_source(rate_limit_per_ip_per_min=1))

    def counts():
        samples = scrape(client)
        return {
            outcome: samples.get(("leadrelay_intake_leads_total", (("outcome", outcome), ("source", "acme-dental"))), 0)
            for outcome in ("accepted", "invalid", "throttled")
        }

    before = counts()
    answers = [
        post_form(client, form()).status_code,
        post_form(client, form(phone="12"), Accept="application/json").status_code,
        post_form(client, form()).status_code,
    ]
    after = counts()

    assert answers == [303, 429, 429]
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "accepted": 1,
        "invalid": 0,
        "throttled": 2,
    }


def test_a_honeypot_post_counts_against_the_limit_like_any_other(make_client, redis):
    client = make_client(form_source(rate_limit_per_ip_per_min=1))

    caught = post_form(client, form(company_website="x"))
    person = post_form(client, form())

    assert [caught.status_code, person.status_code] == [303, 429]
    assert len(stored_ids(redis)) == 1


def test_ipv6_clients_are_limited_per_64_network(make_client):
    client = make_client(form_source(rate_limit_per_ip_per_min=1))

    first = post_form(client, form(), ip="2001:db8:1:2::1")
    same_network = post_form(client, form(), ip="2001:db8:1:2::ffff")
    other_network = post_form(client, form(), ip="2001:db8:1:3::1")

    assert [first.status_code, same_network.status_code, other_network.status_code] == [303, 429, 303]


@pytest.mark.parametrize(
    ("hops", "expected_ip"),
    [pytest.param(0, "10.0.0.5", id="no-proxy-trusted"), pytest.param(1, "198.51.100.23", id="one-proxy-trusted")],
)
def test_client_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy(
    make_client, redis, settings, hops, expected_ip
):
    client = make_client(leadrelay_trusted_proxy_hops=hops)

    response = post_form(
        client, form(), ip="10.0.0.5", Accept="application/json", **{"X-Forwarded-For": "1.2.3.4, 198.51.100.23"}
    )

    assert custom_fields(stored_record(redis, settings, response.json["id"]))["client_ip"] == expected_ip


@pytest.mark.parametrize(
    ("hops", "expected_ip"),
    [
        pytest.param(("203.0.113.5:50001", "198.51.100.7:50002"), "203.0.113.5", id="ipv4-and-port"),
        pytest.param(("[2001:db8:1::5]:50001", "[2001:db8:2::7]:50002"), "2001:db8:1::5", id="ipv6-and-port"),
        pytest.param(("[2001:db8:1::5]", "[2001:db8:2::7]"), "2001:db8:1::5", id="ipv6-in-brackets"),
    ],
)
def test_a_trusted_proxy_hop_that_carries_the_clients_port_gives_the_clients_ip(
    make_client, redis, settings, hops, expected_ip
):
    # Azure Application Gateway writes the client's address with its port: each visitor is still a client
    # of their own for the per-IP limit, and the lead records the IP alone.
    client = make_client(form_source(rate_limit_per_ip_per_min=1), leadrelay_trusted_proxy_hops=1)

    answers = [
        post_form(client, form(), ip="10.0.0.1", Accept="application/json", **{"X-Forwarded-For": hop}) for hop in hops
    ]

    assert [answer.status_code for answer in answers] == [202, 202]
    assert custom_fields(stored_record(redis, settings, answers[0].json["id"]))["client_ip"] == expected_ip


@pytest.mark.parametrize(
    ("address", "ip"),
    [
        pytest.param("203.0.113.5:50001", "203.0.113.5", id="ipv4-port"),
        pytest.param("[2001:db8::5]:443", "2001:db8::5", id="ipv6-port"),
        pytest.param("[2001:db8::5]", "2001:db8::5", id="ipv6-brackets"),
        pytest.param("203.0.113.5", "203.0.113.5", id="ipv4"),
        pytest.param("2001:db8::5", "2001:db8::5", id="ipv6-bare-kept-whole"),
        pytest.param("unknown", "unknown", id="no-address"),
        pytest.param("proxy.internal:8080", "proxy.internal:8080", id="host-name-and-port"),
        pytest.param("203.0.113.5:http", "203.0.113.5:http", id="port-not-a-number"),
        pytest.param(None, None, id="none"),
    ],
)
def test_a_client_address_loses_only_a_port_written_after_its_ip(address, ip):
    assert ip_without_port(address) == ip


def test_a_proxy_hop_that_is_no_address_is_recorded_as_given_and_limited_as_one_unknown_client(
    make_client, redis, settings
):
    client = make_client(form_source(rate_limit_per_ip_per_min=1), leadrelay_trusted_proxy_hops=1)

    answers = [
        post_form(client, form(), ip="10.0.0.1", Accept="application/json", **{"X-Forwarded-For": hop})
        for hop in ("unknown:50001", "proxy.internal:50002")
    ]

    assert [answer.status_code for answer in answers] == [202, 429]
    assert custom_fields(stored_record(redis, settings, answers[0].json["id"]))["client_ip"] == "unknown:50001"


def test_spoofed_x_forwarded_for_does_not_escape_the_per_ip_limit_without_a_trusted_proxy(make_client):
    client = make_client(form_source(rate_limit_per_ip_per_min=1))

    answers = [post_form(client, form(), **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code for n in range(2)]

    assert answers == [303, 429]


def test_double_submit_of_the_same_phone_within_the_window_returns_the_first_lead(make_client, redis, settings):
    client = make_client(form_source(double_submit_seconds=600))
    phone = make_phone()
    window_key = keys.idempotency_key("acme-dental", f"phone:{fingerprint_of(settings, phone)}")

    first = post_form(client, form(phone=phone), Accept="application/json")
    again = post_form(client, form(phone=phone, first_name="Janet"), Accept="application/json")
    window = redis.ttl(window_key)
    redis.delete(window_key)  # the window ends (Redis expires the key on its own clock)
    later = post_form(client, form(phone=phone), Accept="application/json")

    assert again.status_code == 202 and again.json["id"] == first.json["id"]
    assert 595 <= window <= 600
    assert later.json["id"] != first.json["id"]
    assert len(stored_ids(redis)) == 2
    assert not [key for key in redis.keys() if phone[2:].encode() in key]  # key names carry no phone


def test_a_double_submit_is_answered_as_queued_whatever_became_of_the_first_lead(make_client, redis):
    client = make_client(form_source(double_submit_seconds=600))
    phone = make_phone()
    first = post_form(client, form(phone=phone), Accept="application/json")
    redis.hset(keys.lead_key(first.json["id"]), "status", "delivered")

    again = post_form(client, form(phone=phone), Accept="application/json")
    again_with_a_typo = post_form(client, form(phone=phone, dob="02/30/1950"), Accept="application/json")

    assert again.json["id"] == first.json["id"] and again.json["status"] == "queued"
    assert again_with_a_typo.json["id"] == first.json["id"]
    assert [w.split(":")[0] for w in again_with_a_typo.json["warnings"]] == ["dateOfBirth"]  # as for a new post


def test_double_submit_is_per_source(make_client, redis):
    other = form_source(slug="other-form")
    client = make_client(form_source(), other)
    phone = make_phone()

    first = post_form(client, form(phone=phone), Accept="application/json")
    second = client.post("/v1/forms/other-form", json=form(phone=phone))

    assert second.json["id"] != first.json["id"]
    assert len(stored_ids(redis)) == 2


def test_same_person_within_the_sources_duplicate_window_is_kept_as_duplicate(make_client, store, clock, settings):
    client = make_client(form_source(double_submit_seconds=60, duplicate_window_seconds=7 * 86400))
    phone = make_phone()

    first = post_form(client, form(phone=phone), Accept="application/json")
    clock.advance(3 * 86400)
    window_key = keys.idempotency_key("acme-dental", f"phone:{fingerprint_of(settings, phone)}")
    store.redis.delete(window_key)  # the double-submit window ended
    second = post_form(client, form(phone=phone), Accept="application/json")

    assert second.json["id"] != first.json["id"]
    assert second.json["status"] == "queued"  # the public form does not tell who was seen before
    assert store.leads.get(first.json["id"]).status is LeadStatus.QUEUED
    assert store.leads.get(second.json["id"]).status is LeadStatus.DUPLICATE
    assert store.batches.depth() == 1


def test_a_post_from_the_landing_page_carries_its_origin_through_to_the_thank_you_page(make_client):
    client = make_client()

    response = post_form(client, form(), Origin=LANDING, Referer=f"{LANDING}/offer")

    assert response.status_code == 303
    assert response.headers["Location"] == THANKS
    assert response.headers["Access-Control-Allow-Origin"] == LANDING


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("0", 0, id="zero-trusts-no-proxy"),
        pytest.param("2", 2, id="two-proxies"),
        pytest.param(" 1 ", 1, id="spaces"),
    ],
)
def test_trusted_proxy_hops_setting_is_read_from_the_environment(raw, expected):
    assert Settings.from_env({"LEADRELAY_TRUSTED_PROXY_HOPS": raw}).leadrelay_trusted_proxy_hops == expected


@pytest.mark.parametrize("raw", ["-1", "one", "1.5"])
def test_trusted_proxy_hops_setting_refuses_what_is_no_count_naming_the_variable(raw):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"LEADRELAY_TRUSTED_PROXY_HOPS": raw})

    assert refused.value.problems[0].startswith("LEADRELAY_TRUSTED_PROXY_HOPS: ")
