"""Pure lookups behind normalization: ZIP details, a phone's time zone, state codes, time-zone spellings, names."""

from __future__ import annotations

import datetime
import functools
import importlib.resources
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as phone_timezone

from app.schemas.ziptable import ZipTable, load_zip_table

# Courtesy titles, also of Spanish-language forms (Sr./Sra./Srta., Dra.). "Sr." leading a name is Señor; after a
# comma it is Senior (a suffix), which is why a title-only given name is told from a suffix first.
_NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "mstr", "dr", "dra", "prof", "rev", "fr", "hon", "sir",
                            "sr", "sra", "srta"})  # fmt: skip
_NAME_SUFFIXES = frozenset({"jr", "jnr", "sr", "snr", "ii", "iii", "iv", "v", "2nd", "3rd",
                            "md", "phd", "esq", "dds", "rn", "lpn", "cpa", "mba"})  # fmt: skip
# A nickname written into a full name: in parentheses, straight or curly double quotes.
_NICKNAME = re.compile(r"\([^()]*\)|\"[^\"]*\"|\u201c[^\u201c\u201d]*\u201d")
# The words joining a couple's titles or given names ("Mr. and Mrs. Smith", "Sr. y Sra. López", "John & Jane Smith").
_NAME_CONJUNCTIONS = frozenset({"and", "&", "y"})
_INITIAL = re.compile(r"[^\W\d_]\.?")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_PARENTHESIZED = re.compile(r"\([^)]*\)")
# A dropdown's label naming a state twice, by its name and its code: "Florida (FL)", "(FL) Florida", "NY - New York"
# (no state's name holds a dash or a parenthesis).
_LABEL_PARENTHESIZED = re.compile(r"\s*(?P<before>[^()]*?)\s*\((?P<inside>[^()]*)\)\s*(?P<after>[^()]*?)\s*")
_LABEL_DASH = re.compile("[-\u2010-\u2015\u2212]")
# The military "states", which a label may name by their shared name beside the code.
_ARMED_FORCES = "armed forces"
_ARMED_FORCES_CODES = frozenset({"AA", "AE", "AP"})

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
# Canada Post's codes of the provinces and territories: a Canadian lead (its +1 phone is served) names its
# province as a US lead names its state, and careCycle's `state` takes either.
CA_PROVINCES: dict[str, str] = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories", "NU": "Nunavut",
    "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec", "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip
_STATE_ALIASES = {
    "washington dc": "DC", "washington d c": "DC", "d c": "DC", "virgin islands": "VI", "us virgin islands": "VI",
    "usvi": "VI", "virgin islands u s": "VI", "cnmi": "MP", "micronesia": "FM", "newfoundland": "NL", "pei": "PE",
    "p e i": "PE", "nwt": "NT", "yukon territory": "YT", "hawai i": "HI",
    # USPS's names of the military "states" (Publication 28), as state lists copied from it write them (Google's
    # address data writes "Armed Forces (AE)", read as a label): AE serves Europe, Africa, the Middle East and
    # Canada; AA the Americas but Canada.
    "armed forces americas except canada": "AA", "armed forces africa": "AE", "armed forces middle east": "AE",
    "armed forces canada": "AE",
    # The traditional (GPO, AP) abbreviations; those equal to a USPS code (Ga., Pa., N.Y.) need no entry.
    "ala": "AL", "ariz": "AZ", "ark": "AR", "calif": "CA", "cal": "CA", "colo": "CO", "conn": "CT", "del": "DE",
    "fla": "FL", "ill": "IL", "ind": "IN", "kan": "KS", "kans": "KS", "mass": "MA", "mich": "MI", "minn": "MN",
    "miss": "MS", "mont": "MT", "neb": "NE", "nebr": "NE", "nev": "NV", "n mex": "NM", "n dak": "ND", "s dak": "SD",
    "okla": "OK", "ore": "OR", "oreg": "OR", "penn": "PA", "penna": "PA", "tenn": "TN", "tex": "TX", "wash": "WA",
    "w va": "WV", "wis": "WI", "wisc": "WI", "wyo": "WY",
    "alta": "AB", "man": "MB", "nfld": "NL", "ont": "ON", "que": "QC", "sask": "SK",
}  # fmt: skip

# The regions intake serves (phones, time zones): the US, Canada and the US territories on the NANP (+1).
SERVED_REGIONS = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})

# Spellings of US time zones -> the IANA name careCycle gets. An abbreviation or a "Standard Time" name
# ("EST", Windows' "Eastern Standard Time") names a family of zones, not a fixed offset: sent as "EST", a
# lead in New York would be called an hour late in summer, past the TCPA window. Each family becomes its
# main zone here; `zone_within_family` then picks the lead's own zone of that family from its ZIP or phone
# (Arizona's America/Phoenix for a lead who wrote "MST" with a Phoenix ZIP).
# Atlantic is Windows' and Canada's America/Halifax (with daylight saving); a lead's Puerto Rico or Virgin
# Islands ZIP or phone narrows it to its own zone, which has none.
_FAMILIES = {"eastern": ("e", "America/New_York"), "central": ("c", "America/Chicago"),
             "mountain": ("m", "America/Denver"), "pacific": ("p", "America/Los_Angeles"),
             "atlantic": ("a", "America/Halifax")}  # fmt: skip
# What a family name becomes: a zone that may stand for any zone of its family.
FAMILY_ZONES = frozenset(zone for _, zone in _FAMILIES.values())
_FAMILY_TAILS = ("", " time", " standard", " standard time", " daylight time", " daylight")
TIMEZONE_ALIASES: dict[str, str] = {
    **{f"{name}{tail}": zone for name, (_, zone) in _FAMILIES.items() for tail in _FAMILY_TAILS},
    **{f"{a}{tail}": zone for a, zone in _FAMILIES.values() for tail in ("t", "st", "dt")},
    **{f"us {name}": zone for name, (_, zone) in _FAMILIES.items()},
    **dict.fromkeys(["arizona", "arizona time", "us arizona", "mountain standard time arizona", "mst arizona",
                     "az", "us mountain standard time"], "America/Phoenix"),
    **dict.fromkeys(["hawaii", "hawaii time", "hawaiian", "hawaii standard time", "hst", "hawaii aleutian",
                     "hawaii aleutian time", "hawaii aleutian standard time", "us hawaii",
                     "hawaiian standard time"], "Pacific/Honolulu"),
    **dict.fromkeys(["alaska", "alaska time", "alaska standard time", "alaska daylight time", "akst", "akdt",
                     "akt", "us alaska", "alaskan standard time"], "America/Anchorage"),
    "puerto rico": "America/Puerto_Rico",
    **dict.fromkeys(["newfoundland", "newfoundland time", "newfoundland standard time", "newfoundland daylight time",
                     "nst", "ndt", "canada newfoundland"], "America/St_Johns"),
    **dict.fromkeys(["chamorro", "chamorro standard time", "chst", "guam"], "Pacific/Guam"),
    **dict.fromkeys(["samoa", "samoa standard time", "american samoa", "us samoa"], "Pacific/Pago_Pago"),
    "us aleutian": "America/Adak", "aleutian standard time": "America/Adak",
    "us east indiana": "America/Indiana/Indianapolis", "us eastern standard time": "America/Indiana/Indianapolis",
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
    entry = _zip_table().get(zip5)  # None as well for a malformed ZIP
    if entry is None:
        return None
    timezone = entry.timezone if entry.timezone in iana_timezones() else None
    return ZipDetails(state=entry.state, city=entry.city, timezone=timezone)


@functools.cache
def _zip_table() -> ZipTable:
    """The dataset's ZIPs with what lookups use (`app.schemas.ziptable`), built on first use."""
    return load_zip_table()


def warm_up() -> None:
    """Load the ZIP table, phone metadata and the served time zones now, not inside some process's first
    request (about 1 s)."""
    _zip_table()
    timezone_for_phone("+12125550142")
    _served_zones_by_lower_name()


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

    "Last, First" (and "Last, First, Suffix") is recognised by its commas: the last name is then the part
    before the comma, and every given name after it is the first name ("Smith, Mary Ann" -> "Mary Ann").
    Courtesy titles ("Dr.", "Mrs") and nicknames ('Robert "Bob" Smith', "Robert (Bob) Smith") are dropped, and
    so are middle initials ("Sam Q. Example" -> "Sam", "Example"): no surname is one letter standing before
    another word. The first word is what a caller needs ("Hi Mary"); multi-word surnames ("García López",
    "van Beethoven") stay whole, at the cost of a middle name landing in the last name ("Mary Ann Smith" ->
    "Mary", "Ann Smith"). A single word is a first name only, but after a title it is a surname ("Mrs. Smith",
    "Dr. Smith Jr."); a title alone is no name. A couple is named by its first person: the titles of a couple's
    salutation go ("Mr. and Mrs. Smith" -> no first name, "Smith"; "Mr & Mrs John Smith" -> "John", "Smith"), and
    so does the partner's given name ("John and Jane Smith" -> "John", "Smith"): a conjunction is never a name.
    """
    text = " ".join(full.replace("&", " & ").split())  # "Mr.&Mrs. Smith": the ampersand is a word of its own
    without_nicknames = " ".join(_NICKNAME.sub(" ", text).split())
    text = without_nicknames or text  # 'Robert "Bob" Smith': the nickname is neither name
    if "," in text:
        family, _, given = text.partition(",")
        rest, comma, suffix = given.rpartition(",")
        if comma and rest.strip() and _is_suffix(suffix):  # "Last, First, Suffix": the suffix follows the last name
            given, family = rest, f"{family.strip()} {suffix.strip()}"
        given_words = _without_partner(_without_titles(_name_words(given)))
        if len(given_words) == 1 and _is_title(given_words[0]) and not _is_suffix(given):  # "Smith, Dr."
            return None, family.strip() or None
        if given_words and not _is_suffix(given):
            first = [given_words[0], *(word for word in given_words[1:] if not _is_initial(word))]
            return " ".join(first), family.strip() or None
    all_words = _name_words(text)
    titled = _without_titles(all_words)
    if not titled or (len(titled) == 1 and _is_title(titled[0])):
        return None, None  # a title alone names nobody
    if len(titled) < len(all_words) and not _is_suffix(titled[0]) and all(map(_is_suffix, titled[1:])):
        return None, " ".join(titled)  # "Mrs. Smith", "Mr. and Mrs. Smith": a title stands before a surname
    words = _without_partner(titled)
    return words[0], " ".join(_without_middle_initials(words[1:])) or None


def _name_words(text: str) -> list[str]:
    """The words of a name, commas aside, without a conjunction at either end ("Sandy and", a field cut short),
    which joins nothing; a "Y" that may be an initial ("Smith, Y") stays."""
    words = text.replace(",", " ").split()
    while words and _is_conjunction(words[-1]) and not _is_initial(words[-1]):
        words = words[:-1]
    while words and _is_conjunction(words[0]) and not _is_initial(words[0]):
        words = words[1:]
    return words


def _without_titles(words: list[str]) -> list[str]:
    """The words without the courtesy titles that lead them, a couple's too ("Mr. and Mrs.", "Dr. & Mrs."),
    keeping at least one word."""
    while len(words) > 1 and _is_title(words[0]):
        words = words[1:]
        if len(words) > 1 and _is_conjunction(words[0]) and _is_title(words[1]):
            words = words[1:]  # "and Mrs. Smith": the conjunction joins two titles
    return words


def _without_partner(words: list[str]) -> list[str]:
    """A couple's names as the first person's: the conjunction and the partner's given name (and title) dropped,
    the surname they share kept ("John and Jane Smith" -> "John Smith", "Juan y María López" -> "Juan López")."""
    if len(words) < 3 or not _is_conjunction(words[1]) or _is_initial(words[1]):  # "JOHN Y SMITH": an initial
        return words
    partner = _without_titles(words[2:])
    return [words[0], *partner[1:]]


def _is_conjunction(word: str) -> bool:
    """Return whether a word joins a couple's titles or names ("and", "&", Spanish "y")."""
    return word.lower() in _NAME_CONJUNCTIONS


def _is_title(word: str) -> bool:
    """Return whether a word is a courtesy title ("Dr.", "Mrs")."""
    return word.strip().rstrip(".").lower() in _NAME_PREFIXES


def _without_middle_initials(words: list[str]) -> list[str]:
    """The words after a first name without the initials that stand before the surname: "Q. Example Jr." ->
    "Example Jr."; a closing initial ("Jane D.") is the surname's and stays."""
    names = [index for index, word in enumerate(words) if not _is_initial(word) and not _is_suffix(word)]
    if not names:
        return words
    return [word for index, word in enumerate(words) if not (index < names[-1] and _is_initial(word))]


def _is_initial(word: str) -> bool:
    """Return whether a word is a single-letter initial ("Q.", "A"); Irish "O" (O Brien, apostrophe lost) is
    part of a surname, and a lowercase "y" joins Spanish surnames ("Ortega y Gasset")."""
    return _INITIAL.fullmatch(word) is not None and word.rstrip(".").lower() != "o" and word != "y"


def _is_suffix(text: str) -> bool:
    """Return whether text after a comma is a generational or academic suffix, not a first name."""
    return text.strip().rstrip(".").lower() in _NAME_SUFFIXES


def _lookup_key(text: str) -> str:
    """Lower-case words separated by single spaces, accents and punctuation dropped: "D.C." -> "d c",
    "Québec" -> "quebec"."""
    if not text.isascii():
        text = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def state_code(text: str) -> str | None:
    """Return the postal code of a US state or territory, or of a Canadian province or territory, from its name
    or code in any case ("new york", "Ny", "Québec"), else None."""
    key = _lookup_key(text)
    if key.upper() in _STATE_CODES:
        return key.upper()
    if key.replace(" ", "").upper() in _STATE_CODES and len(key) <= 4:
        return key.replace(" ", "").upper()  # "N.Y." -> "n y" -> "NY"
    return _STATE_NAMES.get(key) or _STATE_ALIASES.get(key)


def state_label_codes(text: str) -> tuple[str, str] | None:
    """The codes that the two halves of a dropdown's state label name ("Florida (FL)", "NY - New York"): one
    code each, equal when the label names one state; None when `text` is no such label or a half names no state.
    A label whose parentheses hold no half is read at its dash instead, as a name may hold them ("AA - Armed Forces
    Americas (except Canada)")."""
    parenthesized = _LABEL_PARENTHESIZED.fullmatch(text)
    if parenthesized is not None:
        before, inside, after = parenthesized.group("before", "inside", "after")
        codes = _halves_codes([] if before and after else [before or after, inside])  # "New (NY) York" is no label
        if codes is not None:
            return codes
    return _halves_codes(_LABEL_DASH.split(text))


def _halves_codes(halves: list[str]) -> tuple[str, str] | None:
    """The codes the two halves of a label name, as `state_label_codes` answers; None unless there are two."""
    if len(halves) != 2:
        return None
    codes = [state_code(half) for half in halves]
    first = codes[0] or _armed_forces_code(halves[0], codes[1])
    second = codes[1] or _armed_forces_code(halves[1], codes[0])
    if first is None or second is None:
        return None
    return first, second


def _armed_forces_code(half: str, other: str | None) -> str | None:
    """The code a label's half that names no state stands for when it is "Armed Forces" beside a military code
    (`other`, the other half's): as Google's address data and Chrome's forms write "Armed Forces (AP)", the name
    is any of the three."""
    return other if other in _ARMED_FORCES_CODES and _lookup_key(half) == _ARMED_FORCES else None


def timezone_name(text: str) -> str | None:
    """Return the IANA name of a time zone of the served regions, or None when it is not one we know.

    Accepts IANA names in any case ("america/phoenix"), their older link names ("America/Indianapolis"),
    the aliases above, and Windows-style labels ("(UTC-05:00) Eastern Time (US & Canada)"). A zone outside
    the served regions (Europe/London) is refused: it cannot be where a +1 lead is called. So are fixed
    offsets ("Etc/GMT+5", "UTC-5"): an offset says nothing about daylight saving, so it cannot place a call
    in the TCPA window.
    """
    for candidate in (text, _PARENTHESIZED.sub(" ", text)):
        key = _lookup_key(candidate)
        key = key.removesuffix(" zone").removesuffix(" timezone")
        if key in TIMEZONE_ALIASES:
            return TIMEZONE_ALIASES[key]
    return _served_zones_by_lower_name().get(text.strip().lower())


def zone_within_family(zone: str, hint: str | None) -> str:
    """`hint` (the zone of the lead's ZIP or phone) when `zone` is a family's main zone and `hint` keeps its
    standard offset, else `zone`: "MST" (America/Denver) with an Arizona ZIP is America/Phoenix, "Eastern"
    with a Detroit ZIP America/Detroit. A zone named precisely ("Arizona", America/Phoenix) stays as given,
    and so does a family's zone beside a hint of another family (a Chicago ZIP for "Eastern")."""
    if zone not in FAMILY_ZONES or hint is None or _standard_offset(hint) != _standard_offset(zone):
        return zone
    return hint


@functools.cache
def _standard_offset(zone: str) -> datetime.timedelta | None:
    """A zone's offset from UTC in mid-January (standard time in the served regions, all northern)."""
    return datetime.datetime(2026, 1, 15, 12, tzinfo=zoneinfo.ZoneInfo(zone)).utcoffset()


@functools.cache
def served_timezones() -> frozenset[str]:
    """The IANA zones of the served regions (tzdata's zone.tab), and every zone a US ZIP lies in."""
    table = _tzdata_text("zone.tab")
    zones = {
        columns[2]
        for columns in (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
        if columns[0] in SERVED_REGIONS
    }
    zones.update(_zip_table().timezones())
    return frozenset(zones & iana_timezones())


@functools.cache
def _served_zones_by_lower_name() -> dict[str, str]:
    """Served zones by the lower-case spelling of their name or of a link to them (tzdata's "L" lines)."""
    served = served_timezones()
    names = {zone.lower(): zone for zone in served}
    for line in _tzdata_text("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            if target in served and "/" in link and not link.startswith(("Etc/", "SystemV/")):
                names.setdefault(link.lower(), target)
    return names


def _tzdata_text(name: str) -> str:
    return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")


_STATE_CODES = frozenset(US_STATES) | frozenset(CA_PROVINCES)
_STATE_NAMES = {_lookup_key(name): code for code, name in (*US_STATES.items(), *CA_PROVINCES.items())}
