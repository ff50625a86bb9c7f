"""Submission -> careCycle record: field names resolved, values normalized, TCPA location ensured.

Policy (SPEC "Normalization"): a bad required value (the phone; a record with neither a ZIP nor a
time zone) raises `ValidationError` keyed by the careCycle field; a bad optional value is dropped and
reported in `warnings` as "<field>: <what was expected>", and the lead is kept.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from marshmallow import ValidationError

from app.schemas.carecycle import GENDERS, MARITAL_STATUSES
from app.schemas.customfields import build_custom_fields, listed_custom_fields
from app.schemas.fieldnames import (
    CARECYCLE_NAMES,
    EMPTY_MAP,
    FULL_NAME,
    RANK_FALLBACK,
    is_dropped_name,
    resolve_field_name,
)
from app.schemas.fields import (
    EmailAddress,
    LooseBool,
    LooseEnum,
    LooseInt,
    NormalizingField,
    TrimmedString,
    clean_text,
    field_messages,
    message_list,
)
from app.schemas.geo import FAMILY_ZONES, split_full_name, timezone_for_phone, zip_details, zone_within_family
from app.schemas.personal import (
    DateOfBirth,
    MedicareBeneficiaryId,
    Phone,
    PostalCode,
    Timezone,
    UsState,
)

_CONFIG_ONLY = ("sourceId", "leadCost")  # a submission must not pick its own source or price
_NO_LOCATION = "expected a valid US ZIP code or a timezone (TCPA); the phone's area code gives no single timezone"
_STATE_NOT_ZIPS = "state: expected the ZIP code's state; the city was not filled in from the ZIP code"

GENDER_ALIASES = {
    "m": "Male", "man": "Male", "boy": "Male", "f": "Female", "woman": "Female", "girl": "Female",
    "nonbinary": "Non-Binary", "nb": "Non-Binary", "enby": "Non-Binary", "genderqueer": "Non-Binary",
    "prefer not to answer": "Prefer Not to Say", "rather not say": "Prefer Not to Say",
    "decline to state": "Prefer Not to Say", "decline to answer": "Prefer Not to Say", "declined": "Prefer Not to Say",
    "third gender": "Non-Binary", "prefer not to disclose": "Prefer Not to Say",
    "prefer not to respond": "Prefer Not to Say", "i prefer not to say": "Prefer Not to Say",
    "id rather not say": "Prefer Not to Say", "i would rather not say": "Prefer Not to Say",
    # Spanish-language landing pages
    "masculino": "Male", "hombre": "Male", "femenino": "Female", "mujer": "Female", "no binario": "Non-Binary",
    "otro": "Other", "prefiero no decir": "Prefer Not to Say", "prefiero no decirlo": "Prefer Not to Say",
}  # fmt: skip
MARITAL_STATUS_ALIASES = {
    "never married": "Single", "unmarried": "Single", "s": "Single", "wed": "Married", "m": "Married",
    "divorcee": "Divorced", "d": "Divorced", "widow": "Widowed", "widower": "Widowed", "w": "Widowed",
    "legally separated": "Separated", "domestic partner": "Domestic Partnership", "partnered": "Domestic Partnership",
    "civil union": "Domestic Partnership", "life partner": "Domestic Partnership", "never been married": "Single",
    "remarried": "Married", "in a domestic partnership": "Domestic Partnership",
    "registered domestic partner": "Domestic Partnership", "registered domestic partnership": "Domestic Partnership",
    # Spanish-language landing pages
    "soltero": "Single", "soltera": "Single", "casado": "Married", "casada": "Married", "divorciado": "Divorced",
    "divorciada": "Divorced", "viudo": "Widowed", "viuda": "Widowed", "separado": "Separated",
    "separada": "Separated",
    # and their inclusive spellings, one option for both genders: "Casado(a)", "Soltero/a"
    **{f"{word}{ending}": status
       for word, status in (("soltero", "Single"), ("casado", "Married"), ("divorciado", "Divorced"),
                            ("viudo", "Widowed"), ("separado", "Separated"))
       for ending in ("(a)", "/a")},
}  # fmt: skip


@dataclass(frozen=True)
class NormalizedLead:
    """A careCycle record that `CareCycleRecordSchema` accepts, and what was dropped on the way."""

    record: dict[str, Any]
    warnings: tuple[str, ...]


def record_fields(today: Callable[[], dt.date]) -> Mapping[str, NormalizingField[Any]]:
    """The normalizing field of every careCycle field a submission fills, in record order."""
    shared = _shared_fields()
    if today == dt.date.today:
        return shared  # its dateOfBirth field reads the real clock already
    return {**shared, "dateOfBirth": DateOfBirth(today=today)}


_TEXT_FIELDS = ("firstName", "lastName", "city", "county", "address", "address2", "medicaidNumber", "vaNumber",
                "carrierAssignedCustomerId", "healthSherpaCustomerId", "externalId")  # fmt: skip
# careCycle's yes/no fields (a form asks for them with a checkbox).
FLAG_FIELDS = ("isDecisionMaker", "medicaid", "veteran", "socialSecurityDisability", "doNotCall", "doNotSMS",
               "doNotEmail", "doNotMail")  # fmt: skip


@functools.cache
def _shared_fields() -> Mapping[str, NormalizingField[Any]]:
    """Fields hold no per-call state, so they are built once; only dateOfBirth depends on the caller's clock."""
    built: dict[str, NormalizingField[Any]] = {
        "phoneNumber": Phone(),
        "email": EmailAddress(255),
        "postalCode": PostalCode(),
        "timezone": Timezone(),
        "state": UsState(),
        "dateOfBirth": DateOfBirth(),
        "language": TrimmedString(50),
        "gender": LooseEnum(GENDERS, GENDER_ALIASES),
        "maritalStatus": LooseEnum(MARITAL_STATUSES, MARITAL_STATUS_ALIASES),
        "filingStatus": TrimmedString(50),
        "dependentCount": LooseInt(minimum=0, expected="a whole number of dependents such as 2"),
        "householdIncome": LooseInt(minimum=0),
        "mbiNumber": MedicareBeneficiaryId(),
        **{name: TrimmedString(255) for name in _TEXT_FIELDS},
        **{name: LooseBool() for name in FLAG_FIELDS},
    }
    return MappingProxyType({name: built[name] for name in CARECYCLE_NAMES if name in built})  # careCycle's order


def normalize_submission(
    payload: Mapping[str, Any],
    *,
    field_map: Mapping[str, str] = EMPTY_MAP,
    static_custom_fields: Mapping[str, Any] = EMPTY_MAP,
    kept_custom_keys: frozenset[str] = frozenset(),
    source_id: str | None = None,
    lead_cost: float | None = None,
    today: Callable[[], dt.date] = dt.date.today,
) -> NormalizedLead:
    """Turn one inbound submission into a careCycle record plus warnings about dropped optional values.

    Raises `ValidationError` `{careCycleField: [message]}` when the phone is missing or invalid, or
    when neither a ZIP nor a time zone (given, or derived from the phone's area code) is available.
    A `field_map` entry whose target is no careCycle field renames a custom field's key; a target
    starting with "_" drops the inbound field, as inbound keys starting with "_" are unless the field_map names
    them or they are Meta's attribution cookies (`fieldnames.ATTRIBUTION_COOKIE_FIELDS`). Custom fields
    under `kept_custom_keys` (consent and provenance) are never what careCycle's cap on their number drops.
    """
    candidates, custom, answered = _sort_keys(payload, field_map)
    warnings: list[str] = []
    fields = record_fields(today)
    record = _normalize_fields(candidates, fields, warnings)
    _warn_of_rival_answers(record, candidates, answered, fields, warnings)
    _fill_names(record, candidates.get(FULL_NAME, []), warnings)
    _fill_location(record, warnings)
    for name in _CONFIG_ONLY:
        if any(not _is_blank(value) for value in candidates.get(name, [])):
            warnings.append(f"{name}: expected from the source's configuration, not from the submission")
    listed = [pair for value in candidates.get("customFields", []) for pair in listed_custom_fields(value, warnings)]
    items = build_custom_fields(static_custom_fields, [*custom, *listed], warnings, kept_custom_keys)
    if items:
        record["customFields"] = items
    if source_id is not None:
        record["sourceId"] = source_id
    if lead_cost is not None:
        record["leadCost"] = lead_cost
    # Not loaded through CareCycleRecordSchema again: every value above came from a field that yields only
    # what careCycle's contract accepts, customFields from `build_custom_fields`' limits, sourceId and
    # leadCost from the validated source file. A property test holds the whole record to the schema; a
    # second load per lead would double the cost of intake.
    return NormalizedLead(record=record, warnings=tuple(warnings))


def submitted_phone(payload: Mapping[str, Any], field_map: Mapping[str, str] = EMPTY_MAP) -> str | None:
    """The phone normalization would take from a submission (under whichever name or alias it came, the source's
    `field_map` first), in E.164; None when no candidate is a valid phone."""
    candidates, *_ = _sort_keys(payload, field_map)
    return next(filter(None, map(_normalized_phone, candidates.get("phoneNumber", []))), None)


def _normalized_phone(value: Any) -> str | None:
    """A submitted phone in E.164, or None when it is blank or not a valid phone (for what may be shown of
    a refused submission: the last digits of an arbitrary value could be those of any number)."""
    if _is_blank(value):
        return None
    try:
        phone: str = _shared_fields()["phoneNumber"].load_given(collapse_repeated(value))
    except ValidationError:
        return None
    return phone


def _sort_keys(
    payload: Mapping[str, Any], field_map: Mapping[str, str]
) -> tuple[dict[str, list[Any]], list[tuple[str, Any]], dict[str, int]]:
    """Split the payload into ranked candidate values per field, and (key, value) pairs for customFields; with, for
    each field given under more than one name that is no fallback, how many candidates are such names (first)."""
    ranked: dict[str, list[tuple[int, int, Any]]] = {}
    custom: list[tuple[str, Any]] = []
    for order, (raw_key, value) in enumerate(payload.items()):
        key = str(raw_key)
        if is_dropped_name(key, field_map):
            continue
        resolved = resolve_field_name(key, field_map)
        if resolved is None:
            custom.append((field_map.get(key, key), value))
            continue
        name, rank = resolved
        ranked.setdefault(name, []).append((rank, order, value if name == "customFields" else collapse_repeated(value)))
    answered = {
        name: count
        for name, found in ranked.items()
        if len(found) > 1  # most fields come under one name: nothing to count
        and (count := sum(rank < RANK_FALLBACK for rank, *_ in found)) > 1
        and name != "customFields"
    }
    return {name: _by_rank(found) for name, found in ranked.items()}, custom, answered


RIVAL_ANSWERS = "given under more than one name with different values; the first was kept"


def _warn_of_rival_answers(
    record: Mapping[str, Any],
    candidates: Mapping[str, list[Any]],
    answered: Mapping[str, int],
    fields: Mapping[str, NormalizingField[Any]],
    warnings: list[str],
) -> None:
    """Warn of a field two names gave different valid values (a Meta form's PHONE and phone_number questions): one
    is sent, the other dropped. A fallback (a work phone beside the phone) is no rival; neither value is said."""
    for name, count in answered.items():
        if name not in record:
            continue
        field = fields[name]
        for value in candidates[name][:count]:
            if _is_blank(value):
                continue
            try:
                if field.load_given(value) != record[name]:
                    warnings.append(f"{name}: {RIVAL_ANSWERS}")
                    break
            except ValidationError:
                continue


def _by_rank(found: list[tuple[int, int, Any]]) -> list[Any]:
    """Candidate values, best rank first, in submission order within a rank."""
    if len(found) == 1:
        return [found[0][2]]
    return [value for *_, value in sorted(found, key=lambda c: c[:2])]


def collapse_repeated(value: Any) -> Any:
    """Meta sends every answer as a list; a one-item list is that item, and so is a list of one value
    repeated (a form's desktop and mobile copies of an input, both filled). Any other value is itself."""
    if isinstance(value, list | tuple) and value and all(_same(item, value[0]) for item in value[1:]):
        return value[0]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type: True and 1 (or 1 and 1.0) are different answers here."""
    return type(a) is type(b) and a == b


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], ())


def _normalize_fields(
    candidates: Mapping[str, list[Any]], record_fields: Mapping[str, NormalizingField[Any]], warnings: list[str]
) -> dict[str, Any]:
    """Normalize each field's first valid candidate; a required field's failure raises, others warn."""
    record: dict[str, Any] = {}
    for name, field in record_fields.items():
        if name not in candidates and name != "phoneNumber":
            continue
        first_error: ValidationError | None = None
        for value in candidates.get(name, ()):
            if _is_blank(value):
                continue
            try:
                record[name] = field.load_given(value)
                break
            except ValidationError as exc:
                first_error = first_error or exc
        if name in record:
            continue
        if name == "phoneNumber":
            raise ValidationError({name: message_list((first_error or field.make_error("required")).messages)})
        if first_error is not None:
            warnings.extend(field_messages({name: first_error.messages}))
    return record


def _fill_names(record: dict[str, Any], full_names: list[Any], warnings: list[str]) -> None:
    """Fill a missing firstName/lastName from the first usable full name."""
    if "firstName" in record and "lastName" in record:
        return
    for full in full_names:
        if isinstance(full, str) and clean_text(full):
            parts = dict(zip(("firstName", "lastName"), split_full_name(clean_text(full)), strict=True))
            for name, part in parts.items():
                if name in record or part is None:
                    continue
                try:  # the name's own field: careCycle's length limit, as careCycle counts it
                    record[name] = _shared_fields()[name].load_given(part)
                except ValidationError as exc:
                    warnings.extend(field_messages({name: exc.messages}))
            return
        if not _is_blank(full):
            warnings.append(f"{FULL_NAME}: expected text")


def _fill_location(record: dict[str, Any], warnings: list[str]) -> None:
    """TCPA: fill state, city and timezone from the ZIP; else the timezone from the area code; else fail.

    A given time zone stays; a family's name is narrowed to the ZIP's (or else the phone's) zone of that
    family ("MST" with a Phoenix ZIP is America/Phoenix). A given state that is not the ZIP's stays too, but
    no city is filled from a ZIP that contradicts it.
    """
    details = zip_details(record["postalCode"]) if "postalCode" in record else None
    given_zone = record.get("timezone")
    if given_zone in FAMILY_ZONES:  # a family's name ("MST", "Eastern"): which zone of it is the lead's?
        hint = (details.timezone if details is not None else None) or timezone_for_phone(record["phoneNumber"])
        record["timezone"] = zone_within_family(given_zone, hint)
    if details is not None:
        if record.setdefault("state", details.state) == details.state:
            record.setdefault("city", details.city)
        elif "city" not in record:
            warnings.append(_STATE_NOT_ZIPS)
        if details.timezone is not None:
            record.setdefault("timezone", details.timezone)
    if "postalCode" not in record and "timezone" not in record:
        zone = timezone_for_phone(record["phoneNumber"])
        if zone is None:
            raise ValidationError({"postalCode": [_NO_LOCATION]})
        record["timezone"] = zone
