"""Pure lookups behind normalization: ZIP details, a phone's time zone, state codes, time-zone spellings, names."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezone

# zipcodes ships no type hints; this names the one function we use with the type it has.
_zip_list_all: Callable[[], list[dict[str, Any]]] = zipcodes.list_all
_ZIP5 = re.compile(r"\d{5}", re.ASCII)
_NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v", "md", "phd", "esq", "dds"})
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_PARENTHESIZED = re.compile(r"\([^)]*\)")

# USPS codes of the states, DC, the territories, the freely associated states and the military "states"
# (the last two appear in ZIP data, so a ZIP-derived state always round-trips through this table).
US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia", "PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "GU": "Guam",
    "AS": "American Samoa", "MP": "Northern Mariana Islands", "FM": "Federated States of Micronesia",
    "MH": "Marshall Islands", "PW": "Palau", "AA": "Armed Forces Americas", "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific",
}  # fmt: skip
_STATE_ALIASES = {
    "washington dc": "DC", "washington d c": "DC", "d c": "DC", "virgin islands": "VI", "us virgin islands": "VI",
    "usvi": "VI", "cnmi": "MP", "micronesia": "FM",
}  # fmt: skip

# Spellings of US time zones -> what careCycle gets. The four abbreviations careCycle accepts (and their
# spelled-out "Standard Time" names) stay abbreviations: they are already valid and "MST" is exactly
# right for Arizona, which a guessed America/Denver would not be. Everything else becomes an IANA name,
# the only spelling that is right for Arizona, Hawaii, Alaska and the territories in every season.
_FAMILIES = {"eastern": ("e", "America/New_York"), "central": ("c", "America/Chicago"),
             "mountain": ("m", "America/Denver"), "pacific": ("p", "America/Los_Angeles")}  # fmt: skip
_DAYLIGHT_TAILS = ("", " time", " daylight time", " daylight")
TIMEZONE_ALIASES: dict[str, str] = {
    **{f"{name} standard{tail}": f"{a}ST".upper() for name, (a, _) in _FAMILIES.items() for tail in ("", " time")},
    **{f"{a}st": f"{a}ST".upper() for a, _ in _FAMILIES.values()},
    **{f"{name}{tail}": zone for name, (_, zone) in _FAMILIES.items() for tail in _DAYLIGHT_TAILS},
    **{f"{a}{tail}": zone for a, zone in _FAMILIES.values() for tail in ("t", "dt")},
    **{f"us {name}": zone for name, (_, zone) in _FAMILIES.items()},
    **dict.fromkeys(["arizona", "arizona time", "us arizona", "mountain standard time arizona", "mst arizona",
                     "az"], "America/Phoenix"),
    **dict.fromkeys(["hawaii", "hawaii time", "hawaiian", "hawaii standard time", "hst", "hawaii aleutian",
                     "hawaii aleutian time", "hawaii aleutian standard time", "us hawaii"], "Pacific/Honolulu"),
    **dict.fromkeys(["alaska", "alaska time", "alaska standard time", "alaska daylight time", "akst", "akdt",
                     "akt", "us alaska"], "America/Anchorage"),
    **dict.fromkeys(["atlantic", "atlantic time", "atlantic standard time", "ast", "puerto rico"],
                    "America/Puerto_Rico"),
    **dict.fromkeys(["chamorro", "chamorro standard time", "chst", "guam"], "Pacific/Guam"),
    **dict.fromkeys(["samoa", "samoa standard time", "american samoa", "us samoa"], "Pacific/Pago_Pago"),
    "us aleutian": "America/Adak", "us east indiana": "America/Indiana/Indianapolis",
    "us michigan": "America/Detroit", "us indiana starke": "America/Indiana/Knox",
}  # fmt: skip


@dataclass(frozen=True)
class ZipDetails:
    """What the `zipcodes` dataset knows about a ZIP: USPS state code, city, IANA time zone (if any)."""

    state: str
    city: str
    timezone: str | None


@functools.cache
def iana_timezones() -> frozenset[str]:
    """Return every IANA zone name the interpreter knows (tzdata), computed once."""
    return frozenset(zoneinfo.available_timezones())


def zip_details(zip5: str) -> ZipDetails | None:
    """Return the dataset's details for a 5-digit ZIP, or None when it is malformed or unknown.

    The dataset's `timezone` is already an IANA name for almost every entry; military APO/FPO ZIPs
    have none and one Alaskan entry holds a place name, so anything not a real zone becomes None.
    """
    if not _ZIP5.fullmatch(zip5) or zip5 not in _zip_index():
        return None  # zipcodes raises ValueError on malformed input; we answer "unknown" instead
    return _known_zip_details(zip5)


@functools.cache
def _known_zip_details(zip5: str) -> ZipDetails:
    """Details of a ZIP in the dataset, built once per ZIP (at most the dataset's 42k entries)."""
    entry = _zip_index()[zip5]
    timezone = entry.get("timezone") or None
    if timezone not in iana_timezones():
        timezone = None
    return ZipDetails(state=str(entry["state"]), city=str(entry["city"]), timezone=timezone)


@functools.cache
def _zip_index() -> dict[str, dict[str, Any]]:
    """The dataset keyed by ZIP, built on first use: `zipcodes.matching` scans all 42k entries per call."""
    return {str(entry["zip_code"]): entry for entry in _zip_list_all()}


def warm_up() -> None:
    """Load the ZIP dataset and phone metadata now, not inside some process's first request (about 1 s)."""
    _zip_index()
    timezone_for_phone("+12125550142")


def is_known_zip(zip5: str) -> bool:
    """Return whether a 5-digit ZIP exists in the `zipcodes` dataset (active or retired)."""
    return zip_details(zip5) is not None


def timezone_for_phone(e164: str) -> str | None:
    """Return the IANA zone of a valid phone number's area code, or None when it is not exactly one zone.

    Area codes that span zones (Idaho 208, Alaska 907, toll-free 8XX) give several zones: the zone is
    then unknown rather than guessed, because a wrong guess could put a call outside the TCPA window.
    """
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    zones = phone_timezone.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] not in iana_timezones():
        return None
    return str(zones[0])


def split_full_name(full: str) -> tuple[str | None, str | None]:
    """Split a full name into (first, last): the first word is the first name, the rest the last name.

    "Last, First" is recognised by its comma; courtesy titles ("Dr.", "Mrs") are dropped. The first
    word is what a caller needs ("Hi Mary"); multi-word surnames ("García López", "van Beethoven")
    stay whole, at the cost of a middle name landing in the last name ("Mary Ann Smith" ->
    "Mary", "Ann Smith"). A single word is a first name only.
    """
    text = " ".join(full.split())
    if "," in text:
        last, _, first = text.partition(",")
        if first.strip() and not _is_suffix(first):
            text = f"{first.strip()} {last.strip()}"
    words = text.replace(",", " ").split()
    while len(words) > 1 and words[0].rstrip(".").lower() in _NAME_PREFIXES:
        words = words[1:]
    if not words:
        return None, None
    return words[0], " ".join(words[1:]) or None


def _is_suffix(text: str) -> bool:
    """Return whether text after a comma is a generational or academic suffix, not a first name."""
    return text.strip().rstrip(".").lower() in _NAME_SUFFIXES


def _lookup_key(text: str) -> str:
    """Lower-case words separated by single spaces, punctuation dropped: "D.C." -> "d c"."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def state_code(text: str) -> str | None:
    """Return the USPS code for a state/territory name or code in any case ("new york", "Ny"), else None."""
    key = _lookup_key(text)
    if key.upper() in US_STATES:
        return key.upper()
    if key.replace(" ", "").upper() in US_STATES and len(key) <= 4:
        return key.replace(" ", "").upper()  # "N.Y." -> "n y" -> "NY"
    return _STATE_NAMES.get(key) or _STATE_ALIASES.get(key)


def timezone_name(text: str) -> str | None:
    """Return careCycle's spelling of a time zone (see TIMEZONE_ALIASES), or None when it is not one we know.

    Accepts IANA names in any case ("america/phoenix"), the aliases above, and Windows-style labels
    ("(UTC-05:00) Eastern Time (US & Canada)"). Fixed offsets ("Etc/GMT+5", "UTC-5") are refused: an
    offset says nothing about daylight saving, so it cannot place a call in the TCPA window.
    """
    for candidate in (text, _PARENTHESIZED.sub(" ", text)):
        key = _lookup_key(candidate)
        key = key.removesuffix(" zone").removesuffix(" timezone")
        if key in TIMEZONE_ALIASES:
            return TIMEZONE_ALIASES[key]
    return _iana_by_lower_name().get(text.strip().lower())


@functools.cache
def _iana_by_lower_name() -> dict[str, str]:
    """Area/Location IANA names by their lower-case spelling; "Etc/" offsets and legacy names excluded."""
    return {
        name.lower(): name
        for name in iana_timezones()
        if "/" in name and not name.startswith(("Etc/", "US/", "SystemV/"))
    }


_STATE_NAMES = {_lookup_key(name): code for code, name in US_STATES.items()}
