"""Marshmallow fields that each turn one kind of messy inbound value into careCycle's spelling: text, yes/no,
numbers, choices and e-mail here, with the base they share; a person's phone, ZIP, time zone, state, date of
birth and Medicare number in `app.schemas.personal`.

Every field treats a blank string as "not given" (None) and fails with a message that says what was
expected, never the value it received: inbound values are personal data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError, fields, validate

from app.schemas.contractfields import INT32_MAX, INT32_MIN, contract_length

_T = TypeVar("_T")

# Unicode category Cc, exactly: C0 controls, DEL and C1 controls.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_CHARACTER_BUT_LAYOUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Format characters (Unicode Cf) that print as nothing and that no name or answer needs: soft hyphen,
# zero-width space, direction marks, embeddings and isolates, word joiner, invisible operators, byte-order mark.
# The zero-width (non-)joiners stay: Persian and Indic spellings and emoji sequences are made with them.
_INVISIBLE = re.compile("[\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# An amount, with its currency ("$", "USD") and a yearly period ("/yr", "per year") as income is written; a
# monthly or weekly one is not read (it would be sent as a year's income).
_MONEY = re.compile(
    r"(?P<sign>-)?\s*(?:usd\s*)?\$?\s*(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?\s*(?P<suffix>[km])?"
    r"(?:\s*usd)?(?:\s*(?:/\s*(?:yr|year)|per\s+(?:yr|year|annum)|a\s+year|annually|yearly))?",
    re.ASCII | re.IGNORECASE,
)
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
        # A form posting one name twice with different values (a page's desktop and mobile copies of an input),
        # or a list in JSON: none of them is refused for what it is not, but for being more than one.
        "several": "expected one value, not several: {expected}",
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
        if isinstance(value, list | tuple) and len(value) > 1:
            raise self.make_error("several")
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


def ascii_digits(text: str) -> str:
    """`text` with every decimal digit of another script (fullwidth "１", Arabic-Indic "١") as its ASCII digit,
    as phone numbers are read too: a phone's or a tablet's keyboard in another script types them."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in text)


def whole_number(value: Any) -> Any:
    """A JSON number with a zero fraction (10001.0: what a data frame with blanks in a column exports) as
    the integer it holds, when a double holds it exactly; any other value is itself."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


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
    "USD 45,000", "$45,000/yr", "45,000 per year", in any script's digits ("４５０００") as a phone or ZIP is.

    A non-zero fraction ("2.5", "$45,000.50") is refused rather than rounded, and so is a range
    ("30,000-50,000") and a number that may group its thousands with a dot ("45.000"): each would make up a
    number the person did not give.
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
            number = self._parse(ascii_digits(self._text(value)))
        if number != int(number):
            raise self.make_error("fraction")
        if not self.minimum <= number <= self.maximum:
            raise self.make_error("range", minimum=self.minimum, maximum=self.maximum)
        return int(number)

    def _parse(self, text: str) -> Decimal:
        match = _MONEY.fullmatch(text)
        if match is None or _may_group_thousands_with_a_dot(match):
            raise self.make_error("invalid")
        digits = match["whole"].replace(",", "") + "." + (match["fraction"] or "0")
        number = Decimal(digits) * _MULTIPLIERS[(match["suffix"] or "").lower()]
        return -number if match["sign"] else number


def _may_group_thousands_with_a_dot(match: re.Match[str]) -> bool:
    """Whether a money match reads as thousands grouped with a dot, as much of Europe and Latin America writes
    them ("45.000", "$1.500/yr"): 1 to 3 digits, a dot, 3 digits, no k or M after them. Read as a decimal it
    would make up an amount 1,000 times too small, so it is refused, as "12,34" is. A whole part of zero groups
    nothing ("0.000" is 0; "0.500" a fraction)."""
    whole = match["whole"]
    return not match["suffix"] and len(whole) <= 3 and len(match["fraction"] or "") == 3 and whole.strip("0") != ""


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


# "Display Name <address>" (RFC 5322's name-addr) or "<address>": the address is in the brackets.
_NAMED_EMAIL = re.compile(r"[^<>]*<([^<>]+)>")


class EmailAddress(TrimmedString):
    """An e-mail address (marshmallow's Email rules) of at most `max_length` characters.

    The address is also taken out of the forms a CRM or mail client copies it in: with a display name
    ("Jane Example <jane@example.com>"), in angle brackets, or as a mailto: link. A dot closing its domain
    ("jane@example.com.", the domain written fully qualified, as DNS does) is dropped: it names the same domain,
    and careCycle keeps the address as text, for mailers that may not take that spelling.
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
        if address.endswith(".") and not address.endswith("..") and "@" in address:
            address = address[:-1]  # "example.com." is example.com, fully qualified
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
