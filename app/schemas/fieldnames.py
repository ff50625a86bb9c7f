"""Which careCycle field an inbound name fills: careCycle's own spellings, common aliases, a source's field_map.

Normalizing the values under those names is `app.schemas.leads`' part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from app.schemas.carecycle import CareCycleRecordSchema

FULL_NAME = "fullName"  # not a careCycle field: split into firstName/lastName
EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})
_NOT_KEY_CHAR = re.compile(r"[\s.\-/#]+")

# Inbound names (compared lower-case, with spaces, dots, hyphens, slashes and "#" as "_", none at either end) ->
# careCycle field; HTML's autocomplete names ("given-name", "address-level1", "bday") among them. Each
# careCycle name's lower-case and snake_case spellings ("postalcode", "postal_code") are added below.
_ALIAS_GROUPS: dict[str, tuple[str, ...]] = {
    "phoneNumber": ("phone", "mobile", "mobile_phone", "mobile_number", "cell", "cell_phone", "cellphone",
                    "telephone", "tel", "primary_phone", "home_phone", "contact_number", "phone_no", "phone_num",
                    "phone1", "cell_number", "cell_phone_number", "mobile_phone_number", "primary_phone_number",
                    "home_phone_number", "telephone_number", "contact_phone", "tel_national"),
    "firstName": ("fname", "first", "given_name"),
    "lastName": ("lname", "last", "surname", "family_name"),
    FULL_NAME: ("full_name", "fullname", "name", "your_name", "contact_name"),
    "email": ("email_address", "e_mail", "emailaddress"),
    "postalCode": ("zip", "zipcode", "zip_code", "postcode", "post_code", "zip5", "postal", "zip_postal_code",
                   "zip_postal"),
    "timezone": ("tz", "time_zone"),
    "state": ("state_code", "region", "province", "state_province", "address_level1"),
    "city": ("town", "address_level2"),
    "address": ("street_address", "address1", "address_1", "address_line_1", "address_line1", "street", "street1"),
    "address2": ("address_2", "address_line_2", "address_line2", "street2", "apt", "suite", "apt_suite"),
    "dateOfBirth": ("dob", "birthdate", "birth_date", "birthday", "bday"),
    "language": ("preferred_language",),
    "gender": ("sex",),
    "maritalStatus": ("relationship_status", "marital", "maritial_status"),  # Meta's type is MARITIAL_STATUS (sic)
    "filingStatus": ("tax_filing_status",),
    "dependentCount": ("dependents", "number_of_dependents", "num_dependents"),
    "householdIncome": ("income", "annual_income", "yearly_income", "annual_household_income"),
    "isDecisionMaker": ("decision_maker",),
    "medicaidNumber": ("medicaid_id",),
    "veteran": ("is_veteran",),
    "socialSecurityDisability": ("ssdi",),
    "healthSherpaCustomerId": ("healthsherpa_customer_id",),
    "mbiNumber": ("mbi", "medicare_id", "medicare_number", "medicare_beneficiary_identifier"),
    "doNotCall": ("dnc",),
    "doNotSMS": ("do_not_text",),
}  # fmt: skip
# Meta's click id and browser id cookies (reference web-forms C.5): a landing page copies them into inputs of
# these names, which start with "_" as form machinery does, but are attribution, kept as customFields.
ATTRIBUTION_COOKIE_FIELDS = frozenset({"_fbc", "_fbp"})
# Used only when no better-named value is usable (Google's WORK_EMAIL / WORK_PHONE columns).
_FALLBACK_ALIASES = {"work_email": "email", "work_phone": "phoneNumber", "work_phone_number": "phoneNumber"}
_RANK_FIELD_MAP, _RANK_EXACT, _RANK_ALIAS, RANK_FALLBACK = range(4)

CARECYCLE_NAMES = tuple(CareCycleRecordSchema._declared_fields)
_CARECYCLE_NAME_SET = frozenset(CARECYCLE_NAMES)


def _alias_key(name: str) -> str:
    return _NOT_KEY_CHAR.sub("_", name.strip().lower()).strip("_")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


_ALIASES: dict[str, str] = {
    **{key: target for name in CARECYCLE_NAMES for key, target in ((name.lower(), name), (_snake(name), name))},
    **{alias: target for target, aliases in _ALIAS_GROUPS.items() for alias in aliases},
}


def resolve_field_name(key: str, field_map: Mapping[str, str] = EMPTY_MAP) -> tuple[str, int] | None:
    """Return (careCycle field or FULL_NAME, rank) for an inbound name, or None when it is a custom field.

    Lower rank wins when several inbound names fill one field: the source's field_map, then the exact
    careCycle spelling, then an alias, then a fallback alias (work e-mail/phone).
    """
    if key in field_map:
        target = field_map[key]
        resolved = target if target in _CARECYCLE_NAME_SET or target == FULL_NAME else _ALIASES.get(_alias_key(target))
        return (resolved, _RANK_FIELD_MAP) if resolved else None
    known = _RESOLVED_NAMES.get(key)
    if known is None:
        known = _resolve_unmapped(key)
        if known is not None and len(_RESOLVED_NAMES) < _MAX_RESOLVED_NAMES:
            _RESOLVED_NAMES[key] = known
    return known


def _resolve_unmapped(key: str) -> tuple[str, int] | None:
    """`resolve_field_name` for a name no field_map entry covers."""
    if key in _CARECYCLE_NAME_SET:
        return key, _RANK_EXACT
    alias = _alias_key(key)
    if alias in _ALIASES:
        return _ALIASES[alias], _RANK_ALIAS
    if alias in _FALLBACK_ALIASES:
        return _FALLBACK_ALIASES[alias], RANK_FALLBACK
    return None


# The same few names arrive on every lead: those that name a careCycle field are resolved once. Names
# that resolve to nothing (custom fields, or whatever a malformed body turns into a name) are not kept.
_MAX_RESOLVED_NAMES = 1024
_RESOLVED_NAMES: dict[str, tuple[str, int]] = {}


def is_dropped_name(key: str, field_map: Mapping[str, str]) -> bool:
    """True for form machinery (`_redirect`, `_charset_`, a framework's `_token`): a name starting with "_",
    unless it is attribution (Meta's `_fbc`, `_fbp` cookies, copied into a form) or the source's field_map names
    it; and for a name the field_map maps to one starting with "_"."""
    if key in field_map:
        return field_map[key].startswith("_")
    return key.startswith("_") and key not in ATTRIBUTION_COOKIE_FIELDS
