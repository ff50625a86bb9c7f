"""Each normalizing field and geo lookup on its own: a row per spelling, accepted or refused."""

from __future__ import annotations

import datetime as dt

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, validate

from app.schemas.carecycle import GENDERS
from app.schemas.fields import (
    EmailAddress,
    LooseBool,
    LooseEnum,
    LooseInt,
    TrimmedString,
)
from app.schemas.geo import ZipDetails, split_full_name, state_code, timezone_for_phone, zip_details
from app.schemas.leads import record_fields
from app.schemas.personal import (
    SERVED_PHONE_REGIONS,
    DateOfBirth,
    Phone,
    PostalCode,
    Timezone,
    UsState,
)

TODAY = dt.date(2026, 6, 1)


def load(field, value):
    return field.deserialize(value)


def error_of(field, value) -> str:
    with pytest.raises(ValidationError) as caught:
        field.deserialize(value)
    [message] = caught.value.messages
    return message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("(212) 555-0142", "+12125550142", id="parens"),
        pytest.param("212 555 0142 extension 7", "+12125550142", id="extension-word"),
        pytest.param("+1 (212) 555-0142 #99", "+12125550142", id="hash-extension"),
        pytest.param("212 555 0142;ext=5", "+12125550142", id="rfc3966-extension"),
        pytest.param("212-555-0142 ext: 12", "+12125550142", id="ext-colon"),
        pytest.param("212-555-0142 x.12", "+12125550142", id="x-dot"),
        pytest.param("212-555-0142 extn. 12", "+12125550142", id="extn"),
        pytest.param("212-555-0142 extension: 12", "+12125550142", id="extension-colon"),
        pytest.param("212-555-0142, ext 12345678", "+12125550142", id="long-extension-after-comma"),
        pytest.param("Cell: 212-555-0142", "+12125550142", id="label"),
        pytest.param("Home phone: (212) 555-0142", "+12125550142", id="two-word-label"),
        pytest.param("Best home phone : 212 555 0142", "+12125550142", id="three-word-label"),
        pytest.param("212-555-0142 (cell)", "+12125550142", id="label-in-parentheses-after"),
        pytest.param("+1 212 555 0142 ext. 12 (work phone)", "+12125550142", id="extension-and-label-after"),
        pytest.param("Cell 212-555-0142", "+12125550142", id="label-without-colon"),
        pytest.param("Tel. 212 555 0142", "+12125550142", id="abbreviated-label-without-colon"),
        pytest.param("Mobile - (212) 555-0142", "+12125550142", id="label-and-dash"),
        pytest.param("home phone 212.555.0142", "+12125550142", id="two-word-label-without-colon"),
        pytest.param("212-555-0142 cell", "+12125550142", id="label-after"),
        pytest.param("212-555-0142 - Mobile", "+12125550142", id="label-after-a-dash"),
        pytest.param("212-555-0142, work", "+12125550142", id="label-after-a-comma"),
        pytest.param("212-555-0142 x12 (c)", "+12125550142", id="extension-and-letter-label-after"),
        pytest.param("tel:+1-212-555-0142", "+12125550142", id="tel-uri"),
        pytest.param("2 1 2 5 5 5 0 1 4 2", "+12125550142", id="spaced-digits"),
        pytest.param("+1 671 555 0100", "+16715550100", id="guam"),
        pytest.param("+1 340 555 0100", "+13405550100", id="us-virgin-islands"),
        pytest.param("212 555 0199", "+12125550199", id="fictional-555-01xx-accepted"),
    ],
)
def test_phone_normalizes_to_e164(raw, expected):
    assert load(Phone(), raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        pytest.param(None, "missing", id="none"),
        pytest.param("   ", "missing", id="blank"),
        pytest.param(12.5, "10 digits", id="float"),
        pytest.param("212-555-CALL", "not letters", id="vanity-letters"),
        pytest.param("Call me 212-555-0142", "not letters", id="words-before-that-are-no-label"),
        pytest.param("212-555-0142 after 5pm", "not letters", id="words-after-that-are-no-label"),
        pytest.param("212-555-HOME", "not letters", id="vanity-word-that-is-a-label-word"),
        pytest.param("212-555-0142 (call after 5)", "not letters", id="a-note-after-is-no-label"),
        pytest.param("my best home phone: 212 555 0142", "not letters", id="four-words-are-no-label"),
        pytest.param("x" * 63 + ":", "10 digits", id="a-label-and-no-number"),
        pytest.param("+52 55 1234 5678", "+1", id="mexico"),
        pytest.param("+1 809 555 0100", "US territory", id="dominican-republic"),
        pytest.param("311 311 3111", "10 digits", id="n11-area-code"),
        pytest.param("888 555 0100", "toll-free", id="toll-free-888"),
        pytest.param("(900) 321-4567", "premium-rate", id="premium-rate-900"),
    ],
)
def test_phone_refuses_with_what_was_expected(raw, fragment):
    assert fragment in error_of(Phone(), raw)


def test_phone_regions_can_be_narrowed_to_the_us():
    assert "US territory" in error_of(Phone(regions={"US"}), "+1 416 555 0100")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("10001", "10001", id="five"),
        pytest.param("10001-1234", "10001", id="zip-plus-4"),
        pytest.param(" 10001 ", "10001", id="padded"),
        pytest.param(601, "00601", id="number-padded"),
        pytest.param("", None, id="blank-is-none"),
        pytest.param("10001\u20131234", "10001", id="zip-plus-4-en-dash"),
        pytest.param("10001 - 1234", "10001", id="zip-plus-4-spaced-dash"),
        pytest.param("10001-", "10001", id="empty-plus-4"),
    ],
)
def test_postal_code_normalizes_to_five_digits(raw, expected):
    assert load(PostalCode(), raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("99999", "expected an existing US ZIP code", id="unknown"),
        pytest.param("1000", "expected a US ZIP code: 5 digits or ZIP+4", id="four-digits"),
        pytest.param("10001-12", "expected a US ZIP code: 5 digits or ZIP+4", id="bad-plus-4"),
        pytest.param("ABCDE", "expected a US ZIP code: 5 digits or ZIP+4", id="letters"),
        pytest.param(123456, "expected a US ZIP code: 5 digits or ZIP+4", id="number-too-big"),
        pytest.param(True, "expected a US ZIP code: 5 digits or ZIP+4", id="boolean"),
        # Zero is a blank column's placeholder, not a ZIP that lost its leading zeros.
        pytest.param(0, "expected a US ZIP code: 5 digits or ZIP+4", id="number-zero"),
        pytest.param(0.0, "expected a US ZIP code: 5 digits or ZIP+4", id="number-zero-with-a-zero-fraction"),
        pytest.param("0.0", "expected a US ZIP code: 5 digits or ZIP+4", id="text-of-zero-with-a-zero-fraction"),
    ],
)
def test_postal_code_refuses(raw, message):
    assert error_of(PostalCode(), raw) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Eastern Standard Time", "America/New_York", id="windows-eastern-standard-time"),
        pytest.param("EST", "America/New_York", id="est"),
        pytest.param("CST", "America/Chicago", id="cst"),
        pytest.param("US Mountain Standard Time", "America/Phoenix", id="windows-us-mountain"),
        pytest.param("Alaskan Standard Time", "America/Anchorage", id="windows-alaskan"),
        pytest.param("Hawaiian Standard Time", "Pacific/Honolulu", id="windows-hawaiian"),
        pytest.param("America/Indianapolis", "America/Indiana/Indianapolis", id="iana-link-to-its-zone"),
        pytest.param("america/toronto", "America/Toronto", id="canada"),
        pytest.param("central daylight time", "America/Chicago", id="cdt-spelled"),
        pytest.param("MT", "America/Denver", id="mt"),
        pytest.param("mountain standard time", "America/Denver", id="mst-spelled"),
        pytest.param("PT", "America/Los_Angeles", id="pt"),
        pytest.param("HST", "Pacific/Honolulu", id="hst"),
        pytest.param("Hawaii-Aleutian", "Pacific/Honolulu", id="hawaii-aleutian"),
        pytest.param("AKST", "America/Anchorage", id="akst"),
        pytest.param("(UTC-07:00) Arizona", "America/Phoenix", id="windows-arizona"),
        pytest.param("Eastern Time Zone", "America/New_York", id="time-zone-suffix"),
        pytest.param("America/Indiana/Indianapolis", "America/Indiana/Indianapolis", id="iana-deep"),
        pytest.param("Puerto Rico", "America/Puerto_Rico", id="puerto-rico"),
        pytest.param("Atlantic Standard Time", "America/Halifax", id="windows-atlantic"),
        pytest.param("ADT", "America/Halifax", id="adt"),
    ],
)
def test_timezone_normalizes_to_carecycle_value(raw, expected):
    assert load(Timezone(), raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("Etc/GMT+5", id="fixed-offset"),
        pytest.param("GMT-5", id="gmt-offset"),
        pytest.param("EST5EDT", id="posix-style"),
        pytest.param("Mars/Olympus", id="made-up"),
        pytest.param("Europe/London", id="outside-the-served-regions"),
        pytest.param("Asia/Tokyo", id="asia"),
        pytest.param(-5, id="number"),
    ],
)
def test_timezone_refuses(raw):
    assert error_of(Timezone(), raw).startswith("expected a US or Canadian time zone")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1.5.1950", "01-05-1950", id="dotted"),
        pytest.param("19500105", "01-05-1950", id="yyyymmdd-no-separators"),
        pytest.param("01051950", "01-05-1950", id="mmddyyyy-no-separators"),
        pytest.param("12201999", "12-20-1999", id="mmddyyyy-no-separators-december"),
        pytest.param("01 05 1950", "01-05-1950", id="spaces"),
        pytest.param("1950\u201301\u201305", "01-05-1950", id="iso-en-dashes"),
        pytest.param("01\u201305\u20131950", "01-05-1950", id="us-en-dashes"),
        pytest.param("1950-01-05 00:00:00 UTC", "01-05-1950", id="sql-timestamp-utc"),
        pytest.param("01/05/1950 12:00:00.000", "01-05-1950", id="us-datetime-milliseconds"),
        pytest.param("1/5/1950 12:00:00 AM +00:00", "01-05-1950", id="us-datetime-offset"),
        pytest.param("1950-01-05 00:00:00+00", "01-05-1950", id="postgres-timestamptz-offset-in-hours"),
        pytest.param("1950-01-05 00:00:00-05", "01-05-1950", id="postgres-timestamptz-negative-offset"),
        pytest.param("1950-01-05T00:00:00+0000", "01-05-1950", id="iso-basic-offset"),
        pytest.param("Jan 05, 1950 12:00 AM", "01-05-1950", id="month-name-with-a-time"),
        pytest.param("01-05-50", "01-05-1950", id="mm-dd-yy"),
        pytest.param("Jan. 5, 1950", "01-05-1950", id="abbrev-dot-comma"),
        pytest.param("Sept 5 1950", "09-05-1950", id="sept"),
        pytest.param("05-JAN-1950", "01-05-1950", id="oracle-style"),
        pytest.param("1950-01-05 08:30:00", "01-05-1950", id="sql-datetime"),
        pytest.param("2/29/00", "02-29-2000", id="two-digit-leap-2000"),
        pytest.param(19500105, "01-05-1950", id="yyyymmdd-as-a-json-integer"),
        pytest.param(19500105.0, "01-05-1950", id="yyyymmdd-as-a-json-number-with-a-zero-fraction"),
        pytest.param(dt.date(1950, 1, 5), "01-05-1950", id="date-object"),
        pytest.param(dt.datetime(1950, 1, 5, 23, 59), "01-05-1950", id="datetime-object"),
        pytest.param("1896-06-01", "06-01-1896", id="exactly-130"),
        pytest.param("2026-06-01", "06-01-2026", id="born-today"),
    ],
)
def test_date_of_birth_normalizes_to_mm_dd_yyyy(raw, expected):
    assert load(DateOfBirth(today=lambda: TODAY), raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("1950-02-30", "expected a real calendar date", id="feb-30"),
        pytest.param("04/31/1950", "expected a real calendar date", id="april-31"),
        pytest.param("2/29/01", "expected a real calendar date", id="two-digit-non-leap"),
        pytest.param("00/10/1950", "expected a real calendar date", id="month-zero"),
        pytest.param("1895-05-31", "expected a date of birth less than 130 years ago", id="131"),
        pytest.param("1895-06-01", "expected a date of birth less than 130 years ago", id="131-this-very-day"),
        pytest.param("2030-01-01", "expected a date of birth that is not in the future", id="future"),
        pytest.param("010550", "expected a date of birth such as 1950-01-31 or 01/31/1950", id="six-digits-ambiguous"),
        pytest.param("19501305", "expected a real calendar date", id="no-separators-month-13"),
        pytest.param("Smarch 5 1950", "expected a date of birth such as 1950-01-31 or 01/31/1950", id="bad-month"),
        pytest.param(19501305, "expected a real calendar date", id="yyyymmdd-json-integer-month-13"),
        pytest.param(20300101, "expected a date of birth that is not in the future", id="yyyymmdd-json-integer-future"),
        pytest.param(12201999, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="mmddyyyy-json-integer"),
        pytest.param(1051950, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="mmddyyyy-lost-its-zero"),
        pytest.param(-631152000, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="epoch-seconds"),
        pytest.param(
            -631152000000, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="epoch-milliseconds"
        ),
        pytest.param(
            1700000000, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="epoch-seconds-positive"
        ),
        pytest.param(195001.05, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="fraction"),
        pytest.param(True, "expected a date of birth such as 1950-01-31 or 01/31/1950", id="boolean"),
    ],
)
def test_date_of_birth_refuses(raw, message):
    assert error_of(DateOfBirth(today=lambda: TODAY), raw) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("ny", "NY", id="code-lower"),
        pytest.param("N.Y.", "NY", id="code-dotted"),
        pytest.param("  north   CAROLINA ", "NC", id="name-messy"),
        pytest.param("Washington D.C.", "DC", id="washington-dc"),
        pytest.param("Washington", "WA", id="washington-state"),
        pytest.param("U.S. Virgin Islands", "VI", id="usvi"),
        pytest.param("guam", "GU", id="guam"),
        pytest.param("AE", "AE", id="armed-forces"),
        pytest.param("Ontario", "ON", id="canadian-province"),
        pytest.param("qc", "QC", id="canadian-province-code-lower"),
        pytest.param("Québec", "QC", id="canadian-province-accented"),
        pytest.param("Newfoundland and Labrador", "NL", id="canadian-province-long-name"),
        pytest.param("P.E.I.", "PE", id="prince-edward-island-initials"),
        pytest.param("Yukon Territory", "YT", id="canadian-territory"),
        pytest.param("Calif.", "CA", id="traditional-abbreviation"),
        pytest.param("Mass", "MA", id="traditional-abbreviation-without-dot"),
        pytest.param("W. Va.", "WV", id="traditional-abbreviation-two-words"),
        pytest.param("Hawaiʻi", "HI", id="hawaii-with-its-okina"),
        pytest.param("Florida (FL)", "FL", id="dropdown-name-then-code-in-parentheses"),
        pytest.param("New York (NY)", "NY", id="dropdown-two-word-name-then-code"),
        pytest.param("(NY) New York", "NY", id="dropdown-code-in-parentheses-then-name"),
        pytest.param("NY - New York", "NY", id="dropdown-code-dash-name"),
        pytest.param("FL - Florida", "FL", id="dropdown-code-dash-one-word-name"),
        pytest.param("New York \u2013 NY", "NY", id="dropdown-name-en-dash-code"),
        pytest.param("NY-New York", "NY", id="dropdown-code-hyphen-name-unspaced"),
        pytest.param("District of Columbia (D.C.)", "DC", id="dropdown-dotted-code"),
        pytest.param("Québec (QC)", "QC", id="dropdown-canadian-province"),
        pytest.param("Washington (DC)", "DC", id="washington-dc-with-its-code-in-parentheses"),
        pytest.param("Armed Forces (AP)", "AP", id="dropdown-military-state-named-by-its-code-alone"),
        pytest.param("AE - Armed Forces", "AE", id="dropdown-military-code-dash-armed-forces"),
        # USPS's names of the military "states" (Publication 28); Google's address data labels them "Armed Forces (AE)".
        pytest.param("Armed Forces Americas (except Canada)", "AA", id="usps-armed-forces-americas-except-canada"),
        pytest.param("Armed Forces Americas", "AA", id="usps-armed-forces-americas"),
        pytest.param("Armed Forces Europe", "AE", id="usps-armed-forces-europe"),
        pytest.param("Armed Forces Africa", "AE", id="usps-armed-forces-africa"),
        pytest.param("Armed Forces Middle East", "AE", id="usps-armed-forces-middle-east"),
        pytest.param("Armed Forces Canada", "AE", id="usps-armed-forces-canada"),
        pytest.param("Armed Forces Pacific", "AP", id="usps-armed-forces-pacific"),
        pytest.param("Armed Forces Africa (AE)", "AE", id="dropdown-usps-military-name-then-code"),
        pytest.param("AA - Armed Forces Americas (except Canada)", "AA", id="dropdown-code-dash-name-in-parentheses"),
        pytest.param("Armed Forces Americas (except Canada) - AA", "AA", id="dropdown-name-in-parentheses-dash-code"),
        pytest.param("Virgin Islands, U.S.", "VI", id="usvi-as-an-iso-country-list-writes-it"),
        pytest.param("Virgin Islands (U.S.)", "VI", id="usvi-with-us-in-parentheses"),
        pytest.param("Puerto Rico", "PR", id="puerto-rico"),
        pytest.param("Northern Mariana Islands", "MP", id="northern-mariana-islands"),
        pytest.param("District of Columbia", "DC", id="district-of-columbia"),
    ],
)
def test_us_state_normalizes_to_usps_code(raw, expected):
    assert load(UsState(), raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "Atlantis",
        "Bavaria",
        "XX",
        36,
        pytest.param("Florida (XX)", id="dropdown-code-of-no-state"),
        pytest.param("Atlantis (FL)", id="dropdown-name-of-no-state"),
        pytest.param("NY - New York - NY", id="three-parts"),
        pytest.param("Florida (FL) (FL)", id="two-parentheses"),
        pytest.param("New (NY) York", id="parentheses-inside-a-name"),
        pytest.param("Armed Forces (NY)", id="armed-forces-beside-a-state-that-is-none-of-theirs"),
    ],
)
def test_us_state_refuses(raw):
    assert error_of(UsState(), raw) == (
        "expected a US state or Canadian province: a postal code such as NY or ON, or its name"
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("Florida (NY)", id="name-then-another-state-s-code"),
        pytest.param("NY - Florida", id="code-dash-another-state-s-name"),
        pytest.param("Texas \u2014 CA", id="name-em-dash-another-state-s-code"),
        pytest.param("Ontario (NY)", id="province-then-a-state-s-code"),
        pytest.param("Armed Forces Africa (AP)", id="military-state-then-another-military-code"),
        pytest.param("AE - Armed Forces Americas (except Canada)", id="code-dash-another-name-in-parentheses"),
    ],
)
def test_us_state_refuses_a_label_whose_name_and_code_disagree(raw):
    assert error_of(UsState(), raw) == (
        "expected a US state or Canadian province whose name and postal code name the same one"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("yes", True, id="yes"),
        pytest.param("no", False, id="no"),
        pytest.param("true", True, id="true"),
        pytest.param("1", True, id="one-as-text"),
        pytest.param("on", True, id="on"),
        pytest.param("YES", True, id="yes-upper"),
        pytest.param("t", True, id="t"),
        pytest.param("Agreed", True, id="agreed"),
        pytest.param(1, True, id="one"),
        pytest.param("F", False, id="f"),
        pytest.param("off", False, id="off"),
        pytest.param(" unchecked ", False, id="unchecked"),
        pytest.param(False, False, id="false"),
    ],
)
def test_loose_bool(raw, expected):
    assert load(LooseBool(), raw) is expected


@pytest.mark.parametrize("raw", ["maybe", 2, 0.5, ["yes"]])
def test_loose_bool_refuses(raw):
    assert error_of(LooseBool(), raw) == "expected yes/no, true/false, 1/0 or on/off"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("$45,000", 45000, id="dollars"),
        pytest.param("1,234,567", 1234567, id="millions-commas"),
        pytest.param("45.5K", 45500, id="fractional-k"),
        pytest.param("1.2M", 1200000, id="m-suffix"),
        pytest.param("45000.000", 45000, id="three-zero-decimals-after-ungrouped-thousands"),
        pytest.param("1.500k", 1500, id="three-decimals-before-a-suffix"),
        pytest.param("0.000", 0, id="zero-with-three-zero-decimals"),
        pytest.param("$0.000", 0, id="zero-dollars-with-three-zero-decimals"),
        pytest.param("-$5", -5, id="negative-dollars"),
        pytest.param(3.0, 3, id="whole-float"),
        pytest.param("2147483647", 2147483647, id="int32-max"),
        pytest.param("\uff14\uff15\uff10\uff10\uff10", 45000, id="fullwidth-digits"),
        pytest.param("$\u0664\u0665,\u0660\u0660\u0660/yr", 45000, id="arabic-indic-digits"),
    ],
)
def test_loose_int(raw, expected):
    assert load(LooseInt(), raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("12,34", "expected a whole number such as 45000 or $45,000", id="bad-grouping"),
        pytest.param("45.000", "expected a whole number such as 45000 or $45,000", id="thousands-grouped-with-a-dot"),
        pytest.param("$1.500/yr", "expected a whole number such as 45000 or $45,000", id="dollars-grouped-with-a-dot"),
        pytest.param("forty", "expected a whole number such as 45000 or $45,000", id="words"),
        pytest.param("\u00b2", "expected a whole number such as 45000 or $45,000", id="superscript-is-no-digit"),
        pytest.param(True, "expected a whole number such as 45000 or $45,000", id="boolean"),
        pytest.param(float("inf"), "expected a whole number such as 45000 or $45,000", id="infinity"),
        pytest.param("2.5", "expected a whole number, without a fraction", id="fraction"),
        pytest.param("0.500", "expected a whole number, without a fraction", id="three-decimal-fraction-of-zero"),
        pytest.param("2147483648", "expected a whole number from -2147483648 to 2147483647", id="int32-overflow"),
    ],
)
def test_loose_int_refuses(raw, message):
    assert error_of(LooseInt(), raw) == message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("non-binary", "Non-Binary", id="canonical-lower"),
        pytest.param("NON_BINARY", "Non-Binary", id="underscore"),
        pytest.param("Prefer not to say", "Prefer Not to Say", id="case"),
        pytest.param("w", "Female", id="alias"),
    ],
)
def test_loose_enum(raw, expected):
    assert load(LooseEnum(GENDERS, {"w": "Female"}), raw) == expected


def test_loose_enum_refuses_and_lists_the_choices():
    assert error_of(LooseEnum(("A", "B")), "c") == "expected one of A, B"


def test_loose_enum_rejects_aliases_outside_the_choices():
    with pytest.raises(ValueError, match="outside the choices"):
        LooseEnum(("A",), {"x": "Z"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("  a \n b  ", "a b", id="collapse"),
        pytest.param("a\x00b", "a b", id="control-character"),
        pytest.param("", None, id="blank"),
        pytest.param(42, "42", id="integer"),
        pytest.param("x" * 10, "x" * 10, id="at-limit"),
    ],
)
def test_trimmed_string(raw, expected):
    assert load(TrimmedString(10), raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("x" * 11, "expected at most 10 characters", id="too-long"),
        pytest.param(["x"], "expected text", id="list"),
        pytest.param(False, "expected text", id="boolean"),
    ],
)
def test_trimmed_string_refuses(raw, message):
    assert error_of(TrimmedString(10), raw) == message


def test_email_address_checks_shape_and_length():
    assert load(EmailAddress(255), " sam@example.com ") == "sam@example.com"
    assert error_of(EmailAddress(255), "sam@") == "expected an email address"
    assert error_of(EmailAddress(20), "a" * 20 + "@example.com") == "expected at most 20 characters"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("sam@example.com.", id="bare"),
        pytest.param("Sam Example <sam@example.com.>", id="with-a-display-name"),
        pytest.param("mailto:sam@example.com.", id="mailto-link"),
    ],
)
def test_email_address_drops_the_dot_ending_a_fully_qualified_domain(raw):
    assert load(EmailAddress(255), raw) == "sam@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("sam@example.com..", id="two-dots"),
        pytest.param("sam@.", id="a-dot-alone"),
        pytest.param("sam.example.com.", id="no-at-sign"),
    ],
)
def test_email_address_refuses_more_than_a_domain_s_closing_dot(raw):
    assert error_of(EmailAddress(255), raw) == "expected an email address"


@pytest.mark.parametrize(
    ("zip5", "expected"),
    [
        pytest.param("10001", ZipDetails("NY", "New York", "America/New_York"), id="nyc"),
        pytest.param("85001", ZipDetails("AZ", "Phoenix", "America/Phoenix"), id="phoenix"),
        pytest.param("47601", ZipDetails("IN", "Boonville", "America/Chicago"), id="indiana-central"),
        pytest.param("09001", ZipDetails("AE", "Apo", None), id="military"),
        pytest.param("99999", None, id="unknown"),
        pytest.param("1000", None, id="malformed"),
        pytest.param("10001-1234", None, id="zip-plus-4-is-not-zip5"),
    ],
)
def test_zip_details(zip5, expected):
    assert zip_details(zip5) == expected


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        pytest.param("+18085550100", "Pacific/Honolulu", id="hawaii"),
        pytest.param("+16025550100", "America/Phoenix", id="arizona"),
        pytest.param("+14155552671", "America/Los_Angeles", id="san-francisco"),
        pytest.param("+19075550100", None, id="alaska-two-zones"),
        pytest.param("+12085550100", None, id="idaho-two-zones"),
        pytest.param("+18005550100", None, id="toll-free-every-zone"),
        pytest.param("+11234567890", None, id="invalid"),
        pytest.param("not a number", None, id="garbage"),
    ],
)
def test_timezone_for_phone(e164, expected):
    assert timezone_for_phone(e164) == expected


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        pytest.param("Jane Example", ("Jane", "Example"), id="two-words"),
        pytest.param("Mary Ann Smith", ("Mary", "Ann Smith"), id="middle-name-goes-last"),
        pytest.param("Ludwig van Beethoven", ("Ludwig", "van Beethoven"), id="particle"),
        pytest.param("Smith, John", ("John", "Smith"), id="last-comma-first"),
        pytest.param("John Smith, Jr.", ("John", "Smith Jr."), id="suffix-after-comma"),
        pytest.param("Smith, John, Jr.", ("John", "Smith Jr."), id="last-comma-first-comma-suffix"),
        pytest.param("King, Martin Luther, Jr.", ("Martin Luther", "King Jr."), id="last-comma-first-middle-suffix"),
        pytest.param("Dr. Sam Q. Example Jr.", ("Sam", "Example Jr."), id="title-middle-initial-suffix"),
        pytest.param("John F. Kennedy", ("John", "Kennedy"), id="middle-initial-dropped"),
        pytest.param("JOHN A SMITH", ("JOHN", "SMITH"), id="middle-initial-without-a-dot"),
        pytest.param("J. R. R. Tolkien", ("J.", "Tolkien"), id="initials-first"),
        pytest.param("Jane D.", ("Jane", "D."), id="last-name-initial-kept"),
        pytest.param("Sam Example V", ("Sam", "Example V"), id="roman-suffix-not-an-initial"),
        pytest.param("Mary O Brien", ("Mary", "O Brien"), id="irish-o-without-apostrophe"),
        pytest.param("SMITH, JOHN A", ("JOHN", "SMITH"), id="last-comma-first-initial"),
        pytest.param("Smith, Mary Ann", ("Mary Ann", "Smith"), id="last-comma-two-given-names"),
        pytest.param("Smith, Dr. John Q.", ("John", "Smith"), id="last-comma-title-first-initial"),
        pytest.param("Smith, Dr.", (None, "Smith"), id="last-comma-title-only"),
        pytest.param("Sra. María López", ("María", "López"), id="spanish-title-senora"),
        pytest.param("Sr. Juan Pérez", ("Juan", "Pérez"), id="spanish-title-senor"),
        pytest.param("Hon. Jane Smith", ("Jane", "Smith"), id="title-honorable"),
        pytest.param("John Smith, Sr.", ("John", "Smith Sr."), id="senior-after-comma-is-a-suffix"),
        pytest.param("Smith, John, Sr.", ("John", "Smith Sr."), id="last-comma-first-comma-senior"),
        pytest.param('Robert "Bob" Smith', ("Robert", "Smith"), id="nickname-in-quotes"),
        pytest.param("Robert (Bob) Smith", ("Robert", "Smith"), id="nickname-in-parentheses"),
        pytest.param("Smith, Robert \u201cBob\u201d", ("Robert", "Smith"), id="last-comma-first-nickname-curly-quotes"),
        pytest.param("(Bob)", ("(Bob)", None), id="only-a-parenthesized-word-kept"),
        pytest.param("Jane Example, RN", ("Jane", "Example RN"), id="credential-after-comma"),
        pytest.param("Example, Jane, CPA", ("Jane", "Example CPA"), id="last-comma-first-comma-credential"),
        pytest.param("Mrs. Zoë O'Brien", ("Zoë", "O'Brien"), id="title"),
        pytest.param("Mrs. Smith", (None, "Smith"), id="title-before-a-surname-alone"),
        pytest.param("Dr Smith Jr.", (None, "Smith Jr."), id="title-before-a-surname-and-suffix"),
        pytest.param("Dr.", (None, None), id="title-alone-names-nobody"),
        pytest.param("Mr. and Mrs. Smith", (None, "Smith"), id="couple-titles-before-a-surname"),
        pytest.param("Mr & Mrs John Smith", ("John", "Smith"), id="couple-titles-before-a-first-name"),
        pytest.param("Dr. and Mrs. Jones", (None, "Jones"), id="couple-different-titles"),
        pytest.param("Mr.&Mrs. Smith", (None, "Smith"), id="couple-titles-joined-without-spaces"),
        pytest.param("Mr. and Mrs. Smith Jr.", (None, "Smith Jr."), id="couple-titles-surname-suffix"),
        pytest.param("Sr. y Sra. López", (None, "López"), id="couple-spanish-titles"),
        pytest.param("Mr. and Mrs.", (None, None), id="couple-titles-alone-name-nobody"),
        pytest.param("Smith, Mr. and Mrs.", (None, "Smith"), id="last-comma-couple-titles"),
        pytest.param("Smith, Mr. & Mrs. John", ("John", "Smith"), id="last-comma-couple-titles-first"),
        pytest.param("John and Jane Smith", ("John", "Smith"), id="couple-given-names-share-a-surname"),
        pytest.param("Mr. John and Mrs. Jane Smith", ("John", "Smith"), id="couple-each-titled"),
        pytest.param("Juan y María López", ("Juan", "López"), id="couple-given-names-spanish"),
        pytest.param("Smith, John & Jane", ("John", "Smith"), id="last-comma-couple-given-names"),
        pytest.param("John and Jane", ("John", None), id="couple-given-names-alone"),
        pytest.param("Sandy and", ("Sandy", None), id="conjunction-left-at-the-end"),
        pytest.param("José Ortega y Gasset", ("José", "Ortega y Gasset"), id="spanish-surnames-joined-by-y"),
        pytest.param("JOHN Y SMITH", ("JOHN", "SMITH"), id="capital-y-is-a-middle-initial"),
        pytest.param("Andy Anderson", ("Andy", "Anderson"), id="conjunction-inside-a-word-is-a-name"),
        pytest.param("Cher", ("Cher", None), id="mononym"),
        pytest.param("   ", (None, None), id="blank"),
    ],
)
def test_split_full_name(full, expected):
    assert split_full_name(full) == expected


def test_state_code_returns_none_for_unknown_names():
    assert state_code("Narnia") is None


_AREA_CODES = ["212", "415", "907", "671", "340", "787", "684", "416", "809", "876", "888", "900", "311", "202"]
_NANP_DIGITS = st.one_of(
    st.text(alphabet="0123456789", min_size=10, max_size=10),
    st.builds(
        lambda area, exchange, line: f"{area}{exchange}{line}",
        st.sampled_from(_AREA_CODES),
        st.from_regex(r"[2-9][0-9]{2}", fullmatch=True),
        st.from_regex(r"[0-9]{4}", fullmatch=True),
    ),
)
_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  "])


@settings(max_examples=500, deadline=None)
@given(digits=_NANP_DIGITS, prefix=st.sampled_from(["", "1", "+1", "1 ", "+1 ", "+", "0"]), sep=_SEPARATORS,
       parens=st.booleans())  # fmt: skip
def test_phone_reads_plain_spellings_exactly_as_phonenumbers_does(digits, prefix, sep, parens):
    area = f"({digits[:3]})" if parens else digits[:3]
    raw = f"{prefix}{area}{sep}{digits[3:6]}{sep}{digits[6:]}"

    expected = _phonenumbers_verdict(raw)

    try:
        assert load(Phone(), raw) == expected
    except ValidationError:
        assert expected is None


def _phonenumbers_verdict(raw):
    """What phonenumbers alone says: the E.164 of a valid number in a served region, else None."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    national = str(number.national_number)
    if (
        number.country_code != 1
        or not phonenumbers.is_valid_number(number)
        or region not in SERVED_PHONE_REGIONS
        or national[4:6] == "11"
        or phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.TOLL_FREE,
                                                 phonenumbers.PhoneNumberType.PREMIUM_RATE)
    ):  # fmt: skip
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _outcome(load, value):
    try:
        return "ok", load(value)
    except ValidationError as exc:
        return "error", exc.messages


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(min_size=1), st.integers(), st.booleans(), st.floats(allow_nan=False)))
def test_loading_a_given_value_is_deserializing_it_for_every_record_field(value):
    for name, field in record_fields(lambda: TODAY).items():
        if isinstance(value, str) and not value.strip():
            continue  # normalization never hands a blank value to a field
        assert _outcome(field.load_given, value) == _outcome(field.deserialize, value), name


def test_a_field_with_a_validator_still_applies_it_to_given_values():
    field = TrimmedString(10, validate=validate.OneOf(["yes"]))

    assert field.load_given(" yes ") == "yes"
    with pytest.raises(ValidationError):
        field.load_given("no")


def test_a_field_with_its_own_load_steps_still_runs_them_on_given_values():
    assert TrimmedString(10, post_load=str.upper).load_given("abc") == "ABC"
    assert TrimmedString(10, pre_load=str.lower).load_given("ABC") == "abc"
    late = TrimmedString(10)
    late.validators.append(validate.OneOf(["yes"]))
    with pytest.raises(ValidationError):
        late.load_given("no")


def test_warming_up_loads_every_table_a_lead_may_need():
    from app.schemas import geo

    geo.warm_up()

    assert geo._served_zones_by_lower_name.cache_info().currsize == 1
    assert geo._zip_table.cache_info().currsize == 1


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        pytest.param(Timezone(), "(" * 100_000, id="time-zone-of-parentheses"),
        pytest.param(LooseInt(), "1" * 100_000, id="number-of-many-digits"),
        pytest.param(DateOfBirth(), "1/" * 50_000, id="date-of-many-parts"),
        pytest.param(UsState(), "a " * 50_000, id="state-of-many-words"),
    ],
)
def test_a_value_far_longer_than_any_spelling_is_refused_before_its_patterns_run(field, raw):
    assert error_of(field, raw) == "expected at most 200 characters"
