"""Numeric settings: plain decimal numbers within bounds an operator would expect, or the process stops."""

from __future__ import annotations

import dataclasses

import pytest

from app.config import ConfigError, Settings
from app.models import LeadStatus
from app.store import Store, keys
from app.store.retention import PurgeReport
from tests.storecheck import leads_in

NUMERIC_VARIABLES = [f.name.upper() for f in dataclasses.fields(Settings) if f.type in ("int", "float")]
WHOLE_VARIABLES = [f.name.upper() for f in dataclasses.fields(Settings) if f.type == "int"]
# Large enough that the longest careCycle upload timeouts still fit under it.
ROOMY_VISIBILITY = {"LEADRELAY_VISIBILITY_TIMEOUT_SECONDS": "3600"}


def refusal(environ):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(environ)
    return raised.value.problems


BOUNDS = [
    pytest.param("CARECYCLE_RATE_LIMIT_PER_MIN", "1000000", "a whole number from 1 to 1000000", id="bench-unlimited"),
    pytest.param("CARECYCLE_CONNECT_TIMEOUT_SECONDS", "600", "a decimal number above 0 and at most 600"),
    pytest.param("CARECYCLE_READ_TIMEOUT_SECONDS", "600", "a decimal number above 0 and at most 600"),
    pytest.param("LEADRELAY_RETRY_BASE_SECONDS", "3600", "a decimal number above 0 and at most 3600"),
    pytest.param("LEADRELAY_RETRY_MAX_DELAY_SECONDS", "86400", "a decimal number above 0 and at most 86400"),
    pytest.param("LEADRELAY_MAX_AGE_HOURS", "8760", "a decimal number above 0 and at most 8760", id="a-year"),
    pytest.param("LEADRELAY_PAUSE_PROBE_SECONDS", "3600", "a decimal number above 0 and at most 3600"),
    pytest.param("LEADRELAY_VISIBILITY_TIMEOUT_SECONDS", "3600", "a decimal number above 0 and at most 3600"),
    pytest.param("LEADRELAY_DELIVERY_LANES", "100", "a whole number from 1 to 100", id="lanes"),
    pytest.param("LEADRELAY_RECORD_RETENTION_HOURS", "87600", "a decimal number above 0 and at most 87600"),
    pytest.param("LEADRELAY_RETENTION_DAYS", "3650", "a decimal number above 0 and at most 3650", id="ten-years"),
    pytest.param("LEADRELAY_TRUSTED_PROXY_HOPS", "10", "a whole number from 0 to 10", id="proxy-hops"),
    pytest.param("FACEBOOK_BACKFILL_MINUTES", "1440", "a whole number from 1 to 1440", id="backfill-a-day"),
    pytest.param("FACEBOOK_CONNECT_TIMEOUT_SECONDS", "55", "a decimal number above 0 and at most 55"),
    pytest.param("FACEBOOK_READ_TIMEOUT_SECONDS", "55", "a decimal number above 0 and at most 55"),
]


def test_every_numeric_setting_is_checked_here():
    assert sorted(NUMERIC_VARIABLES) == sorted(row.values[0] for row in BOUNDS)


@pytest.mark.parametrize(("variable", "largest", "expected"), BOUNDS)
def test_a_numeric_setting_takes_values_up_to_its_bound_and_refuses_more(variable, largest, expected):
    others = {**ROOMY_VISIBILITY, "LEADRELAY_RETENTION_DAYS": "3650"}
    too_large = str(int(largest) + 1)

    assert getattr(Settings.from_env({**others, variable: largest}), variable.lower()) == int(largest)
    assert refusal({**others, variable: too_large}) == [f"{variable}: expected {expected}, got {too_large!r}"]


@pytest.mark.parametrize("variable", NUMERIC_VARIABLES)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("inf", id="infinity"),
        pytest.param("-inf", id="minus-infinity"),
        pytest.param("nan", id="not-a-number"),
        pytest.param("1e400", id="exponent-beyond-float"),
        pytest.param("9" * 400, id="digits-beyond-float"),
        pytest.param("9" * 5000, id="digits-beyond-int-parsing"),
        pytest.param("1e12", id="exponent-beyond-bound"),
        pytest.param("1e1", id="small-exponent"),
        pytest.param("1_0", id="digit-underscore"),
        pytest.param("\u0661\u0660", id="non-ascii-digits"),
        pytest.param("0x10", id="hexadecimal"),
        pytest.param("-5", id="negative"),
    ],
)
def test_a_numeric_setting_refuses_anything_but_a_plain_number_naming_its_variable(variable, raw):
    [problem] = refusal({**ROOMY_VISIBILITY, variable: raw})

    assert problem.startswith(f"{variable}: expected a ")
    assert problem.endswith(f"got {raw!r}")


@pytest.mark.parametrize("variable", WHOLE_VARIABLES)
def test_a_count_refuses_a_fraction(variable):
    [problem] = refusal({variable: "2.5"})

    assert problem.startswith(f"{variable}: expected a whole number from ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("45", 45.0, id="whole"),
        pytest.param("45.5", 45.5, id="decimal"),
        pytest.param("+45", 45.0, id="plus-sign"),
        pytest.param("045", 45.0, id="leading-zero"),
        pytest.param(".5", 0.5, id="no-integer-part"),
        pytest.param("45.", 45.0, id="no-fraction-digits"),
    ],
)
def test_a_duration_takes_plain_decimal_spellings(raw, expected):
    assert Settings.from_env({"LEADRELAY_PAUSE_PROBE_SECONDS": raw}).leadrelay_pause_probe_seconds == expected


def test_every_numeric_default_is_within_its_bounds_and_reads_back_as_spelled():
    defaults = Settings()

    assert defaults.problems() == []
    assert Settings.from_env({v: str(getattr(defaults, v.lower())) for v in NUMERIC_VARIABLES}) == defaults


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        pytest.param({"leadrelay_retention_days": float("inf")}, "LEADRELAY_RETENTION_DAYS", id="infinite-retention"),
        pytest.param({"leadrelay_visibility_timeout_seconds": float("nan")}, "LEADRELAY_VISIBILITY_TIMEOUT_SECONDS"),
        pytest.param({"leadrelay_delivery_lanes": 0}, "LEADRELAY_DELIVERY_LANES", id="no-lane"),
        pytest.param({"carecycle_rate_limit_per_min": 10**7}, "CARECYCLE_RATE_LIMIT_PER_MIN", id="huge-rate-limit"),
    ],
)
def test_settings_changed_in_code_are_held_to_the_same_bounds(settings, change, variable):
    with pytest.raises(ConfigError) as raised:
        settings.replace(**change)

    assert [p.split(":", 1)[0] for p in raised.value.problems] == [variable]


def test_the_longest_retention_an_operator_may_set_purges_records_and_keeps_the_lead(settings, redis, cipher, clock):
    # Records kept briefly, leads for ten years: the purge pass alone ends the lead, when its time comes.
    longest = settings.replace(leadrelay_record_retention_hours=0.5, leadrelay_retention_days=3650)
    store = Store.from_settings(longest, redis)
    [lead] = leads_in(store, cipher, clock, LeadStatus.DELIVERED)
    clock.advance(3600)

    assert store.retention.purge(clock.now()) == PurgeReport(records=1, leads=0)
    assert redis.ttl(keys.lead_key(lead.id)) == -1
    clock.advance(3650 * 86400)
    assert store.retention.purge(clock.now()) == PurgeReport(records=0, leads=1)


def test_the_bench_capacity_run_rate_limit_is_a_setting_its_workers_accept():
    from app.bench import UNLIMITED_PER_MIN

    environ = {"CARECYCLE_RATE_LIMIT_PER_MIN": str(UNLIMITED_PER_MIN)}

    assert Settings.from_env(environ).carecycle_rate_limit_per_min == UNLIMITED_PER_MIN


def test_the_sandbox_stalls_longer_than_the_relay_waits_for_an_upload_by_default():
    from app.sandbox.faults import DEFAULT_STALL_SECONDS

    defaults = Settings()
    assert DEFAULT_STALL_SECONDS > defaults.carecycle_connect_timeout_seconds + defaults.carecycle_read_timeout_seconds
