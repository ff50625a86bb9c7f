"""The ops dashboard in headless Chromium: token, live numbers, failures with reasons, retry, pause banner."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest

from app import create_app
from app.crypto import RecordCipher
from app.models import LeadStatus
from app.sources import SourceRegistry
from app.store import keys
from app.store.batches import Outcome
from app.store.fetches import Completion
from tests.browser import chromium, png_distinct_colors, serve
from tests.conftest import OPS_TOKEN
from tests.factories import make_lead, make_source
from tests.intake_support import GOOGLE_KEY, google_source
from tests.support import wait_until


@pytest.fixture
def seeded(settings, real_redis):
    """A relay app on the real Redis holding one dead, one rejected and one delivered lead."""
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = [make_lead(), make_lead(), make_lead()]
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], now)
    batch = store.batches.claim(now, 200, 60)
    store.batches.settle(
        batch.id,
        [
            Outcome(leads[0].id, LeadStatus.DEAD, "gave up", error="careCycle 503 INTERNAL_ERROR"),
            Outcome(leads[1].id, LeadStatus.REJECTED, "refused", error="Invalid phone number"),
            Outcome(leads[2].id, LeadStatus.DELIVERED, "accepted by careCycle"),
        ],
        now,
        release=True,
    )
    store.pause.pause("careCycle 401 UNAUTHORIZED: Invalid or missing API key", now, now + 30)
    return app, store, leads


def test_dashboard_shows_numbers_and_failures_and_retries_a_dead_lead(seeded, tmp_path: Path):
    app, store, (dead, rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)

        def failure_rows() -> dict[str, str]:
            rows = browser.execute_script(
                "return Array.from(document.querySelectorAll('#failures tr'))"
                ".map(r => [r.dataset.leadId, r.innerText]);"
            )
            return {lead_id: text for lead_id, text in rows if lead_id}

        def click_retry(lead_id: str) -> bool:
            try:
                browser.find_element(By.CSS_SELECTOR, f'tr[data-lead-id="{lead_id}"] button.retry').click()
            except StaleElementReferenceException:
                return False  # re-rendered between finding and clicking: find it again
            return True

        assert tuple(_card_value(browser, name) for name in ("dead", "rejected", "delivered-total")) == ("1", "1", "1")
        banner = browser.find_element(By.ID, "pause")
        assert banner.is_displayed() and "401 UNAUTHORIZED" in banner.text
        rows = failure_rows()
        assert "careCycle 503 INTERNAL_ERROR" in rows[dead.id] and "Invalid phone number" in rows[rejected.id]
        assert "+1******" in rows[dead.id]
        screenshot = Path(os.environ.get("LEADRELAY_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
        browser.save_screenshot(str(screenshot))

        wait_until(lambda: click_retry(dead.id))
        wait_until(lambda: store.leads.get(dead.id).status is LeadStatus.QUEUED)
        wait_until(lambda: _card_value(browser, "dead") == "0")
        remaining = list(failure_rows())

    assert remaining == [rejected.id]
    assert screenshot.stat().st_size > 10_000
    assert png_distinct_colors(screenshot) > 20
    audit = app.test_client().get("/v1/audit", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json["entries"]
    assert [(e["action"], e["actor"], e["leadId"]) for e in audit] == [("retry_lead", "alice", dead.id)]


def test_dashboard_refuses_a_wrong_token(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        browser.get(f"{url}/dashboard")
        browser.find_element(By.ID, "token").send_keys("not-a-token")
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        wait_until(lambda: "refused" in browser.find_element(By.ID, "login-error").text)

        assert browser.find_element(By.ID, "login").is_displayed()


def test_dashboard_announces_a_token_refused_while_the_board_was_open_and_puts_the_keyboard_in_the_token_field(
    seeded,
):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        browser.find_element(By.ID, "source").click()  # a keyboard or pointer on the board's controls
        browser.execute_script("sessionStorage.setItem('leadrelay.opsToken', 'revoked-token');")  # as after a restart
        wait_until(lambda: browser.find_element(By.ID, "login").is_displayed(), timeout=12)
        error = browser.find_element(By.ID, "login-error")
        shown = (error.text, error.get_attribute("role"), browser.execute_script("return document.activeElement.id;"))

    assert shown == ("That token was refused.", "alert", "token")


@pytest.fixture
def many_rejected(settings, real_redis):
    """A relay app on the real Redis holding 55 rejected leads and one dead one."""
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = [make_lead() for _ in range(56)]
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], now)
    batch = store.batches.claim(now, 200, 60)
    outcomes = [Outcome(lead.id, LeadStatus.REJECTED, "refused", error="Invalid phone number") for lead in leads[1:]]
    store.batches.settle(batch.id, [Outcome(leads[0].id, LeadStatus.DEAD, "gave up"), *outcomes], now, release=True)
    return app, leads


def _open_dashboard(browser, url: str, typed_token: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{url}/dashboard")
    browser.find_element(By.ID, "token").send_keys(typed_token)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()


def _sign_in(browser, url: str, typed_token: str) -> None:
    """Open the dashboard, sign in with `typed_token` and wait for the first numbers it reads."""
    from selenium.webdriver.common.by import By

    _open_dashboard(browser, url, typed_token)
    wait_until(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true")


def _card_value(browser, name: str) -> str | None:
    # The page re-renders every few seconds: reads happen in one script call, so they see one render.
    return browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e && e.textContent;", f"#card-{name} .value"
    )


# Every card as {name: [label, value]}, read in one script call so that they are of one render.
_CARDS = (
    "return Object.fromEntries(Array.from(document.querySelectorAll('#cards .card'),"
    " (c) => [c.id.replace('card-', ''),"
    " [c.querySelector('.label').textContent, c.querySelector('.value').textContent]]));"
)


def _failing_rows(browser) -> int:
    return int(browser.execute_script("return document.querySelectorAll('#failures tr[data-lead-id]').length;"))


def test_dashboard_shows_failing_leads_past_the_first_fifty_on_asking(many_rejected):
    app, _leads = many_rejected
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        first = _failing_rows(browser)
        note = browser.find_element(By.ID, "more").text

        browser.find_element(By.CSS_SELECTOR, "#more button.more-rejected").click()
        wait_until(lambda: _failing_rows(browser) == 56)

        assert first == 51
        assert "Showing the newest 50 of 55 rejected leads." in note
        assert browser.find_element(By.ID, "more").text == ""


def test_dashboard_clears_a_refresh_error_once_the_relay_answers_again(seeded, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    import app.ops

    app_, _store, _leads = seeded
    real_snapshot = app.ops.read_snapshot
    with serve(app_) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)

        def unavailable(*args, **kwargs):
            raise RedisConnectionError("down")

        monkeypatch.setattr(app.ops, "read_snapshot", unavailable)
        wait_until(lambda: "Could not refresh" in browser.find_element(By.ID, "refresh-error").text, timeout=12)
        monkeypatch.setattr(app.ops, "read_snapshot", real_snapshot)
        wait_until(lambda: browser.find_element(By.ID, "refresh-error").text == "", timeout=12)

        assert browser.find_element(By.ID, "board").is_displayed()


def test_dashboard_takes_a_token_pasted_with_invisible_characters(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, f"\ufeff{OPS_TOKEN}\u200b")

        assert browser.find_element(By.ID, "board").is_displayed()


def test_dashboard_takes_a_token_pasted_with_the_bearer_of_a_copied_curl_line(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, f"Bearer {OPS_TOKEN}")

        assert browser.find_element(By.ID, "board").is_displayed()


def test_dashboard_refuses_a_token_no_browser_can_send_without_leaving_the_login(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _open_dashboard(browser, url, "tok\u2014en")
        wait_until(lambda: "not a token" in browser.find_element(By.ID, "login-error").text)

        assert browser.find_element(By.ID, "login").is_displayed()
        assert not browser.find_element(By.ID, "board").is_displayed()
        assert browser.execute_script("return sessionStorage.getItem('leadrelay.opsToken');") is None


@pytest.mark.parametrize("typed", [pytest.param("", id="nothing"), pytest.param("  \u200b", id="blanks")])
def test_dashboard_asks_for_a_token_when_the_field_is_sent_empty_not_for_a_character_none_was_typed(seeded, typed):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _open_dashboard(browser, url, typed)
        wait_until(lambda: browser.find_element(By.ID, "login-error").text)

        assert browser.find_element(By.ID, "login-error").text == "Paste an ops token first."
        assert not browser.find_element(By.ID, "board").is_displayed()


def test_dashboard_counts_a_lead_waiting_to_retry_as_retrying_not_also_as_queued(settings, real_redis):
    app, store, _retrying = _relay_with_retrying_leads(settings, real_redis, 300)
    waiting = make_lead()
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([waiting], [RecordCipher(settings.leadrelay_encryption_key).seal(waiting.record)], now)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        cards = browser.execute_script(
            "return ['queued', 'sending', 'retrying'].map(id => document.querySelector('#card-' + id + ' .value')"
            ".textContent);"
        )

    assert cards == ["1", "0", "1"]


def _lead_of_focus(browser) -> str | None:
    return browser.execute_script("const row = document.activeElement.closest('tr'); return row && row.dataset.leadId;")


def _wait_for_a_refresh(browser) -> None:
    """Wait until the failing leads have been rendered again (the auto-refresh, every few seconds)."""
    browser.execute_script("window.renderedBefore = document.querySelector('#failures tr');")
    wait_until(lambda: browser.execute_script("return !document.contains(window.renderedBefore);"), timeout=12)


def test_dashboard_keeps_the_keyboard_focus_on_a_lead_when_it_refreshes(seeded):
    app, _store, (_dead, rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "document.querySelector(`tr[data-lead-id='${arguments[0]}'] button.retry`).focus();", rejected.id
        )
        _wait_for_a_refresh(browser)

        assert _lead_of_focus(browser) == rejected.id


def test_dashboard_moves_the_keyboard_focus_to_the_next_lead_once_the_focused_one_is_retried(seeded):
    app, store, (dead, rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "document.querySelector(`tr[data-lead-id='${arguments[0]}'] button.retry`).focus();", dead.id
        )
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        wait_until(lambda: "queued again" in browser.find_element(By.ID, "message").text)
        wait_until(lambda: _failing_rows(browser) == 1)

        assert store.leads.get(dead.id).status is LeadStatus.QUEUED
        assert _lead_of_focus(browser) == rejected.id


@pytest.fixture
def failing_with_long_reasons(settings, real_redis):
    """A relay app on the real Redis holding two dead leads with ids as intake makes them and long reasons."""
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = [make_lead(id=uuid.uuid4().hex) for _ in range(2)]
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], now)
    batch = store.batches.claim(now, 200, 60)
    reason = "careCycle 422 VALIDATION_ERROR: " + "customFields.utm_campaign_name_of_the_spring_promotion " * 6
    store.batches.settle(
        batch.id, [Outcome(lead.id, LeadStatus.DEAD, "gave up", error=reason) for lead in leads], now, release=True
    )
    return app


@pytest.mark.parametrize(
    "width", [pytest.param(390, id="phone"), pytest.param(800, id="tablet"), pytest.param(1000, id="laptop")]
)
def test_dashboard_fits_a_narrow_screen_with_reasons_readable_and_retry_buttons_in_reach(
    failing_with_long_reasons, width
):
    app = failing_with_long_reasons
    with serve(app) as url, chromium() as browser:
        browser.set_window_size(width, 900)
        _sign_in(browser, url, OPS_TOKEN)
        layout = browser.execute_script(
            "const right = (e) => e.getBoundingClientRect().right;"
            "return {"
            "  viewport: document.documentElement.clientWidth,"
            "  page: document.documentElement.scrollWidth,"
            "  rightmost: Math.max(...Array.from(document.querySelectorAll('#board *')).map(right)),"
            "  reason: Math.min(...Array.from(document.querySelectorAll('#failures td.reason'))"
            "    .map((e) => e.getBoundingClientRect().width)),"
            "};"
        )

    assert layout["page"] <= layout["viewport"]
    assert layout["rightmost"] <= layout["viewport"]
    assert layout["reason"] >= 200  # some 25 characters a line


@pytest.mark.parametrize("width", [pytest.param(390, id="phone"), pytest.param(1280, id="wide")])
def test_dashboard_keeps_a_card_labels_span_on_one_line(seeded, width):
    app, store, _leads = seeded
    store.budget.announce_limit(60)  # a worker runs
    with serve(app) as url, chromium() as browser:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        _sign_in(browser, url, OPS_TOKEN)
        split = browser.execute_script(
            "return Array.from(document.querySelectorAll('#cards .label')).filter((label) => {"
            "  const text = label.firstChild, at = text.data.indexOf('(');"
            "  if (at < 0) return false;"
            "  const span = document.createRange(); span.setStart(text, at); span.setEnd(text, text.data.length);"
            "  return new Set(Array.from(span.getClientRects(), (r) => Math.round(r.top))).size > 1;"
            "}).map((label) => label.textContent);"
        )
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    assert split == []


RETRY_REASON = "careCycle 503 SERVICE_UNAVAILABLE"


def _relay_with_retrying_leads(settings, real_redis, *waits: float):
    """A relay app on the real Redis holding a lead retrying for each of `waits` (seconds from now to its next
    attempt; one passed is negative), with its store and its leads."""
    app = create_app(settings, redis=real_redis)
    return app, app.extensions["leadrelay"].store, _add_retrying_leads(app, settings, *waits)


def _add_retrying_leads(app, settings, *waits: float):
    """A lead retrying in `app` for each of `waits` (as `_relay_with_retrying_leads` has them), the leads returned."""
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = [make_lead() for _ in waits]
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], now)
    batch = store.batches.claim(now, 200, 60)
    outcomes = [
        Outcome(
            lead.id, LeadStatus.RETRYING, "503", error=RETRY_REASON, ready_at=now + wait, next_attempt_at=now + wait
        )
        for lead, wait in zip(leads, waits, strict=True)
    ]
    store.batches.settle(batch.id, outcomes, now, release=True)
    return leads


def test_dashboard_lists_leads_waiting_to_retry_with_their_reason_and_next_attempt(settings, real_redis):
    app, _, (retrying,) = _relay_with_retrying_leads(settings, real_redis, 300)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        row = browser.execute_script(
            "const row = document.querySelector(`#failures tr[data-lead-id='${arguments[0]}']`);"
            "return row && {text: row.innerText, retry: row.querySelector('button.retry') !== null};",
            retrying.id,
        )

    assert row is not None
    assert "retrying" in row["text"] and RETRY_REASON in row["text"] and "next attempt" in row["text"]
    assert not row["retry"]  # it is retried by itself; an operator's retry is for dead and rejected leads


def _next_attempt_shown(browser, lead_id: str) -> str:
    return browser.execute_script(
        "const row = document.querySelector(`#failures tr[data-lead-id='${arguments[0]}']`);"
        "return row ? row.lastElementChild.textContent : '';",
        lead_id,
    )


@pytest.mark.parametrize(
    ("worker", "paused", "said"),
    [
        pytest.param(True, True, "next attempt once delivery resumes", id="paused"),
        pytest.param(False, False, "next attempt once a worker runs", id="no-worker"),
        pytest.param(False, True, "next attempt once a worker runs and delivery resumes", id="both"),
    ],
)
def test_dashboard_says_a_retrying_lead_waits_while_retries_are_held_not_that_a_passed_time_is_its_next_attempt(
    settings, real_redis, worker, paused, said
):
    app, store, (due, later) = _relay_with_retrying_leads(settings, real_redis, -60, 600)
    now = app.extensions["leadrelay"].clock.now()
    if worker:
        store.budget.announce_limit(60)
    if paused:
        store.pause.pause("careCycle 401 UNAUTHORIZED: Invalid or missing API key", now, now + 30)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = (_next_attempt_shown(browser, due.id), _next_attempt_shown(browser, later.id))

    assert shown[0] == said  # its time has passed: no attempt comes at it
    assert shown[1].startswith(said + ", not before ")


def test_dashboard_gives_a_retrying_leads_next_attempt_time_while_delivery_goes_on(settings, real_redis):
    app, store, (retrying,) = _relay_with_retrying_leads(settings, real_redis, 600)
    store.budget.announce_limit(60)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = _next_attempt_shown(browser, retrying.id)

    assert re.fullmatch(r"next attempt \d+/\d+/\d{4}, .+ [A-Z]+", shown)


def test_dashboard_counts_meta_leads_waiting_for_retrieval(settings, real_redis):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([make_lead(status=LeadStatus.FETCHING, record={}) for _ in range(3)], ["", "", ""], now)
    store.fetch_pause.pause("Graph token expired (code 190)", now, now + 30)
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        fetching = _card_value(browser, "fetching")
        banner = browser.find_element(By.ID, "pause").text

    assert "retrieval paused" in banner
    assert fetching == "3"


def test_dashboard_says_the_relay_did_not_answer_and_how_old_the_numbers_shown_are(seeded):
    app, _store, _leads = seeded
    with chromium() as browser:
        from selenium.webdriver.common.by import By

        with serve(app) as url:
            _sign_in(browser, url, OPS_TOKEN)
            updated = browser.find_element(By.ID, "updated").text.removeprefix("updated ")
        wait_until(lambda: browser.find_element(By.ID, "refresh-error").text, timeout=12)
        error = browser.find_element(By.ID, "refresh-error").text

    assert "the relay did not answer" in error
    assert f"shown are from {updated}" in error


def test_dashboard_says_how_long_ago_the_last_delivery_was_and_nothing_of_the_clock_when_the_browsers_agrees(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        last = _card_value(browser, "last-delivery")
        note = _clock_note(browser)

    assert last is not None and last.endswith(" s ago")
    assert note == ""


def _set_browser_clock_off(browser, seconds: float) -> None:
    """Shift the tab's clock (`Date.now()`, `new Date()`) `seconds` from the true time, before the page loads: a
    laptop whose clock is off."""
    script = f"""
    (() => {{
      const RealDate = Date, offMs = {seconds * 1000};
      class ShiftedDate extends RealDate {{
        constructor(...args) {{ if (args.length) super(...args); else super(RealDate.now() + offMs); }}
        static now() {{ return RealDate.now() + offMs; }}
      }}
      globalThis.Date = ShiftedDate;
    }})();
    """
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})


def _clock_note(browser) -> str | None:
    return browser.execute_script("const e = document.getElementById('clock-note'); return e && e.innerText;")


@pytest.mark.parametrize("off_seconds", [600, -600])
def test_dashboard_says_how_long_ago_the_last_delivery_was_by_the_relays_clock_not_a_browser_clock_off(
    seeded, off_seconds
):
    app, _store, _leads = seeded  # a lead delivered a moment ago
    with serve(app) as url, chromium() as browser:
        _set_browser_clock_off(browser, off_seconds)
        _sign_in(browser, url, OPS_TOKEN)
        last = _card_value(browser, "last-delivery")
        note = _clock_note(browser)

    assert last is not None and re.fullmatch(r"\d+ s ago", last) and int(last.split()[0]) < 60
    assert note == (
        f"This computer's clock is 10 min {'ahead of' if off_seconds > 0 else 'behind'} the relay's: the times and"
        " ages shown are by the relay's clock."
    )


def test_dashboard_reads_the_stats_of_a_relay_that_gives_no_read_time_by_its_own_clock(seeded):
    # A relay of an earlier release (a rolling upgrade) gives no readAt: no offset is measured, none made up.
    app, _store, _leads = seeded  # a lead delivered a moment ago

    @app.after_request
    def without_read_at(response):
        body = response.get_json(silent=True) if response.is_json else None
        if isinstance(body, dict) and body.pop("readAt", None) is not None:
            response.set_data(json.dumps(body))
        return response

    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        last = _card_value(browser, "last-delivery")
        note = _clock_note(browser)
        updated = browser.execute_script("return document.getElementById('updated').textContent;")

    assert last is not None and re.fullmatch(r"\d+ s ago", last)
    assert note == ""
    assert re.fullmatch(r"updated \d+:\d+:\d+ .+", updated) and "Invalid" not in updated


def test_dashboard_gives_a_held_retrying_leads_time_not_passed_by_the_relays_clock_when_the_browsers_is_ahead(
    settings, real_redis
):
    app, store, (later,) = _relay_with_retrying_leads(settings, real_redis, 300)
    store.budget.announce_limit(60)
    now = app.extensions["leadrelay"].clock.now()
    store.pause.pause("careCycle 401 UNAUTHORIZED: Invalid or missing API key", now, now + 30)
    with serve(app) as url, chromium() as browser:
        _set_browser_clock_off(browser, 600)  # by it, the next attempt's time passed five minutes ago
        _sign_in(browser, url, OPS_TOKEN)
        shown = _next_attempt_shown(browser, later.id)

    assert shown.startswith("next attempt once delivery resumes, not before ")


def test_dashboard_counts_the_delivered_leads_purged_after_the_retention_in_its_delivered_total(settings, real_redis):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = [make_lead(), make_lead()]
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(leads, [cipher.seal(lead.record) for lead in leads], now)
    batch = store.batches.claim(now, 200, 60)
    store.batches.settle(batch.id, [Outcome(lead.id, LeadStatus.DELIVERED, "ok") for lead in leads], now, True)
    assert store.retention.purge(now + store.retention.retention.lead_seconds + 1).leads == 2
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        label, value = browser.execute_script(_CARDS)["delivered-total"]
        since = browser.execute_script("return new Date(arguments[0] * 1000).toLocaleDateString();", now)

    assert (label, value) == (f"Delivered since {since}", "2")


def test_dashboard_shows_ages_and_estimates_in_the_unit_read_at_a_glance(settings, seeded):
    app, store, _leads = seeded
    waiting = make_lead()
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([waiting], [RecordCipher(settings.leadrelay_encryption_key).seal(waiting.record)], now)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = browser.execute_script("return [45, 600, 5 * 3600, 3 * 86400].map(duration);")
        oldest = _card_value(browser, "oldest")

    assert shown == ["45 s", "10 min", "5 h", "3 d"]  # an operator reads "3 d", not 259200
    assert re.fullmatch(r"\d+ (s|min|h|d)", oldest)


def test_dashboard_names_the_leads_that_ended_rejected_or_dead_in_the_last_hour_not_failed_uploads(settings, seeded):
    app, store, _leads = seeded  # one dead and one rejected lead, settled now
    store.pause.resume()
    _add_retrying_leads(app, settings, 60)
    now = app.extensions["leadrelay"].clock.now()
    store.outage.failing(RETRY_REASON, now)  # its upload failed: it retries, and ended nothing
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = browser.execute_script(_CARDS)["failed-1h"]
    stats = app.test_client().get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json

    assert shown == ["Rejected or dead (1 h)", str(stats["failed"]["last1h"])]
    assert stats["failed"]["last1h"] == 2


def test_dashboard_names_its_rate_budget_card_as_the_last_minutes_carecycle_requests_of_the_limit(seeded):
    app, store, _leads = seeded
    store.budget.announce_limit(60)  # a worker runs
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = browser.execute_script(_CARDS)["budget"]
    budget = app.test_client().get("/v1/stats", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json["rateBudget"]

    assert shown == ["careCycle requests (1 min)", f"{budget['usedLastMinute']} of {budget['limitPerMinute']}"]


def test_dashboard_names_its_oldest_card_for_every_waiting_lead_not_queued_ones_alone(settings, real_redis):
    app, _store, _leads = _relay_with_retrying_leads(settings, real_redis, 600)  # no lead queued: one retrying
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        cards = browser.execute_script(_CARDS)

    assert cards["queued"] == ["Queued", "0"]
    assert cards["oldest"][0] == "Oldest waiting" and re.fullmatch(r"\d+ s", cards["oldest"][1])


def test_dashboard_gives_no_age_of_an_oldest_waiting_lead_when_none_waits(seeded):
    app, _store, _leads = seeded  # every lead settled: none queued, sending or retrying
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        oldest = _card_value(browser, "oldest")

    assert oldest == "–"  # not "0 s", which reads as a lead that came in just now


def test_dashboard_shows_the_delivery_latency_in_the_unit_read_at_a_glance(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = browser.execute_script("return [0.84, 12.4, 917.563, null].map(latency);")
        card = browser.execute_script(
            "const e = document.querySelector('#card-p95'); return e.querySelector('.label').textContent + ': '"
            " + e.querySelector('.value').textContent;"
        )

    assert shown == ["0.8 s", "12 s", "15 min", "–"]  # through an outage, not "917.563"
    assert re.fullmatch(r"Latency p95 \(1 h\): (\d+\.\d s|\d+ (s|min|h|d)|–)", card)  # of the last hour's deliveries


def test_dashboard_leaves_an_unchanged_alert_as_it_is_so_a_screen_reader_announces_it_once(seeded):
    app, _store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "window.bannerChanges = 0;"
            "new MutationObserver((changes) => { window.bannerChanges += changes.length; })"
            "  .observe(document.getElementById('pause'), {childList: true, characterData: true, subtree: true});"
        )
        _wait_for_a_refresh(browser)
        changes = browser.execute_script("return window.bannerChanges;")

    assert changes == 0


def test_dashboard_asks_before_a_bulk_retry_saying_how_many_leads_it_queues_again(seeded):
    app, store, (dead, _rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "window.asked = []; window.confirm = (text) => { window.asked.push(text); return false; };"
        )
        browser.find_element(By.ID, "retry-dead").click()
        asked = wait_until(lambda: browser.execute_script("return window.asked.length && window.asked;"))

    assert asked == ["Queue 1 dead lead again?"]
    assert store.leads.get(dead.id).status is LeadStatus.DEAD  # answered no: nothing queued


def test_dashboard_offers_no_bulk_retry_of_zero_leads_and_says_there_are_none(settings, real_redis):
    from selenium.webdriver.common.by import By

    app = create_app(settings, redis=real_redis)  # nothing dead, nothing rejected
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "window.asked = []; window.confirm = (text) => { window.asked.push(text); return true; };"
        )
        browser.find_element(By.ID, "retry-dead").click()
        said = wait_until(lambda: browser.find_element(By.ID, "message").text)
        asked = browser.execute_script("return window.asked;")

    assert asked == []  # not "Queue 0 dead leads again?"
    assert said == "No dead lead to queue again."


def test_dashboard_asks_before_a_bulk_retry_with_the_count_as_it_is_then_not_at_the_last_poll(settings, seeded):
    from selenium.webdriver.common.by import By

    app, store, _leads = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "window.asked = []; window.confirm = (text) => { window.asked.push(text); return false; };"
        )
        # Between two polls an outage ends its leads' last attempts: two more are dead when the operator clicks.
        now = app.extensions["leadrelay"].clock.now()
        more = [make_lead(), make_lead()]
        store.leads.admit(more, [RecordCipher(settings.leadrelay_encryption_key).seal(x.record) for x in more], now)
        batch = store.batches.claim(now, 200, 60)
        store.batches.settle(batch.id, [Outcome(x.id, LeadStatus.DEAD, "gave up") for x in more], now, release=True)
        browser.find_element(By.ID, "retry-dead").click()
        asked = wait_until(lambda: browser.execute_script("return window.asked.length && window.asked;"))

    assert asked == ["Queue 3 dead leads again?"]


def test_dashboard_keeps_the_keyboard_focus_on_a_bulk_retry_button_once_it_is_done(seeded):
    app, store, (dead, _rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script("window.confirm = () => true; document.getElementById('retry-dead').focus();")
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        wait_until(lambda: "1 dead lead queued again." in browser.find_element(By.ID, "message").text)
        wait_until(lambda: _failing_rows(browser) == 1)
        focused = browser.execute_script("return document.activeElement.id;")

    assert store.leads.get(dead.id).status is LeadStatus.QUEUED
    assert focused == "retry-dead"


def test_dashboard_says_how_many_leads_a_bulk_retry_left_and_why(settings, real_redis):
    app = create_app(settings, redis=real_redis, sources=SourceRegistry([google_source()]))
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    refused = []
    for n in range(2):  # Google leads whose phone came in a question the source does not map: refused, kept
        body = {
            "lead_id": f"lead-{n}",
            "google_key": GOOGLE_KEY,
            "user_column_data": [
                {"column_id": "best_number", "string_value": f"(312) 555-01{n}9"},
                {"column_id": "POSTAL_CODE", "string_value": "10001"},
            ],
        }
        refused.append(app.test_client().post("/v1/webhooks/google/gads", json=body).json["id"])
    lead = make_lead(source="gads")
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([lead], [cipher.seal(lead.record)], now)
    batch = store.batches.claim(now, 200, 60)
    store.batches.settle(batch.id, [Outcome(lead.id, LeadStatus.REJECTED, "refused", error="x")], now, release=True)
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script("window.confirm = () => true;")
        browser.find_element(By.ID, "retry-rejected").click()
        wait_until(lambda: "queued again" in browser.find_element(By.ID, "message").text)
        message = browser.find_element(By.ID, "message").text

    assert message == (
        "1 rejected lead queued again. Not queued: 2 — the kept submission still fails normalization: phoneNumber."
    )
    assert [store.leads.get(lead_id).status for lead_id in refused] == [LeadStatus.REJECTED] * 2


def test_dashboard_shows_no_numbers_of_an_earlier_sign_in_when_the_next_cannot_read_any(seeded, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    import app.ops

    app_, _store, _leads = seeded
    with serve(app_) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        browser.find_element(By.ID, "logout").click()

        def unavailable(*args, **kwargs):
            raise RedisConnectionError("down")

        monkeypatch.setattr(app.ops, "read_snapshot", unavailable)
        browser.find_element(By.ID, "token").send_keys(OPS_TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#login button").click()
        wait_until(lambda: "Could not refresh" in browser.find_element(By.ID, "refresh-error").text)
        board = browser.execute_script(
            "return {cards: document.querySelectorAll('#cards .card').length,"
            " banner: document.getElementById('pause').textContent,"
            " updated: document.getElementById('updated').textContent};"
        )

    assert board == {"cards": 0, "banner": "", "updated": ""}


def test_dashboard_says_a_retried_meta_lead_without_its_record_is_retrieved_again_not_queued(settings, real_redis):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    now = app.extensions["leadrelay"].clock.now()
    meta = make_lead(status=LeadStatus.FETCHING, record={}, extra_fields={keys.LEADGEN_ID_FIELD: "900000000000001"})
    store.leads.admit([meta], [""], now)
    store.fetches.complete(meta.id, Completion(LeadStatus.DEAD, "gave up", error="gave up retrieving"), now)
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        browser.execute_script(
            "document.querySelector(`tr[data-lead-id='${arguments[0]}'] button.retry`).click();", meta.id
        )
        wait_until(lambda: browser.find_element(By.ID, "message").text)
        message = browser.find_element(By.ID, "message").text

    assert store.leads.get(meta.id).status is LeadStatus.FETCHING
    assert message == f"Lead {meta.id} is retrieved from Meta again."


def test_dashboard_names_the_time_zone_of_the_times_it_shows(seeded):
    app, _store, (dead, _rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        zone = browser.execute_script(
            "return new Intl.DateTimeFormat([], {timeZoneName: 'short'}).format(0).split(' ').pop();"
        )
        updated = browser.execute_script(
            "return document.querySelector(`tr[data-lead-id='${arguments[0]}'] td:nth-child(6)`).textContent;", dead.id
        )
        banner = browser.find_element(By.ID, "pause").text

    assert updated.endswith(f" {zone}")
    assert f" {zone}: careCycle 401" in banner


def test_dashboard_says_the_answer_was_not_the_relays_when_a_page_comes_back_instead_of_json(seeded):
    from flask import request

    app, _store, _leads = seeded

    @app.before_request
    def sign_in_page():  # as a proxy in front answers once its own session has run out
        if request.path == "/v1/stats":
            return "<!doctype html><title>Sign in</title>"
        return None

    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _open_dashboard(browser, url, OPS_TOKEN)
        wait_until(lambda: browser.find_element(By.ID, "refresh-error").text)
        error = browser.find_element(By.ID, "refresh-error").text

    assert error == "Could not refresh: the answer was not the relay's (HTTP 200, text/html; charset=utf-8)"


def test_dashboard_says_carecycle_is_failing_and_gives_no_drain_estimate_meanwhile(settings, real_redis):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([make_lead()], [RecordCipher(settings.leadrelay_encryption_key).seal(make_lead().record)], now)
    store.outage.failing("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", now)
    store.budget.announce_limit(60)  # a worker runs
    with serve(app) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        _sign_in(browser, url, OPS_TOKEN)
        drain = _card_value(browser, "drain")
        banner = browser.find_element(By.ID, "pause").text

    assert "careCycle failing since" in banner and "503 SERVICE_UNAVAILABLE" in banner
    assert drain == "careCycle failing"


def test_dashboard_says_the_relay_has_not_answered_while_a_refresh_hangs(seeded, monkeypatch):
    import threading

    import app.ops

    app_, _store, _leads = seeded
    real_snapshot = app.ops.read_snapshot
    answer = threading.Event()

    def hanging(*args, **kwargs):
        answer.wait(timeout=30)  # a relay (or the network to it) that takes the request and gives no answer
        return real_snapshot(*args, **kwargs)

    with serve(app_) as url, chromium() as browser:
        from selenium.webdriver.common.by import By

        try:
            _sign_in(browser, url, OPS_TOKEN)
            updated = browser.find_element(By.ID, "updated").text.removeprefix("updated ")
            monkeypatch.setattr(app.ops, "read_snapshot", hanging)
            wait_until(lambda: browser.find_element(By.ID, "refresh-error").text, timeout=12)
            error = browser.find_element(By.ID, "refresh-error").text
        finally:
            answer.set()
        monkeypatch.setattr(app.ops, "read_snapshot", real_snapshot)
        wait_until(lambda: browser.find_element(By.ID, "refresh-error").text == "", timeout=12)

    assert "the relay has not answered since" in error
    assert f"the numbers shown are from {updated}" in error


def test_dashboard_says_no_worker_runs_and_gives_no_drain_estimate_until_one_does(settings, seeded):
    from selenium.webdriver.common.by import By

    app, store, _leads = seeded  # delivery paused
    waiting = make_lead()
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([waiting], [RecordCipher(settings.leadrelay_encryption_key).seal(waiting.record)], now)

    def drain() -> str | None:
        return _card_value(browser, "drain")

    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        idle = (browser.find_element(By.ID, "pause").text, drain())
        store.budget.announce_limit(30)  # what a running worker's ticker notes every second
        wait_until(lambda: drain() != idle[1], timeout=12)
        paused = drain()
        store.pause.resume()
        wait_until(lambda: drain() != paused, timeout=12)
        running = (browser.find_element(By.ID, "pause").text, drain())

    # No worker: not the pause, which no worker probes, nor a time at the configured limit.
    assert "No worker is running" in idle[0] and "Delivery paused" in idle[0] and idle[1] == "no worker"
    assert paused == "paused"
    assert running == ("", "1 s")


def _banner_notes(browser) -> list[str]:
    return browser.execute_script("return Array.from(document.querySelectorAll('#pause p'), p => p.textContent);")


def test_dashboard_gives_each_banner_note_a_paragraph_of_its_own(seeded):
    app, store, _leads = seeded  # no worker runs
    now = app.extensions["leadrelay"].clock.now()
    store.pause.resume()
    store.outage.failing("careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", now)
    store.fetch_pause.pause("Graph token expired (code 190)", now, now + 30)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        notes = _banner_notes(browser)

    assert [note.split(" ")[0:2] for note in notes] == [
        ["No", "worker"],
        ["careCycle", "failing"],
        ["Meta", "lead"],
    ]


def test_dashboard_says_a_delivery_pause_sends_nothing_until_its_cause_is_fixed_and_when_the_next_probe_is(seeded):
    app, store, _leads = seeded  # paused for a 401, its next probe in 30 s
    store.budget.announce_limit(60)  # a worker runs
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        (paused,) = _banner_notes(browser)

    assert "nothing is sent until what careCycle refuses is fixed" in paused and "CARECYCLE_API_KEY" in paused
    assert "leads keep coming in and wait, none is lost" in paused
    assert re.search(r"A probe request \(next at \d+/\d+/\d{4}, .+ [A-Z]+\) resumes delivery by itself", paused)


def test_dashboard_says_a_delivery_pauses_probe_is_due_now_once_its_time_passed_by_the_relays_clock(
    settings, real_redis
):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    now = app.extensions["leadrelay"].clock.now()
    store.pause.pause("careCycle 401 UNAUTHORIZED: Invalid or missing API key", now - 120, now - 5)  # probe overdue
    store.budget.announce_limit(60)  # a worker runs
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        (paused,) = _banner_notes(browser)

    assert "A probe request (due now) resumes delivery by itself once careCycle takes it." in paused


def test_dashboard_says_a_delivery_pause_alone_not_also_carecycle_failing_until_the_pause_ends(seeded):
    app, store, _leads = seeded  # delivery paused: careCycle answered 401
    store.budget.announce_limit(60)  # a worker runs
    # careCycle failed uploads with 503 before it answered 401 (or a probe of the pause got no answer).
    store.outage.failing(
        "careCycle 503 SERVICE_UNAVAILABLE: Service unavailable", app.extensions["leadrelay"].clock.now()
    )
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        paused = _banner_notes(browser)
        store.pause.resume()  # a probe got past the key, while uploads still fail
        wait_until(lambda: _banner_notes(browser) != paused, timeout=12)
        failing = _banner_notes(browser)

    assert len(paused) == 1
    assert paused[0].startswith("Delivery paused since") and "401 UNAUTHORIZED" in paused[0]
    assert len(failing) == 1
    assert failing[0].startswith("careCycle failing since") and "503 SERVICE_UNAVAILABLE" in failing[0]


def test_dashboard_names_each_meta_form_whose_backfill_listing_is_refused_and_why_until_it_is_listed_again(seeded):
    app, store, _leads = seeded
    store.pause.resume()
    store.budget.announce_limit(60)  # a worker runs
    refused = "Graph API 403 code 200: (#200) no lead access"
    store.refused_forms.refused("200000000000002", refused)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        notes = _banner_notes(browser)
        store.refused_forms.listed("200000000000002")  # the token may read its leads again
        wait_until(lambda: _banner_notes(browser) != notes, timeout=12)
        after = _banner_notes(browser)

    [note] = notes
    assert note.startswith("Meta backfill refused for form 200000000000002: " + refused)
    assert "webhooks" in note and after == []


def test_dashboard_says_how_far_each_meta_forms_backfill_caught_up_until_it_is_listed_completely(seeded):
    app, store, _leads = seeded
    store.pause.resume()
    store.budget.announce_limit(60)  # a worker runs
    listed_to = app.extensions["leadrelay"].clock.now() - 3 * 86400
    store.fetches.note_backfill_listed("200000000000002", listed_to)  # a refused form listed again, window by window
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        notes = _banner_notes(browser)
        shown_time = browser.execute_script("return whenEpoch(arguments[0]);", listed_to)
        store.fetches.mark_backfilled("200000000000002", listed_to + 3 * 86400)  # listed completely
        wait_until(lambda: _banner_notes(browser) != notes, timeout=12)
        after = _banner_notes(browser)

    [note] = notes
    assert note.startswith("Meta backfill catching up on form 200000000000002: caught up to " + shown_time)
    assert after == []


def test_dashboard_asks_nothing_while_its_tab_is_hidden_and_refreshes_once_shown_again(seeded, monkeypatch):
    import app.ops

    app_, _store, _leads = seeded
    real_snapshot = app.ops.read_snapshot
    asked: list[int] = []

    def counted(*args, **kwargs):
        asked.append(1)
        return real_snapshot(*args, **kwargs)

    monkeypatch.setattr(app.ops, "read_snapshot", counted)
    with serve(app_) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        wait_until(lambda: browser.execute_script("return refreshing === null;"))
        # What the browser does when the operator switches to another tab or minimizes the window.
        browser.execute_script(
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
            "document.dispatchEvent(new Event('visibilitychange'));"
        )
        polled_while_hidden = browser.execute_script("poll(); return refreshing !== null;")
        before = len(asked)
        browser.execute_script(
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
            "document.dispatchEvent(new Event('visibilitychange'));"
        )
        wait_until(lambda: len(asked) > before, timeout=2)  # at once, not at the next poll

    assert polled_while_hidden is False


def test_dashboard_shows_what_a_retry_far_down_the_list_did_where_the_operator_is(many_rejected):
    from selenium.webdriver.common.by import By

    app, leads = many_rejected
    lead = leads[40]
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        # Another operator retried it a moment ago: this retry fails, and the page must say so in sight.
        app.test_client().post(f"/v1/leads/{lead.id}/retry", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        browser.execute_script(  # in one script call: the list may render again between two
            "const button = document.querySelector(`tr[data-lead-id='${arguments[0]}'] button.retry`);"
            "button.scrollIntoView({block: 'center'}); button.click();",
            lead.id,
        )
        wait_until(lambda: "Retry failed" in browser.find_element(By.ID, "message").text)
        in_sight = browser.execute_script(
            "const box = document.getElementById('message').getBoundingClientRect();"
            "return box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;"
        )

    assert in_sight is True


def test_dashboard_names_the_lead_each_retry_button_retries_for_a_screen_reader(seeded):
    from selenium.webdriver.common.by import By

    app, _store, (dead, rejected, _delivered) = seeded
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        names = {
            lead.id: browser.find_element(By.CSS_SELECTOR, f'tr[data-lead-id="{lead.id}"] button.retry').accessible_name
            for lead in (dead, rejected)
        }

    assert names == {dead.id: f"Retry lead {dead.id}", rejected.id: f"Retry lead {rejected.id}"}


def test_dashboard_shows_a_reason_as_its_characters_read_not_turned_around_by_bidi_controls(settings, real_redis):
    app = create_app(settings, redis=real_redis)
    store = app.extensions["leadrelay"].store
    lead = make_lead()
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit([lead], [RecordCipher(settings.leadrelay_encryption_key).seal(lead.record)], now)
    batch = store.batches.claim(now, 200, 60)
    # careCycle's text, as sent: the right-to-left override shows "deliver ton od" as "do not reviled".
    reason = "Duplicate: \u202edeliver ton od\u202c <img src=x onerror=alert(1)>"
    store.batches.settle(batch.id, [Outcome(lead.id, LeadStatus.REJECTED, "no", error=reason)], now, release=True)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        shown = browser.execute_script(
            "const row = document.querySelector(`tr[data-lead-id='${arguments[0]}'] td.reason`);"
            "return [row.textContent, row.querySelectorAll('img').length];",
            lead.id,
        )

    assert shown == ["Duplicate: deliver ton od <img src=x onerror=alert(1)>", 0]


@pytest.fixture
def two_sources_failing(settings, real_redis):
    """A relay app with sources alpha and beta configured, each with a dead lead, alpha with a rejected one too, and
    a dead lead of a source no longer configured."""
    sources = SourceRegistry([make_source(slug="beta"), make_source(slug="alpha")])
    app = create_app(settings, redis=real_redis, sources=sources)
    store = app.extensions["leadrelay"].store
    cipher = RecordCipher(settings.leadrelay_encryption_key)
    leads = {
        "alpha dead": make_lead(source="alpha"),
        "alpha rejected": make_lead(source="alpha"),
        "beta dead": make_lead(source="beta"),
        "retired dead": make_lead(source="retired"),
    }
    now = app.extensions["leadrelay"].clock.now()
    store.leads.admit(list(leads.values()), [cipher.seal(lead.record) for lead in leads.values()], now)
    batch = store.batches.claim(now, 200, 60)
    outcomes = [
        Outcome(lead.id, LeadStatus.REJECTED if "rejected" in name else LeadStatus.DEAD, "failed", error="503")
        for name, lead in leads.items()
    ]
    store.batches.settle(batch.id, outcomes, now, release=True)
    return app, store, {name: lead.id for name, lead in leads.items()}


def test_dashboard_narrows_the_failing_leads_to_one_source_and_retries_only_its_dead_leads(two_sources_failing):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    app, store, ids = two_sources_failing
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        every = set(browser.execute_script(_LISTED_LEADS))
        options = browser.execute_script(
            "const picker = document.getElementById('source');"
            "return [picker.labels[0].textContent, Array.from(picker.options, (o) => o.textContent)];"
        )
        browser.execute_script(
            "window.asked = []; window.confirm = (text) => { window.asked.push(text); return true; };"
            "document.getElementById('source').focus();"
        )
        ActionChains(browser).send_keys(Keys.ARROW_DOWN).perform()  # the keyboard picks the first source: alpha
        wait_until(lambda: set(browser.execute_script(_LISTED_LEADS)) == {ids["alpha dead"], ids["alpha rejected"]})
        titles = browser.execute_script(
            "return ['failing-title', 'retry-dead'].map((id) => document.getElementById(id).textContent);"
        )
        browser.find_element(By.ID, "retry-dead").click()
        wait_until(lambda: "queued again" in browser.find_element(By.ID, "message").text)
        said = browser.find_element(By.ID, "message").text
        asked = browser.execute_script("return window.asked;")
        wait_until(lambda: set(browser.execute_script(_LISTED_LEADS)) == {ids["alpha rejected"]})

    assert every == set(ids.values())
    assert options == ["Source", ["All sources", "alpha (api)", "beta (api)", "retired (not configured)"]]
    assert titles == ["Failing leads of alpha", "Retry all dead of alpha"]
    assert asked == ["Queue 1 dead lead of alpha again?"]
    assert said == "1 dead lead of alpha queued again."
    status = {name: store.leads.get(lead_id).status for name, lead_id in ids.items()}
    assert status == {
        "alpha dead": LeadStatus.QUEUED,
        "alpha rejected": LeadStatus.REJECTED,
        "beta dead": LeadStatus.DEAD,
        "retired dead": LeadStatus.DEAD,
    }
    audit = app.test_client().get("/v1/audit", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json["entries"]
    assert [(e["action"], e["filter"]) for e in audit] == [("retry_leads", {"status": "dead", "source": "alpha"})]


_LISTED_LEADS = "return Array.from(document.querySelectorAll('#failures tr[data-lead-id]'), (r) => r.dataset.leadId);"


def test_dashboard_shows_the_picked_sources_counts_named_so_and_every_other_number_as_of_all_sources(
    two_sources_failing,
):
    app, store, ids = two_sources_failing
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        every = browser.execute_script(_CARDS)
        browser.execute_script(
            "const picker = document.getElementById('source');"
            "picker.value = 'alpha'; picker.dispatchEvent(new Event('change'));"
        )
        wait_until(lambda: browser.execute_script(_CARDS)["dead"][0] == "Dead · alpha")
        alpha = browser.execute_script(_CARDS)

    assert every["dead"] == ["Dead", "3"] and every["rejected"] == ["Rejected", "1"]
    assert alpha["dead"] == ["Dead · alpha", "1"] and alpha["rejected"] == ["Rejected · alpha", "1"]
    counted = {"fetching", "queued", "sending", "retrying", "dead", "rejected"}
    assert {name for name, (label, _) in alpha.items() if label.endswith(" · alpha")} == counted
    others = {name: label for name, (label, _) in alpha.items() if name not in counted}
    assert others and all(label.endswith(" · all sources") for label in others.values()), others


def test_dashboard_says_a_sources_counts_leave_out_its_leads_taken_in_before_counting_by_source_began(
    two_sources_failing,
):
    app, store, ids = two_sources_failing
    # The alpha dead lead as an earlier release stored it: in no source's counts. The relay counts by source from now.
    store.redis.hdel(keys.lead_key(ids["alpha dead"]), keys.SOURCE_COUNTED_FIELD)
    store.redis.hincrby(keys.source_status_counts_key("alpha"), "dead", -1)
    store.leads.start_counting_by_source(app.extensions["leadrelay"].clock.now() + 1)
    with serve(app) as url, chromium() as browser:
        _sign_in(browser, url, OPS_TOKEN)
        every = browser.find_element("id", "counts-note").text
        browser.execute_script(
            "const picker = document.getElementById('source');"
            "picker.value = 'alpha'; picker.dispatchEvent(new Event('change'));"
        )
        wait_until(lambda: browser.execute_script(_CARDS)["dead"][0] == "Dead · alpha")
        note = browser.find_element("id", "counts-note").text
        alpha = browser.execute_script(_CARDS)

    assert every == ""
    assert alpha["dead"] == ["Dead · alpha", "0"]
    assert note.startswith("The counts of alpha leave out its leads taken in before ")
    assert note.endswith(
        ", when the relay began counting by source: those are in the counts of all sources and in the lists."
    )
