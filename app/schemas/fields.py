"""Marshmallow fields that each turn one kind of messy inbound value into careCycle's spelling.

Every field treats a blank string as "not given" (None) and fails with a message that says what was
expected, never the value it received: inbound values are personal data.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import phonenumbers
from marshmallow import Schema, ValidationError, fields, validate

from app.schemas.carecycle import INT32_MAX, INT32_MIN, contract_length
from app.schemas.geo import SERVED_REGIONS, is_known_zip, state_code, timezone_name

_T = TypeVar("_T")

MAX_AGE_YEARS = 130
# Where a +1 number may be: careCycle serves the US; Canada and the US territories share its plan.
SERVED_PHONE_REGIONS = SERVED_REGIONS
# Longer than any spelling of a phone with a label and an extension.
MAX_PHONE_CHARS = 64

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
# Unicode category Cc, exactly: C0 controls, DEL and C1 controls.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_CHARACTER_BUT_LAYOUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Format characters (Unicode Cf) that print as nothing and that no name or answer needs: soft hyphen,
# zero-width space, direction marks, embeddings and isolates, word joiner, invisible operators, byte-order mark.
# The zero-width (non-)joiners stay: Persian and Indic spellings and emoji sequences are made with them.
_INVISIBLE = re.compile("[\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# Hyphen and the dashes that word processors and phones type for it (U+2010..U+2015, minus sign U+2212).
_DASHES = "\\-\u2010-\u2015\u2212"
# ZIP+4 however written: "10001-1234", "10001 1234", "100011234", "10001 – 1234", or "10001-" with an empty +4.
_ZERO_FRACTION_NUMBER = re.compile(r"(\d{1,15})\.0{1,6}", re.ASCII)
_ZIP = re.compile(rf"(\d{{5}})(?:\s*[{_DASHES}]\s*(?:\d{{4}})?|\s?\d{{4}})?", re.ASCII)
# An amount, with its currency ("$", "USD") and a yearly period ("/yr", "per year") as income is written; a
# monthly or weekly one is not read (it would be sent as a year's income).
_MONEY = re.compile(
    r"(?P<sign>-)?\s*(?:usd\s*)?\$?\s*(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?\s*(?P<suffix>[km])?"
    r"(?:\s*usd)?(?:\s*(?:/\s*(?:yr|year)|per\s+(?:yr|year|annum)|a\s+year|annually|yearly))?",
    re.ASCII | re.IGNORECASE,
)
# A date's separator: also the dashes that word processors and phones type for a hyphen.
_DATE_SEPARATOR = "[-/.\u2010-\u2015\u2212]"
# A time after a date, as exports and spreadsheets add one: "T00:00:00Z", " 12:00:00 AM", " 00:00:00.000",
# " 00:00:00 UTC", " 08:30 -05:00". The date is taken as written, without shifting it to another zone.
_TIME_OF_DAY = (
    r"(?:(?:T|\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AP]\.?M\.?)?(?:\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?)?"
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
_ENUM_DROPPED = re.compile(r"[.'\u2019()]")
_ENUM_PARTS = re.compile(r"[/,;]| or ", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "k": 1_000, "m": 1_000_000}
# "sí"/"si": Spanish-language forms' yes (their no is "no").
_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "checked", "selected", "agree", "agreed", "accepted",
                         "yep", "yeah", "yup", "si", "sí"})  # fmt: skip
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "unchecked", "not checked", "disagree", "declined",
                          "nope", "nah"})  # fmt: skip


def _blank_to_none(value: Any) -> Any:
    """A blank form input means "not given", exactly like a missing key."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


class NormalizingField(fields.Field[_T]):
    """Base: blank strings load as None (allowed unless allow_none=False); errors say what was expected."""

    expected = "a value"
    default_error_messages = {
        "required": "expected {expected}",
        "null": "expected {expected}",
        "invalid": "expected {expected}",
        "too_long": "expected at most {max_input_chars} characters",
    }
    # The longest text this field's patterns and parsers are run on: a longer one is refused first, so that
    # no crafted value (a megabyte of "(" for a time zone) keeps a pattern working for seconds. None: no
    # bound, for a field whose work is linear in its input and that checks its own length.
    max_input_chars: int | None = 200

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_none", True)
        given = kwargs.pop("pre_load", None)
        extra = [] if given is None else [given] if callable(given) else list(given)
        super().__init__(pre_load=[_blank_to_none, *extra], **kwargs)

    def load_given(self, value: Any) -> _T:
        """`deserialize` for a value known to be given (not None, not blank), as normalization reads them.

        Such a value passes marshmallow's missing, pre-load and None steps unchanged, so a field with no
        other pre-load step, no validator and no post-load step goes straight to `_normalize_bounded`: the
        same result for a fifth of the work. Any other field is deserialized in full.
        """
        if len(self.pre_load) == 1 and not self.validators and not self.post_load:
            return self._normalize_bounded(value)
        loaded: _T = self.deserialize(value)
        return loaded

    def make_error(self, key: str, **kwargs: Any) -> ValidationError:
        """Build the error for `key`, filling `{expected}` with what this field wants."""
        kwargs.setdefault("expected", self.expected)
        return super().make_error(key, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> _T:
        if value is None:
            raise self.make_error("null")  # only with allow_none=False: a blank input became None
        return self._normalize_bounded(value)

    def _normalize_bounded(self, value: Any) -> _T:
        if self.max_input_chars is not None and isinstance(value, str) and len(value) > self.max_input_chars:
            raise self.make_error("too_long", max_input_chars=self.max_input_chars)
        return self._normalize(value)

    def _normalize(self, value: Any) -> _T:
        """Turn a non-None inbound value into the field's output, or raise a ValidationError."""
        raise NotImplementedError

    def _text(self, value: Any) -> str:
        """Return a string, or a plain integer (JSON ids, ZIPs; also written as 10001.0), as stripped text
        without invisible format characters (see `visible`); else fail as "invalid"."""
        value = whole_number(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return visible(value).strip()


_NOT_PERSONAL_TYPES = frozenset({phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.PREMIUM_RATE})


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
        text = self._text(whole_number_text(value))
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
    text ("2134.0"); a 4-digit string is not, since it is as likely a typo as a lost zero.
    """

    expected = "a US ZIP code: 5 digits or ZIP+4"
    default_error_messages = {"unknown": "expected an existing US ZIP code"}

    def _normalize(self, value: Any) -> str:
        value = whole_number_text(whole_number(value))
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 99999:
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
    the code in any case or the full name."""

    expected = "a US state or Canadian province: a postal code such as NY or ON, or its name"

    def _normalize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        code = state_code(value)
        if code is None:
            raise self.make_error("invalid")
        return code


class LooseBool(NormalizingField[bool]):
    """A boolean from true/false, yes/no, y/n, 1/0, on/off, checked/unchecked, sí/no and friends, any case."""

    expected = "yes/no, true/false, 1/0 or on/off"

    def _normalize(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        word = " ".join(self._text(value).lower().rstrip(".!").split())  # "Yes." is yes
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise self.make_error("invalid")


def visible(text: str) -> str:
    """`text` without the invisible format characters that copy-paste and right-to-left pages leave around a
    value (direction marks, zero-width spaces, a byte-order mark), which no ZIP, date or choice holds."""
    return text if text.isascii() else _INVISIBLE.sub("", text)


def whole_number(value: Any) -> Any:
    """A JSON number with a zero fraction (10001.0: what a data frame with blanks in a column exports) as
    the integer it holds, when a double holds it exactly; any other value is itself."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def whole_number_text(value: Any) -> Any:
    """The text of a whole number written with a zero fraction ("2125550142.0", "2134.0": a spreadsheet column
    with blanks, exported as floats, then as text) as that integer, for a phone or ZIP to read it as it reads
    a JSON number; any other value is itself."""
    if isinstance(value, str):
        match = _ZERO_FRACTION_NUMBER.fullmatch(value.strip())
        if match is not None:
            return int(match.group(1))
    return value


def ascii_digits(text: str) -> str:
    """`text` with every decimal digit of another script (fullwidth "１", Arabic-Indic "١") as its ASCII digit,
    as phone numbers are read too."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in text)


def has_lone_surrogate(text: str) -> bool:
    """Whether `text` holds an unpaired surrogate (JSON can carry "\\ud800"), which no UTF-8 store or API takes."""
    return _LONE_SURROGATE.search(text) is not None


def reads_as_true(value: Any) -> bool:
    """Whether `LooseBool` reads `value` as true (a ticked checkbox's value, say)."""
    try:
        return LooseBool().load_given(value)
    except ValidationError:
        return False


class LooseInt(NormalizingField[int]):
    """A whole number from money-like text: "$45,000", "45000.00", "45k", "1.2M" (k = 1,000, M = 1,000,000),
    "USD 45,000", "$45,000/yr", "45,000 per year".

    A non-zero fraction ("2.5", "$45,000.50") is refused rather than rounded, and so is a range
    ("30,000-50,000"): either would make up a number the person did not give.
    """

    expected = "a whole number such as 45000 or $45,000"
    default_error_messages = {
        "fraction": "expected a whole number, without a fraction",
        "range": "expected a whole number from {minimum} to {maximum}",
    }

    def __init__(
        self, *, minimum: int = INT32_MIN, maximum: int = INT32_MAX, expected: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.minimum = minimum
        self.maximum = maximum
        if expected is not None:
            self.expected = expected  # what the refusal names: a count is no amount of money

    def _normalize(self, value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.make_error("invalid")
        if isinstance(value, int | float):
            number = Decimal(repr(value))  # repr: 45000.0 -> "45000.0", exact, unlike Decimal(45000.1)
        else:
            number = self._parse(self._text(value))
        if number != int(number):
            raise self.make_error("fraction")
        if not self.minimum <= number <= self.maximum:
            raise self.make_error("range", minimum=self.minimum, maximum=self.maximum)
        return int(number)

    def _parse(self, text: str) -> Decimal:
        match = _MONEY.fullmatch(text)
        if match is None:
            raise self.make_error("invalid")
        digits = match["whole"].replace(",", "") + "." + (match["fraction"] or "0")
        number = Decimal(digits) * _MULTIPLIERS[(match["suffix"] or "").lower()]
        return -number if match["sign"] else number


class DateOfBirth(NormalizingField[str]):
    """A date of birth as careCycle's "MM-DD-YYYY".

    Accepts YYYY-MM-DD, YYYY/MM/DD, ISO datetimes (the date as written, no time-zone shift),
    MM/DD/YYYY, M/D/YYYY, MM-DD-YYYY, M.D.YYYY, MM DD YYYY, M/D/YY (each also with a time: "1/5/1950 12:00:00 AM"),
    YYYYMMDD and MMDDYYYY,
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
        else:
            raise self.make_error("invalid")
        if born > today:
            raise self.make_error("future")
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if age > MAX_AGE_YEARS:
            raise self.make_error("too_old")
        return f"{born.month:02d}-{born.day:02d}-{born.year:04d}"

    def _parse(self, text: str, today: dt.date) -> dt.date:
        for pattern in (_ISO_DATE, _US_DATE, _ISO_COMPACT_DATE, _US_COMPACT_DATE, _MONTH_FIRST, _DAY_FIRST):
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


def _enum_key(text: str) -> str:
    """Lower-case words: hyphens, underscores and slashes part them; dots, apostrophes and parentheses go
    ("M." -> "m", "I'd" -> "id", "Widow(er)" -> "widower")."""
    text = _ENUM_DROPPED.sub("", visible(text).lower())
    return " ".join(text.replace("-", " ").replace("_", " ").replace("/", " ").split())


class LooseEnum(NormalizingField[str]):
    """One of `choices`, matched case- and punctuation-insensitively, or reached through `aliases`."""

    def __init__(self, choices: Iterable[str], aliases: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices)
        unknown = {target for target in (aliases or {}).values() if target not in self.choices}
        if unknown:
            raise ValueError(f"aliases point outside the choices: {sorted(unknown)}")
        self.lookup = {_enum_key(choice): choice for choice in self.choices}
        self.lookup.update({_enum_key(alias): target for alias, target in (aliases or {}).items()})
        self.expected = "one of " + ", ".join(self.choices)

    def _normalize(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        choice = self.lookup.get(_enum_key(value)) or self._agreed_choice(value)
        if choice is None:
            raise self.make_error("invalid")
        return choice

    def _agreed_choice(self, text: str) -> str | None:
        """The choice that every part of an option written as several agreeing ones names ("Widow/Widower",
        "Single, never married"); None when a part names none or another choice ("Divorced/Separated")."""
        choices = {self.lookup.get(_enum_key(part)) for part in _ENUM_PARTS.split(text) if part.strip()}
        return choices.pop() if len(choices) == 1 else None


class TrimmedString(NormalizingField[str]):
    """Text with surrounding whitespace stripped, inner runs collapsed to one space, Unicode NFC.

    Blank loads as None; longer than `max_length` characters (after cleaning, counted as careCycle counts them:
    an emoji is 2) fails.
    """

    expected = "text"
    default_error_messages = {
        "too_long_text": "expected at most {max_length} characters",
        "too_long_units": "expected at most {max_length} characters (careCycle counts an emoji as 2)",
    }
    max_input_chars = None  # cleaning is linear; the length is checked after it

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length

    def _normalize(self, value: Any) -> str:
        text = clean_text(self._text(value))
        if not text:
            raise self.make_error("null")
        if len(text) > self.max_length:
            raise self.make_error("too_long_text", max_length=self.max_length)
        if contract_length(text) > self.max_length:
            raise self.make_error("too_long_units", max_length=self.max_length)
        return text


# A Medicare Beneficiary Identifier, as CMS defines it: 11 characters, a digit or a letter in fixed places, never
# the letters S, L, O, I, B or Z; written with dashes after the 4th and 7th for people to read. Since 2020 it is
# the only Medicare number: a Social Security number (or the SSN-based claim number it replaced) is no MBI.
_MBI_LETTER = "AC-HJKMNP-RT-Y"
_MBI = re.compile(
    rf"[1-9][{_MBI_LETTER}][{_MBI_LETTER}0-9][0-9][{_MBI_LETTER}][{_MBI_LETTER}0-9][0-9][{_MBI_LETTER}]{{2}}[0-9]{{2}}"
)
# "Display Name <address>" (RFC 5322's name-addr) or "<address>": the address is in the brackets.
_NAMED_EMAIL = re.compile(r"[^<>]*<([^<>]+)>")
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


class EmailAddress(TrimmedString):
    """An e-mail address (marshmallow's Email rules) of at most `max_length` characters.

    The address is also taken out of the forms a CRM or mail client copies it in: with a display name
    ("Jane Example <jane@example.com>"), in angle brackets, or as a mailto: link.
    """

    expected = "an email address"

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(max_length, **kwargs)
        self.email_rule = validate.Email(error="expected an email address")

    def _normalize(self, value: Any) -> str:
        text = super()._normalize(value)
        named = _NAMED_EMAIL.fullmatch(text)
        address = (named.group(1) if named else text).strip()
        if address[:7].lower() == "mailto:":
            address = address[7:].strip()
        return self.email_rule(address)


def message_list(messages: Any) -> list[str]:
    """A marshmallow field's messages (one, or a list) as a list of strings."""
    return [str(message) for message in messages] if isinstance(messages, list) else [str(messages)]


def field_messages(messages: Mapping[str, Any]) -> list[str]:
    """Marshmallow's messages by field as "<field>: <message>" lines (warnings, rejection reasons)."""
    return [f"{name}: {message}" for name, found in messages.items() for message in message_list(found)]


def field_reason(messages: Mapping[str, Any]) -> str:
    """Marshmallow's messages by field as one reason: why a submission was refused."""
    return "; ".join(field_messages(messages))


def load_tolerant(
    schema: Schema, data: Any, essential: frozenset[str] = frozenset()
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Load `data`, dropping (as None) each optional field that cannot be read (webhook bodies: one bad optional
    value must not cost a lead).

    Returns the fields, or None when `data` is not an object or a required or `essential` field cannot be
    read; and the messages of the fields that were dropped or made it unreadable.
    """
    try:
        return schema.load(data), {}
    except ValidationError as exc:
        messages: dict[str, Any] = exc.normalized_messages()  # type: ignore[no-untyped-call]
        needed = essential | {name for name, field in schema.load_fields.items() if field.required}
        if "_schema" in messages or needed & messages.keys():
            return None, messages
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return {name: valid.get(name) for name in schema.load_fields}, messages


def clean_text(text: str) -> str:
    """NFC-normalize, turn control characters into spaces, drop invisible format characters (a byte-order
    mark, zero-width spaces), strip and collapse whitespace."""
    text = _LONE_SURROGATE.sub("\ufffd", text)  # JSON can carry "\ud800", which no UTF-8 store or API takes
    text = _CONTROL_CHARACTER.sub(" ", _INVISIBLE.sub("", unicodedata.normalize("NFC", text)))
    return " ".join(text.split())


def clean_free_text(text: str) -> str:
    """`clean_text` for a free-text answer, whose line breaks, tabs and spacing are its own: lone surrogates
    become U+FFFD, invisible format characters go, other control characters become spaces; the ends are stripped."""
    text = _INVISIBLE.sub("", _LONE_SURROGATE.sub("\ufffd", text))
    return _CONTROL_CHARACTER_BUT_LAYOUT.sub(" ", unicodedata.normalize("NFC", text)).strip()
