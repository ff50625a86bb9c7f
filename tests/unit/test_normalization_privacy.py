"""What normalization says about a value it drops or refuses names the field and what was expected, never the value.

Warnings are kept with the lead and shown by the status API and dashboard, and a refusal's messages are the 422's
reasons: a submitted phone, e-mail, name, date of birth, Medicare id or address must appear in neither, under any
name a source may send it by, from a form post, a Meta lead's answers or a Google lead's columns.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

import app.forms as forms_module
import app.schemas.customfields as customfields_module
import app.schemas.fieldnames as fieldnames_module
import app.schemas.forms as provenance_module
import app.schemas.google as google_module
import app.schemas.leads as leads_module
from app.forms import FormPost, consent_and_provenance, redirect_target
from app.schemas.fields import clean_text, field_messages
from app.schemas.forms import FormProvenanceSchema
from app.schemas.geo import CA_PROVINCES, US_STATES
from app.schemas.google import load_google_lead
from app.schemas.leads import normalize_submission, record_fields
from app.schemas.meta import meta_submission, without_answered_external_id
from tests.intake_support import form_source

TODAY = dt.date(2026, 6, 1)
BASE = {"phone": "(212) 555-0142", "zip": "10001"}
MIN_CHECKED_CHARS = 4  # a shorter value ("NY", "12") may be in any message by chance
PERSONAL_FIELDS = ("phoneNumber", "email", "firstName", "lastName", fieldnames_module.FULL_NAME, "dateOfBirth",
                   "mbiNumber", "address", "address2", "city", "county", "postalCode", "state",
                   "medicaidNumber")  # fmt: skip
# Every inbound name normalization reads a personal field from: careCycle's spellings, aliases, fallbacks.
PERSONAL_NAMES = sorted(
    name
    for name in {
        *fieldnames_module.CARECYCLE_NAMES,
        fieldnames_module.FULL_NAME,
        *fieldnames_module._ALIASES,
        *fieldnames_module._FALLBACK_ALIASES,
    }
    if (resolved := fieldnames_module.resolve_field_name(name)) is not None and resolved[0] in PERSONAL_FIELDS
)
MAPPED_NAME = "Your answer"  # a question a source's field_map sends to a personal field
_PARTS = re.compile(r"\d+|[^\W\d_]+")


def _wording() -> str:
    """Everything a message may say whatever was submitted: field names, what each field expects, fixed phrases."""
    record = record_fields(lambda: TODAY)
    fields = [*record.values(), *FormProvenanceSchema().fields.values()]
    texts = [*PERSONAL_NAMES, *fieldnames_module._ALIASES, *record]
    for field in fields:
        texts.append(getattr(field, "expected", ""))
        texts += [str(template) for template in field.error_messages.values()]
    for module in (leads_module, forms_module, provenance_module, google_module, customfields_module):
        texts += [value for value in vars(module).values() if isinstance(value, str)]
    return "\n".join(texts).lower()


WORDING = _wording()

_LETTERED_PHONES = st.from_regex(r"\A\(?[2-9]\d{2}\)? ?[2-9A-Za-z]{3}-[0-9A-Za-z]{4}\Z")
_EMAILS_WITHOUT_AT = st.from_regex(r"\A[a-z]{3,10}(\.[a-z]{2,8})?( at |#|)[a-z]{3,10}\.(com|org|net)\Z")
_BAD_EMAILS = st.from_regex(r"\A[a-z]{3,10}@[a-z]{3,10}(\.\.|@|\s)[a-z]{3,10}\Z")
_STATE_LABELS = st.builds(
    lambda name, code, dash: f"{name} - {code}" if dash else f"{name} ({code})",
    st.sampled_from([*US_STATES.values(), *CA_PROVINCES.values(), "Atlantis", "Gondor"]),
    st.sampled_from([*US_STATES, *CA_PROVINCES, "ZZ", "QQ"]),
    st.booleans(),
)
_BAD_DATES = st.builds(
    lambda month, day, year, sep: f"{month:02d}{sep}{day:02d}{sep}{year}",
    st.integers(0, 19),
    st.integers(0, 40),
    st.integers(1700, 2999),
    st.sampled_from(["/", "-", ".", " "]),
) | st.sampled_from(["02/30/1961", "1961-02-30", "13/01/1950", "Febtober 5, 1961", "31 Smarch 1961", "19611302"])
_DATE_NUMBERS = st.integers(10_000, 10**12)
_MBI_LIKE = st.from_regex(r"\A[0-9A-Z]{4}-?[0-9A-Z]{3}-?[0-9A-Z]{4}\Z") | st.from_regex(r"\A\d{3}-\d{2}-\d{4}\Z")
_ZIP_LIKE = st.from_regex(r"\A\d{4,9}(-\d{1,5})?\Z")
_NAMES = st.from_regex(r"\A[A-Z][a-z]{3,12}( [A-Z]\.)?( [A-Z][a-z]{3,12})?\Z")
_TEXTS = st.text(min_size=MIN_CHECKED_CHARS, max_size=40) | st.text(min_size=240, max_size=300)
_SCALARS = st.one_of(
    _LETTERED_PHONES, _EMAILS_WITHOUT_AT, _BAD_EMAILS, _STATE_LABELS, _BAD_DATES, _DATE_NUMBERS, _MBI_LIKE,
    _ZIP_LIKE, _NAMES, _TEXTS, st.floats(allow_nan=False), st.booleans(),
)  # fmt: skip
# A list is Meta's shape for every answer, and a form's for an input posted twice.
_VALUES = _SCALARS | st.lists(_SCALARS, min_size=1, max_size=3)


def _submitted_texts(value: Any) -> list[str]:
    """The texts in a submitted value a message could echo: as given, as cleaned, and each of its words and runs of
    digits, which a message could quote rearranged ("1961-02-30" of "02/30/1961")."""
    if isinstance(value, list | tuple):
        return [text for item in value for text in _submitted_texts(item)]
    if isinstance(value, dict):
        return _submitted_texts(list(value.values()))
    if isinstance(value, bool) or value is None:
        return []
    text = value if isinstance(value, str) else str(value)
    return [text, text.strip(), clean_text(text), *_PARTS.findall(text)]


def assert_nothing_echoed(submitted: list[Any], messages: list[str]) -> None:
    said = [message.lower() for message in messages]
    for text in {text for value in submitted for text in _submitted_texts(value)}:
        if len(text) < MIN_CHECKED_CHARS or text.lower() in WORDING:
            continue  # too short to tell, or the fixed wording itself ("expected", "email")
        leaked = [message for message in said if text.lower() in message]
        assert leaked == [], f"{text!r} echoed in {leaked}"


def normalization_messages(payload: dict[str, Any], field_map: dict[str, str] | None = None) -> list[str]:
    """The warnings of the lead a payload becomes, or the messages of its refusal."""
    try:
        lead = normalize_submission(payload, field_map=field_map or {}, today=lambda: TODAY)
    except ValidationError as exc:
        return field_messages(exc.normalized_messages())  # type: ignore[no-untyped-call]
    kept = [value for name, value in lead.record.items() if name in PERSONAL_FIELDS]
    assert_nothing_echoed(kept, list(lead.warnings))  # nor a value as it was normalized (a rival answer's)
    return list(lead.warnings)


@settings(max_examples=200, deadline=None)
@given(answers=st.dictionaries(st.sampled_from(PERSONAL_NAMES), _VALUES, min_size=1, max_size=4))
def test_no_warning_or_refusal_repeats_a_personal_value_under_any_of_its_names(answers):
    payload = {**BASE, **answers}

    assert_nothing_echoed(list(answers.values()), normalization_messages(payload))


@settings(max_examples=100, deadline=None)
@given(target=st.sampled_from(PERSONAL_FIELDS), value=_VALUES, first=_VALUES)
def test_no_warning_or_refusal_repeats_a_value_the_source_field_map_names_or_a_rival_answer(target, value, first):
    payload = {**BASE, target: first, MAPPED_NAME: value}

    messages = normalization_messages(payload, field_map={MAPPED_NAME: target})

    assert_nothing_echoed([value, first], messages)


_URLS = st.from_regex(r"\A(https?|ftp|javascript)://[a-z.]{0,12}( |\\|@)?[a-z]{3,10}\.com/\?email=[a-z]{4,9}\Z")
_CONSENT_VALUES = _SCALARS | _URLS | st.sampled_from(["0", "no", "off"])


@settings(max_examples=100, deadline=None)
@given(
    inputs=st.fixed_dictionaries(
        {},
        optional={
            name: _CONSENT_VALUES | st.lists(_CONSENT_VALUES, min_size=1, max_size=3)
            for name in (
                "consent",
                "tcpa_consent_text",
                "consent_text_id",
                "page_url",
                "xxTrustedFormCertUrl",
                "universal_leadid",
            )  # fmt: skip
        },
    ),
    referer=st.none() | _URLS | _SCALARS.filter(lambda value: isinstance(value, str)),
    checkbox=st.booleans(),
)
def test_no_consent_provenance_or_redirect_warning_repeats_what_the_form_posted(inputs, referer, checkbox):
    source = form_source(consent_checkbox=checkbox)

    _, warnings = consent_and_provenance(source, inputs, FormPost(inputs, referer=referer), now=0.0)
    _, redirect_warnings = redirect_target(source, referer, wants_json=False)  # a page's own _redirect input

    assert_nothing_echoed([*inputs.values(), referer], [*warnings, *redirect_warnings])


META_KEYS = ("full_name", "first_name", "last_name", "email", "work_email", "phone_number", "work_phone_number",
             "date_of_birth", "street_address", "city", "state", "province", "zip_code", "post_code",
             "dob")  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(answered=st.dictionaries(st.sampled_from(META_KEYS), st.lists(_SCALARS, max_size=3), min_size=1, max_size=5))
def test_no_warning_or_refusal_of_a_meta_lead_repeats_its_answers(answered):
    field_data = [{"name": "phone_number", "values": ["+12125550142"]}, {"name": "zip_code", "values": ["10001"]}]
    field_data += [{"name": name, "values": values} for name, values in answered.items()]
    submission, warnings = without_answered_external_id(meta_submission(field_data, {"leadgen_id": "1"}), {})

    messages = [*warnings, *normalization_messages(submission)]

    assert_nothing_echoed(list(answered.values()), messages)


GOOGLE_COLUMNS = ("FULL_NAME", "FIRST_NAME", "LAST_NAME", "EMAIL", "WORK_EMAIL", "PHONE_NUMBER", "WORK_PHONE",
                  "POSTAL_CODE", "STREET_ADDRESS", "CITY", "REGION", "GOVERNMENT_ISSUED_ID_CPF_BR")  # fmt: skip
_GOOGLE_ANSWERS = (
    _SCALARS
    | st.integers()
    | st.none()
    | st.lists(_SCALARS, max_size=2)
    | st.dictionaries(st.sampled_from(string.ascii_lowercase), _SCALARS, max_size=2)
)


@settings(max_examples=100, deadline=None)
@given(
    answered=st.lists(
        st.tuples(st.sampled_from(GOOGLE_COLUMNS), _GOOGLE_ANSWERS, st.sampled_from(["", "Your answer"])),
        min_size=1,
        max_size=5,
    )
)
def test_no_warning_or_refusal_of_a_google_lead_repeats_its_answers(answered):
    columns = [{"column_id": "PHONE_NUMBER", "string_value": "+12125550142"}]
    columns += [{"column_id": "POSTAL_CODE", "string_value": "10001"}]
    columns += [{"column_id": cid, "column_name": name, "string_value": value} for cid, value, name in answered]
    try:
        lead = load_google_lead({"lead_id": "lead-1", "user_column_data": columns}, {})
    except ValidationError as exc:
        messages = field_messages(exc.normalized_messages())  # type: ignore[no-untyped-call]
    else:
        messages = [*lead.warnings, *normalization_messages(lead.submission)]

    assert_nothing_echoed([value for _, value, _ in answered], messages)
