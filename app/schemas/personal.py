"""Marshmallow fields for what places and identifies a person: phone, ZIP, time zone, state, date of birth and
Medicare number, each read from the spellings people and exports use into careCycle's.

As every field of `app.schemas.fields`, each treats a blank string as "not given" and fails saying what was
expected, never quoting the value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

import phonenumbers

from app.schemas.fields import NormalizingField, ascii_digits, visible, whole_number
from app.schemas.geo import SERVED_REGIONS, is_known_zip, state_code, state_label_codes, timezone_name

MAX_AGE_YEARS = 130
# Where a +1 number may be: careCycle serves the US; Canada and the US territories share its plan.
SERVED_PHONE_REGIONS = SERVED_REGIONS
# Longer than any spelling of a phone with a label and an extension.
MAX_PHONE_CHARS = 64
# A whole number written with a zero fraction, as a spreadsheet exports a column of numbers with blanks.
_ZERO_FRACTION_NUMBER = re.compile(r"(\d{1,15})\.0{1,6}", re.ASCII)

# An extension after the number, in the spellings phonenumbers reads: "ext. 12", "ext: 12", "extn 12",
# "extension 12", "x12", "x.12", "#12", ";ext=12" (RFC 3966).
_PHONE_EXTENSION = re.compile(
    r"(?:;\s*ext=\d{1,20}|[\s,]*(?:(?:extension|extn|ext)\.?\s*[:=]?|(?:x|#)\.?)\s*\d{1,20})\s*$", re.IGNORECASE
)
# A label before the number: a tel: URI's scheme, "Cell:", "Home phone:" (up to three words).
_PHONE_LABEL = re.compile(r"^\s*[^\W\d_]+(?: [^\W\d_]+){0,2} ?:", re.IGNORECASE)
# A label in parentheses after the number (and its extension): "(cell)", "(home phone)" (up to three words).
_PHONE_TRAILING_LABEL = re.compile(r"\s*\(\s*[^\W\d_]+(?: [^\W\d_]+){0,2}\s*\)\s*$")
# The words that name a line, which label a number also without a colon or parentheses ("Cell 212-555-0142",
# "212-555-0142 - mobile"). A closed list, so that no vanity number ("555-CALL") nor note loses its letters.
_PHONE_LABEL_WORDS = (
    r"(?:(?:cell(?:ular)?|mobile|home|work|office|business|main|primary|landline|day(?:time)?|evening)"
    r"(?:\s+(?:phone|number|no))?|cell\s*phone|phone|tel|telephone)\.?"
)
_PHONE_WORD_LABEL = re.compile(rf"^\s*{_PHONE_LABEL_WORDS}(?:\s*[-\u2013\u2014]\s*|\s+)(?=[+(\d])", re.IGNORECASE)
_PHONE_TRAILING_WORD_LABEL = re.compile(
    rf"(?:\s*[,/]\s*|\s+(?:[-\u2013\u2014]\s*)?){_PHONE_LABEL_WORDS}\s*$", re.IGNORECASE
)
_PHONE_PUNCTUATION = re.compile(r"[\s().\-]+")
_PLAIN_NANP = re.compile(r"(?:\+1|1)?([2-9]\d{9})", re.ASCII)
_LETTER = re.compile(r"[^\W\d_]")
# Hyphen and the dashes that word processors and phones type for it (U+2010..U+2015, minus sign U+2212).
_DASHES = "\\-\u2010-\u2015\u2212"
# ZIP+4 however written: "10001-1234", "10001 1234", "100011234", "10001 – 1234", or "10001-" with an empty +4.
_ZIP = re.compile(rf"(\d{{5}})(?:\s*[{_DASHES}]\s*(?:\d{{4}})?|\s?\d{{4}})?", re.ASCII)
# A date's separator: also the dashes that word processors and phones type for a hyphen.
_DATE_SEPARATOR = "[-/.\u2010-\u2015\u2212]"
# A time after a date, as exports and spreadsheets add one: "T00:00:00Z", " 12:00:00 AM", " 00:00:00.000",
# " 00:00:00 UTC", " 08:30 -05:00", PostgreSQL's " 00:00:00+00" (an offset of whole hours written in hours alone).
# The date is taken as written, without shifting it to another zone.
_TIME_OF_DAY = (
    r"(?:(?:T|\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AP]\.?M\.?)?"
    r"(?:\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?)?"
)
_ISO_DATE = re.compile(
    rf"(?P<y>\d{{4}})(?P<sep>{_DATE_SEPARATOR})(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}}){_TIME_OF_DAY}",
    re.ASCII | re.IGNORECASE,
)
_US_DATE = re.compile(
    rf"(?P<m>\d{{1,2}})(?P<sep>{_DATE_SEPARATOR}| )(?P<d>\d{{1,2}})(?P=sep)(?P<y>\d{{4}}|\d{{2}}){_TIME_OF_DAY}",
    re.ASCII | re.IGNORECASE,
)
# 8 digits without separators: YYYYMMDD (ISO 8601's basic format, in data exports) or MMDDYYYY (a masked
# input's digits). Never both: a date of birth less than 130 years old starts 18, 19 or 20 as YYYYMMDD and
# 01..12 as MMDDYYYY. Six digits (MMDDYY or YYMMDD) are ambiguous and stay refused.
_ISO_COMPACT_DATE = re.compile(r"(?P<y>(?:18|19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})", re.ASCII)
_US_COMPACT_DATE = re.compile(r"(?P<m>[01]\d)(?P<d>\d{2})(?P<y>\d{4})", re.ASCII)
_MONTH_FIRST = re.compile(
    rf"(?P<month>[a-z]+)\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}}){_TIME_OF_DAY}", re.IGNORECASE
)
_DAY_FIRST = re.compile(
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)?[\s-]+(?P<month>[a-z]+)\.?,?[\s-]+(?P<y>\d{4}|\d{2})", re.IGNORECASE
)
_MONTHS = {
    name: number
    for number, full in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                   "september", "october", "november", "december"), start=1)
    for name in (full, full[:3], full[:4])
}  # fmt: skip
_TEXT_DATES = (_ISO_DATE, _US_DATE, _ISO_COMPACT_DATE, _US_COMPACT_DATE, _MONTH_FIRST, _DAY_FIRST)
# A JSON number's digits are read as YYYYMMDD alone. Not as MMDDYYYY: a number loses a leading zero, so that
# January to September would come as 7 digits and only October to December be read. Not as seconds or
# milliseconds since 1970 either: nothing tells those from other numbers, nor seconds from milliseconds.
_NUMBER_DATES = (_ISO_COMPACT_DATE,)
_NOT_PERSONAL_TYPES = frozenset({phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.PREMIUM_RATE})


def _whole_number_text(value: Any) -> Any:
    """The text of a whole number written with a zero fraction ("2125550142.0", "2134.0": a spreadsheet column
    with blanks, exported as floats, then as text) as that integer, for a phone or ZIP to read it as it reads
    a JSON number; any other value is itself."""
    if isinstance(value, str):
        match = _ZERO_FRACTION_NUMBER.fullmatch(value.strip())
        if match is not None:
            return int(match.group(1))
    return value


class Phone(NormalizingField[str]):
    """A US/Canadian/US-territory phone number as E.164 ("+12125550142"); extensions are dropped.

    Validity is phonenumbers' `is_valid_number` (area code and exchange not starting with 0/1, no
    N9X area code) plus two rules it does not apply: no N11 exchange (211..911 are service codes) and
    no toll-free or premium-rate number (not a person's line). 555-0100..0199 numbers are accepted,
    as phonenumbers accepts them: they are fictional, but every test and sandbox lead uses them.
    """

    expected = "a US or Canadian phone number of 10 digits, e.g. (212) 555-0142"
    default_error_messages = {
        "required": "missing: expected {expected}",
        "null": "missing: expected {expected}",
        "letters": "expected a phone number made of digits, not letters",
        "foreign": "expected a US or Canadian phone number (country code +1)",
        "region": "expected a phone number in the US, Canada or a US territory",
        "n11": "expected a phone number whose exchange is not a service code (N11)",
        "not_personal": "expected a personal phone number, not a toll-free or premium-rate one",
    }
    max_input_chars = MAX_PHONE_CHARS

    def __init__(self, *, regions: Iterable[str] = SERVED_PHONE_REGIONS, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", False)
        super().__init__(**kwargs)
        self.regions = frozenset(regions)

    def _normalize(self, value: Any) -> str:
        text = self._text(_whole_number_text(value))
        body = _PHONE_WORD_LABEL.sub("", _PHONE_LABEL.sub("", text))
        body = _PHONE_EXTENSION.sub("", _PHONE_TRAILING_WORD_LABEL.sub("", _PHONE_TRAILING_LABEL.sub("", body)))
        if _LETTER.search(body):
            raise self.make_error("letters")  # vanity "555-CALL" would parse, but a lead types digits
        try:
            number = _parse_phone(body)
        except phonenumbers.NumberParseException as exc:
            raise self.make_error("invalid") from exc
        if number.country_code != 1:
            raise self.make_error("foreign")
        region = _valid_phone_region(number)
        if region is None:
            raise self.make_error("invalid")
        if region not in self.regions:
            raise self.make_error("region")
        national = str(number.national_number)
        if national[4:6] == "11":
            raise self.make_error("n11")
        # NANP toll-free (8XX) and premium-rate (900) numbers all start with 8 or 9: others skip the look-up.
        if national[0] in "89" and phonenumbers.number_type(number) in _NOT_PERSONAL_TYPES:
            raise self.make_error("not_personal")
        return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _parse_phone(body: str) -> phonenumbers.PhoneNumber:
    """`phonenumbers.parse(body, "US")`, with the common spellings of a +1 number read directly.

    10 digits (the first 2-9), optionally after "1" or "+1", in groups split by spaces, dots, hyphens
    or parentheses, parse to exactly this number; parse's general machinery is for everything else.
    """
    plain = _PLAIN_NANP.fullmatch(_PHONE_PUNCTUATION.sub("", body))
    if plain is not None:
        return phonenumbers.PhoneNumber(country_code=1, national_number=int(plain.group(1)))
    return phonenumbers.parse(body, "US")


def _valid_phone_region(number: phonenumbers.PhoneNumber) -> str | None:
    """The region of a valid +1 number, None for an invalid one: `is_valid_number`'s two steps.

    Finding the region tries each +1 region in turn, the US first; asking the US alone first gives
    the same answer for most leads at half the cost.
    """
    if phonenumbers.is_valid_number_for_region(number, "US"):
        return "US"
    region = phonenumbers.region_code_for_number(number)
    if region is None or not phonenumbers.is_valid_number_for_region(number, region):
        return None
    return str(region)


class PostalCode(NormalizingField[str]):
    """A US ZIP code as 5 digits: ZIP+4 ("12345-6789", "12345 6789", "123456789") is cut to 5.

    It must exist in the `zipcodes` dataset (retired ZIPs included: they still place a person). A JSON
    integer is zero-padded, since a number has lost its leading zeros (2134 -> "02134"), and so is a number's
    text ("2134.0"); a 4-digit string is not, since it is as likely a typo as a lost zero. Zero is not padded: it
    is a blank column's placeholder, no ZIP that lost its zeros.
    """

    expected = "a US ZIP code: 5 digits or ZIP+4"
    default_error_messages = {"unknown": "expected an existing US ZIP code"}

    def _normalize(self, value: Any) -> str:
        value = _whole_number_text(whole_number(value))
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 99999:
            value = f"{value:05d}"
        match = _ZIP.fullmatch(ascii_digits(self._text(value)))
        if match is None:
            raise self.make_error("invalid")
        if not is_known_zip(match.group(1)):
            raise self.make_error("unknown")
        return match.group(1)


class Timezone(NormalizingField[str]):
    """A time zone careCycle accepts; see `geo.TIMEZONE_ALIASES` for the spellings understood."""

    expected = "a US or Canadian time zone: an IANA name such as America/New_York, EST/CST/MST/PST, or Eastern/..."

    def _normalize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        name = timezone_name(value)
        if name is None:
            raise self.make_error("invalid")
        return name


class UsState(NormalizingField[str]):
    """A US state, DC or territory as its USPS code, or a Canadian province or territory as Canada Post's, from
    the code in any case or the full name, or a dropdown's label holding both when they agree ("Florida (FL)",
    "NY - New York")."""

    expected = "a US state or Canadian province: a postal code such as NY or ON, or its name"
    default_error_messages = {
        "disagree": "expected a US state or Canadian province whose name and postal code name the same one",
    }

    def _normalize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        code = state_code(value)
        if code is not None:
            return code
        labelled = state_label_codes(value)  # a dropdown's "Florida (FL)", "NY - New York"
        if labelled is None:
            raise self.make_error("invalid")
        if labelled[0] != labelled[1]:
            raise self.make_error("disagree")  # "Florida (NY)": either may be the slip
        return labelled[0]


class DateOfBirth(NormalizingField[str]):
    """A date of birth as careCycle's "MM-DD-YYYY".

    Accepts YYYY-MM-DD, YYYY/MM/DD, ISO datetimes (the date as written, no time-zone shift),
    MM/DD/YYYY, M/D/YYYY, MM-DD-YYYY, M.D.YYYY, MM DD YYYY, M/D/YY (each also with a time: "1/5/1950 12:00:00 AM"),
    YYYYMMDD and MMDDYYYY, YYYYMMDD as a JSON number (19500131),
    "Jan 5 1950", "January 5th, 1950", "5 January 1950", "05-JAN-1950" (and Oracle's "05-JAN-50"), and
    date objects. Numeric dates are month-first (US forms): "13/01/1950" is refused, not swapped. A 2-digit
    year means the most recent year that puts the date not after today (today 2026-06-01: "/50" -> 1950,
    "/24" -> 2024, "/26" -> 2026 only when the day has passed). Impossible dates, future dates and ages
    over 130 years are refused. `today` is injectable so tests (and callers) fix the clock.
    """

    expected = "a date of birth such as 1950-01-31 or 01/31/1950"
    default_error_messages = {
        "impossible": "expected a real calendar date",
        "future": "expected a date of birth that is not in the future",
        "too_old": f"expected a date of birth less than {MAX_AGE_YEARS} years ago",
    }

    def __init__(self, *, today: Callable[[], dt.date] = dt.date.today, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.today = today

    def _normalize(self, value: Any) -> str:
        today = self.today()
        if isinstance(value, dt.datetime):
            born = value.date()
        elif isinstance(value, dt.date):
            born = value
        elif isinstance(value, str):
            born = self._parse(ascii_digits(visible(value).strip()), today)
        elif isinstance(number := whole_number(value), int) and not isinstance(number, bool):
            born = self._parse(str(number), today, _NUMBER_DATES)
        else:
            raise self.make_error("invalid")
        if born > today:
            raise self.make_error("future")
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if age > MAX_AGE_YEARS:
            raise self.make_error("too_old")
        return f"{born.month:02d}-{born.day:02d}-{born.year:04d}"

    def _parse(self, text: str, today: dt.date, patterns: tuple[re.Pattern[str], ...] = _TEXT_DATES) -> dt.date:
        for pattern in patterns:
            match = pattern.fullmatch(text)
            if match is None:
                continue
            parts = match.groupdict()
            month = _MONTHS.get(parts["month"].lower()) if "month" in parts else int(parts["m"])
            if month is None:
                raise self.make_error("invalid")
            if len(parts["y"]) == 2:
                return self._two_digit_year(int(parts["y"]), month, int(parts["d"]), today)
            return self._date(int(parts["y"]), month, int(parts["d"]))
        raise self.make_error("invalid")

    def _two_digit_year(self, yy: int, month: int, day: int, today: dt.date) -> dt.date:
        recent = 2000 + yy
        try:
            born = dt.date(recent, month, day)
        except ValueError:
            return self._date(1900 + yy, month, day)  # 02/29 of a non-leap 20YY may be a leap 19YY
        return born if born <= today else self._date(1900 + yy, month, day)

    def _date(self, year: int, month: int, day: int) -> dt.date:
        try:
            return dt.date(year, month, day)
        except ValueError as exc:
            raise self.make_error("impossible") from exc


# A Medicare Beneficiary Identifier, as CMS defines it: 11 characters, a digit or a letter in fixed places, never
# the letters S, L, O, I, B or Z; written with dashes after the 4th and 7th for people to read. Since 2020 it is
# the only Medicare number: a Social Security number (or the SSN-based claim number it replaced) is no MBI.
_MBI_LETTER = "AC-HJKMNP-RT-Y"
_MBI = re.compile(
    rf"[1-9][{_MBI_LETTER}][{_MBI_LETTER}0-9][0-9][{_MBI_LETTER}][{_MBI_LETTER}0-9][0-9][{_MBI_LETTER}]{{2}}[0-9]{{2}}"
)
_MBI_SEPARATORS = re.compile(rf"[\s{_DASHES}]+")


class MedicareBeneficiaryId(NormalizingField[str]):
    """A Medicare Beneficiary Identifier, in capitals with its two dashes ("1EG4-TE5-MK73"), however spaced.

    Anything else (a Social Security number typed into the Medicare field, above all) is not sent on: careCycle
    would keep it as the lead's Medicare number.
    """

    expected = "a Medicare Beneficiary Identifier: 11 letters and digits such as 1EG4-TE5-MK73"

    def _normalize(self, value: Any) -> str:
        compact = _MBI_SEPARATORS.sub("", self._text(value)).upper()
        if _MBI.fullmatch(compact) is None:
            raise self.make_error("invalid")
        return f"{compact[:4]}-{compact[4:7]}-{compact[7:]}"
