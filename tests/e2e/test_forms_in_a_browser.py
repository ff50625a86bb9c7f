"""Web forms end to end in headless Chromium: a landing page on one local origin posts to the relay on another.

The relay app is served over real HTTP on the real Redis; a worker process delivers to the careCycle
sandbox; the assertions are on the exact records the sandbox received.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.forms import iso_utc
from app.models import LeadStatus
from app.sources import LeadSource, SourceKind, SourceRegistry
from app.store import keys
from tests.browser import chromium, serve
from tests.support import FakeClock, wait_until

SLUG = "acme-dental"
HIDDEN_ORIGIN_SLUG = "acme-dental-private"  # takes posts from pages that hide their origin
NO_REFERRER = '<head><meta name="referrer" content="no-referrer">'
CONSENT_TEXT = "By submitting you agree that Acme Dental may call and text you at the number given."
UTM_QUERY = "utm_source=google&utm_medium=cpc&utm_campaign=spring_promo&gclid=ExAmPlEgClId0123456789"
CERT = "https://cert.trustedform.com/2a8e5b3c1d4f6e7a8b9c0d1e2f3a4b5c6d7e8f90"
LEADID = "6E3A7E5B-1C2D-4E5F-8A9B-0C1D2E3F4A5B"

OFFER_PAGE = """<!doctype html>
<html><head><title>Spring offer</title><style>.hp {{ position: absolute; left: -10000px; }}</style></head>
<body>
<form id="lead" method="post" action="{relay}/v1/forms/{slug}">
  <input name="first_name" required> <input name="last_name" required>
  <input name="phone" type="tel" required> <input name="email" type="email"> <input name="zip">
  <input type="hidden" name="utm_source"> <input type="hidden" name="utm_medium">
  <input type="hidden" name="utm_campaign"> <input type="hidden" name="gclid">
  <input type="hidden" name="page_url">
  <input type="hidden" name="tcpa_consent_text" value="{consent}">
  <label><input type="checkbox" name="consent" value="yes"> {consent}</label>
  <div class="hp" aria-hidden="true">
    <label>Leave this field empty <input name="company_website" tabindex="-1" autocomplete="off"></label>
  </div>
  <button id="send">Request a call</button>
</form>
<script>
  const params = new URLSearchParams(location.search);
  for (const name of ["utm_source", "utm_medium", "utm_campaign", "gclid"]) {{
    document.querySelector(`[name=${{name}}]`).value = params.get(name) || "";
  }}
  document.querySelector("[name=page_url]").value = location.href;
</script>
</body></html>"""

FETCH_PAGE = """<!doctype html>
<html><head><title>Quote</title></head>
<body>
<form id="quote"><input name="phone" value="312-555-0187"><input name="full_name" value="Sam Example">
  <input name="zip" value="60601"><input name="utm_source" value="newsletter"></form>
<pre id="formdata-result"></pre><pre id="json-result"></pre>
<script>
  async function send(target, init) {{
    try {{
      const response = await fetch("{relay}/v1/forms/{slug}", {{method: "POST", ...init}});
      const answer = {{status: response.status, body: await response.json()}};
      document.getElementById(target).textContent = JSON.stringify(answer);
    }} catch (error) {{
      document.getElementById(target).textContent = JSON.stringify({{error: String(error)}});
    }}
  }}
  send("formdata-result", {{body: new FormData(document.getElementById("quote"))}}).then(() => send("json-result", {{
    headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{phone: "+1 646 555 0100", first_name: "Ana", last_name: "Lopez", zip: "10001",
      page_url: location.href, xxTrustedFormCertUrl: "{cert}", universal_leadid: "{leadid}", utm_campaign: "fall"}}),
  }}));
</script>
</body></html>"""


@dataclass
class Site:
    """The landing pages' origin and the relay's, both served over loopback HTTP."""

    landing: str
    relay: str
    relay_app: Flask
    seen: list[tuple[str, str]]  # (method, path) of every request the relay received, in order
    consent_at: str


def landing_app(config: dict[str, str]) -> Flask:
    app = Flask("landing")

    @app.get("/offer")
    def offer() -> str:
        return OFFER_PAGE.format(relay=config["relay"], slug=SLUG, consent=CONSENT_TEXT)

    @app.get("/private-offer/<slug>")
    def private_offer(slug: str) -> str:
        # A page whose Referrer-Policy is no-referrer: the browser posts its form with `Origin: null`.
        page = OFFER_PAGE.format(relay=config["relay"], slug=slug, consent=CONSENT_TEXT)
        return page.replace("<head>", NO_REFERRER, 1)

    @app.get("/quote")
    def quote() -> str:
        return FETCH_PAGE.format(relay=config["relay"], slug=SLUG, cert=CERT, leadid=LEADID)

    @app.get("/thanks")
    def thanks() -> str:
        return "<!doctype html><title>Thanks</title><h1 id='thanks'>Thank you, we will call you soon.</h1>"

    return app


def recording(app: Flask, seen: list[tuple[str, str]]) -> Any:
    inner = app.wsgi_app

    def record(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return inner(environ, start_response)

    return record


@pytest.fixture
def site(relay) -> Iterator[Site]:
    config: dict[str, str] = {}
    with serve(landing_app(config)) as landing:
        source = LeadSource(
            slug=SLUG,
            kind=SourceKind.FORM,
            source_id="src_acme_dental",
            allowed_origins=(landing,),
            redirect_allowlist=(f"{landing}/thanks",),
            thank_you_url=f"{landing}/thanks",
            static_custom_fields={"lead_source": "landing-page"},
        )
        hiding = dataclasses.replace(source, slug=HIDDEN_ORIGIN_SLUG, accept_null_origin=True)
        # The web tier's clock stands still, so the consent time on each record is known exactly; it is
        # real time, so the worker (on the real clock) finds the leads due.
        clock = FakeClock(start=float(int(time.time())))
        app = create_app(relay.settings, redis=relay.redis, clock=clock, sources=SourceRegistry([source, hiding]))
        seen: list[tuple[str, str]] = []
        app.wsgi_app = recording(app, seen)  # type: ignore[method-assign]
        with serve(app) as relay_url:
            config["relay"] = relay_url
            relay.start_worker("forms-e2e")
            yield Site(landing, relay_url, app, seen, iso_utc(clock.now()))


def delivered_records(sandbox, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    records = {
        r["externalId"]: r for request in sandbox.sandbox.requests if request.status == 200 for r in request.records
    }
    return {lead_id: records[lead_id] for lead_id in lead_ids if lead_id in records}


def stored_ids(relay) -> list[str]:
    return [member.decode() for member in relay.redis.zrange(keys.leads_index_key(), 0, -1)]


def test_a_native_form_post_lands_on_the_thank_you_page_and_its_lead_reaches_carecycle(site, relay, sandbox):
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(f"{site.landing}/offer?{UTM_QUERY}")
        for name, value in {
            "first_name": "Jane",
            "last_name": "Example",
            "phone": "(212) 555-0142",
            "email": "jane.example@example.com",
            "zip": "10001",
        }.items():
            browser.find_element(By.NAME, name).send_keys(value)
        browser.find_element(By.NAME, "consent").click()
        browser.find_element(By.ID, "send").click()
        wait_until(lambda: browser.current_url == f"{site.landing}/thanks", timeout=10)
        assert browser.find_element(By.ID, "thanks").text == "Thank you, we will call you soon."

    [lead_id] = stored_ids(relay)
    wait_until(lambda: delivered_records(sandbox, [lead_id]), timeout=15)
    assert delivered_records(sandbox, [lead_id])[lead_id] == {
        "phoneNumber": "+12125550142",
        "firstName": "Jane",
        "lastName": "Example",
        "email": "jane.example@example.com",
        "postalCode": "10001",
        "timezone": "America/New_York",
        "state": "NY",
        "city": "New York",
        "externalId": lead_id,
        "sourceId": "src_acme_dental",
        "customFields": [
            {"fieldKey": "lead_source", "value": "landing-page"},
            {"fieldKey": "tcpa_consent_text", "value": CONSENT_TEXT},
            {"fieldKey": "tcpa_consent_at", "value": site.consent_at},
            {"fieldKey": "page_url", "value": f"{site.landing}/offer?{UTM_QUERY}"},
            {"fieldKey": "client_ip", "value": "127.0.0.1"},
            {"fieldKey": "utm_source", "value": "google"},
            {"fieldKey": "utm_medium", "value": "cpc"},
            {"fieldKey": "utm_campaign", "value": "spring_promo"},
            {"fieldKey": "gclid", "value": "ExAmPlEgClId0123456789"},
        ],
    }
    # careCycle has the record before the worker has its answer: the lead is settled a moment later.
    wait_until(lambda: relay.status(lead_id)["status"] == "delivered", timeout=10)


def test_a_bot_filling_the_honeypot_sees_the_same_thank_you_page_and_nothing_is_delivered(site, relay, sandbox):
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(f"{site.landing}/offer")
        for name, value in {"first_name": "Bot", "last_name": "Bot", "phone": "2125550199", "zip": "10001"}.items():
            browser.find_element(By.NAME, name).send_keys(value)
        # A form-filling bot fills every input, including the one people never see.
        browser.execute_script("document.querySelector('[name=company_website]').value = 'https://spam.example';")
        browser.find_element(By.ID, "send").click()
        wait_until(lambda: browser.current_url == f"{site.landing}/thanks", timeout=10)

    [lead_id] = stored_ids(relay)
    assert relay.status(lead_id)["status"] == LeadStatus.SPAM.value
    assert relay.store.batches.depth() == 0
    assert sandbox.sandbox.requests == []


def test_cross_origin_fetch_posts_formdata_and_json_and_the_page_reads_the_answers(site, relay, sandbox):
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(f"{site.landing}/quote")
        wait_until(lambda: browser.find_element(By.ID, "json-result").text, timeout=10)
        form_data = json.loads(browser.find_element(By.ID, "formdata-result").text)
        as_json = json.loads(browser.find_element(By.ID, "json-result").text)

    assert form_data["status"] == as_json["status"] == 202
    assert form_data["body"]["status"] == as_json["body"]["status"] == "queued"
    assert form_data["body"]["warnings"] == as_json["body"]["warnings"] == []
    path = f"/v1/forms/{SLUG}"
    assert [m for m, p in site.seen if p == path] == ["POST", "OPTIONS", "POST"]  # JSON needs a preflight
    ids = [form_data["body"]["id"], as_json["body"]["id"]]
    wait_until(lambda: len(delivered_records(sandbox, ids)) == 2, timeout=15)
    records = delivered_records(sandbox, ids)
    assert records[ids[0]] == {
        "phoneNumber": "+13125550187",
        "firstName": "Sam",
        "lastName": "Example",
        "postalCode": "60601",
        "timezone": "America/Chicago",
        "state": "IL",
        "city": "Chicago",
        "externalId": ids[0],
        "sourceId": "src_acme_dental",
        "customFields": [
            {"fieldKey": "lead_source", "value": "landing-page"},
            {"fieldKey": "page_url", "value": f"{site.landing}/"},  # the Referer: cross-origin, only the origin
            {"fieldKey": "client_ip", "value": "127.0.0.1"},
            {"fieldKey": "utm_source", "value": "newsletter"},
        ],
    }
    assert records[ids[1]] == {
        "phoneNumber": "+16465550100",
        "firstName": "Ana",
        "lastName": "Lopez",
        "postalCode": "10001",
        "timezone": "America/New_York",
        "state": "NY",
        "city": "New York",
        "externalId": ids[1],
        "sourceId": "src_acme_dental",
        "customFields": [
            {"fieldKey": "lead_source", "value": "landing-page"},
            {"fieldKey": "page_url", "value": f"{site.landing}/quote"},
            {"fieldKey": "client_ip", "value": "127.0.0.1"},
            {"fieldKey": "trustedform_cert_url", "value": CERT},
            {"fieldKey": "jornaya_leadid", "value": LEADID},
            {"fieldKey": "utm_campaign", "value": "fall"},
        ],
    }


def fill_offer(browser) -> None:
    from selenium.webdriver.common.by import By

    for name, value in {"first_name": "Jane", "last_name": "Example", "phone": "2125550142", "zip": "10001"}.items():
        browser.find_element(By.NAME, name).send_keys(value)
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.ID, "send").click()


def test_a_page_hiding_its_origin_is_refused_by_a_source_that_does_not_take_it_and_told_which_setting_does(site, relay):
    with chromium() as browser:
        browser.get(f"{site.landing}/private-offer/{SLUG}")
        fill_offer(browser)
        wait_until(lambda: "accept_null_origin" in browser.page_source, timeout=10)
        assert "Origin: null" in browser.page_source

    assert stored_ids(relay) == []


def test_a_page_hiding_its_origin_posts_to_a_source_that_takes_it_and_lands_on_the_thank_you_page(site, relay, sandbox):
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(f"{site.landing}/private-offer/{HIDDEN_ORIGIN_SLUG}")
        fill_offer(browser)
        wait_until(lambda: browser.current_url == f"{site.landing}/thanks", timeout=10)
        assert browser.find_element(By.ID, "thanks").text == "Thank you, we will call you soon."

    [lead_id] = stored_ids(relay)
    wait_until(lambda: relay.status(lead_id)["status"] == "delivered", timeout=15)
