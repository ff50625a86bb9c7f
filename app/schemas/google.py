"""Google Ads lead form webhook payload -> a submission `normalize_submission` understands.

Every `column_id` of reference/google-lead-forms.md §3 has a fixed place: contact columns become careCycle
fields, qualifying questions become customFields under their lower-cased id, advertiser-written questions
become customFields under their `column_name` (their `column_id` when an earlier answer holds that label; never
mapped to a careCycle field by their label), national ID numbers are not forwarded. Attribution ids travel as
customFields; int64 ids stay exact strings.
Unknown payload keys are ignored: Google adds fields over time. Answers are read one by one: Google does not
retry a refused lead, so one malformed column is dropped with a warning instead of costing the whole lead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.schemas.customfields import custom_field_key
from app.schemas.fields import NormalizingField, has_lone_surrogate, load_tolerant, message_list
from app.schemas.status import lead_status_field

MAX_LEAD_ID_CHARS = 255
INT64_MAX = 2**63 - 1
REQUIRED_KEYS = ("lead_id", "user_column_data")
_NO_QUESTION = "expected a column_id or column_name"

# Contact columns -> inbound names `normalize_submission` resolves (careCycle spelling, or its aliases).
CONTACT_COLUMNS: Mapping[str, str] = {
    "FULL_NAME": "full_name",  # split into firstName/lastName unless FIRST_NAME/LAST_NAME are given
    "FIRST_NAME": "firstName",
    "LAST_NAME": "lastName",
    "EMAIL": "email",
    "PHONE_NUMBER": "phoneNumber",
    "POSTAL_CODE": "postalCode",
    "STREET_ADDRESS": "address",
    "CITY": "city",
    "REGION": "state",  # full names ("California") become USPS codes
    "WORK_EMAIL": "work_email",  # used only when EMAIL is missing or unusable
    "WORK_PHONE": "work_phone",  # used only when PHONE_NUMBER is missing or unusable
}
# Contact columns careCycle has no field for.
CUSTOM_CONTACT_COLUMNS: Mapping[str, str] = {
    "COUNTRY": "country",
    "COMPANY_NAME": "company_name",
    "JOB_TITLE": "job_title",
}
# National ID numbers: sensitive, not forwarded (reference §3.1).
SENSITIVE_COLUMNS = frozenset(
    {
        "GOVERNMENT_ISSUED_ID_CPF_BR",
        "GOVERNMENT_ISSUED_ID_DNI_AR",
        "GOVERNMENT_ISSUED_ID_DNI_PE",
        "GOVERNMENT_ISSUED_ID_RUT_CL",
        "GOVERNMENT_ISSUED_ID_CC_CO",
        "GOVERNMENT_ISSUED_ID_CI_EC",
        "GOVERNMENT_ISSUED_ID_RFC_MX",
    }
)
# Google-authored qualifying questions (reference §3.2): customFields keyed by the lower-cased id.
QUALIFYING_COLUMNS = frozenset(
    {
        *("VEHICLE_MODEL", "VEHICLE_TYPE", "PREFERRED_DEALERSHIP", "VEHICLE_PURCHASE_TIMELINE"),
        *("VEHICLE_OWNERSHIP", "VEHICLE_PAYMENT_TYPE", "VEHICLE_CONDITION"),
        *("COMPANY_SIZE", "ANNUAL_SALES", "YEARS_IN_BUSINESS", "JOB_DEPARTMENT", "JOB_ROLE"),
        *(f"OVER_{age}_AGE" for age in range(18, 66)),
        *("EDUCATION_PROGRAM", "EDUCATION_COURSE"),
        *("PRODUCT", "SERVICE", "OFFER", "CATEGORY", "PREFERRED_CONTACT_METHOD", "PREFERRED_LOCATION"),
        *("PREFERRED_CONTACT_TIME", "PURCHASE_TIMELINE"),
        *("YEARS_OF_EXPERIENCE", "JOB_INDUSTRY", "LEVEL_OF_EDUCATION"),
        *("PROPERTY_TYPE", "REALTOR_HELP_GOAL", "PROPERTY_COMMUNITY", "PRICE_RANGE", "NUMBER_OF_BEDROOMS"),
        *("FURNISHED_PROPERTY", "PETS_ALLOWED_PROPERTY"),
        *("NEXT_PLANNED_PURCHASE", "EVENT_SIGNUP_INTEREST", "PREFERRED_SHOPPING_PLACES", "FAVORITE_BRAND"),
        "TRANSPORTATION_COMMERCIAL_LICENSE_TYPE",
        *("EVENT_BOOKING_INTEREST", "DESTINATION_COUNTRY", "DESTINATION_CITY", "DEPARTURE_COUNTRY"),
        *("DEPARTURE_CITY", "DEPARTURE_DATE", "RETURN_DATE", "NUMBER_OF_TRAVELERS", "TRAVEL_BUDGET"),
        "TRAVEL_ACCOMMODATION",
    }
)
# Attribution metadata (no personal data) -> customFields key. gcl_id is the same click id forms call gclid.
ATTRIBUTION_KEYS: Mapping[str, str] = {
    "gcl_id": "gclid",
    "lead_id": "google_lead_id",
    "form_id": "google_form_id",
    "campaign_id": "google_campaign_id",
    "adgroup_id": "google_adgroup_id",
    "creative_id": "google_creative_id",
    "asset_group_id": "google_asset_group_id",
    "api_version": "google_api_version",
    "lead_submit_time": "google_lead_submit_time",
    "lead_source": "google_lead_source",
    "lead_stage": "google_lead_stage",
}


class Int64Id(NormalizingField[str]):
    """A Google int64 id (a JSON integer, or its digits as a string) kept as an exact decimal string."""

    expected = "a whole number id"

    def _normalize(self, value: Any) -> str:
        text = self._text(value)
        if not text.isascii() or not text.isdigit() or int(text) > INT64_MAX:
            raise self.make_error("invalid")
        return str(int(text))


def _storable_text(value: str) -> None:
    """JSON can carry "\\ud800", which no UTF-8 store takes: refused in the id a lead is remembered by."""
    if has_lone_surrogate(value):
        raise ValidationError("expected text (an unpaired surrogate is none)")


def _text(*, missing: str = "", **kwargs: Any) -> fields.String:
    """A text field whose refusal says what was expected, in the words of the relay's other messages;
    `missing` is said of a required one that is absent or null."""
    messages: dict[str, Any] = {"invalid": "expected text"}
    if missing:
        messages |= {"required": missing, "null": missing}
    return fields.String(error_messages=messages, **kwargs)


def _null_as_blank(value: Any) -> Any:
    return "" if value is None else value


def _scalar_as_text(value: Any) -> Any:
    """A number or boolean where Google's schema has only strings, as its JSON spelling (3, 2.5, true)."""
    if isinstance(value, bool | int | float):
        try:
            return json.dumps(value)
        except ValueError:  # an int past Python's digit limit: left for the field to refuse
            return value
    return value


def _column_text(*, numbers_as_text: bool = False) -> fields.String:
    """A text of one answer; null counts as "" (an answer left blank)."""
    steps = [_null_as_blank, _scalar_as_text] if numbers_as_text else [_null_as_blank]
    return _text(load_default="", allow_none=True, pre_load=steps)


class UserColumnSchema(Schema):
    """One answered question of `user_column_data`."""

    class Meta:
        unknown = EXCLUDE

    error_messages = {"type": "expected an object with column_id and string_value"}

    column_id = _column_text()
    column_name = _column_text()
    string_value = _column_text(numbers_as_text=True)


class AnswerList(fields.List[Any]):
    """`user_column_data`: the list is required, its items are left for `load_answers` to read one by one.

    Described as a list of `UserColumnSchema` all the same, which is what Google sends.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return list(value)


class GoogleLeadSchema(Schema):
    """The webhook body (reference §2); `google_key` is checked before loading and never used after."""

    class Meta:
        unknown = EXCLUDE

    google_key = fields.Raw(
        load_only=True, metadata={"description": "The key configured with the form (`Google_key` is also accepted)."}
    )
    lead_id = _text(
        required=True,
        missing=f"missing: expected text of 1 to {MAX_LEAD_ID_CHARS} characters, Google's id of the lead",
        validate=[
            validate.Length(1, MAX_LEAD_ID_CHARS, error=f"expected 1 to {MAX_LEAD_ID_CHARS} characters"),
            _storable_text,
        ],
    )
    user_column_data = AnswerList(
        fields.Nested(UserColumnSchema),
        required=True,
        error_messages={
            "invalid": "expected a list of answered columns",
            "required": "missing: expected a list of answered columns",
            "null": "missing: expected a list of answered columns",
        },
        metadata={"description": "One item per answered question; an unreadable item is dropped with a warning."},
    )
    is_test = fields.Boolean(load_default=False, allow_none=True, error_messages={"invalid": "expected true or false"})
    api_version = _text(allow_none=True)
    form_id = Int64Id()
    campaign_id = Int64Id()
    adgroup_id = Int64Id()
    creative_id = Int64Id()
    asset_group_id = Int64Id()
    gcl_id = _text(allow_none=True)
    lead_submit_time = _text(allow_none=True)
    lead_source = _text(allow_none=True)
    lead_stage = _text(allow_none=True)


class GoogleLeadReceiptSchema(Schema):
    """The answer to Google (which only looks at the status): the lead that stands for the delivery."""

    id = fields.String(required=True)
    status = lead_status_field(required=True, metadata={"example": "queued"})
    warnings = fields.List(fields.String(), required=True)


@dataclass(frozen=True)
class GoogleLead:
    """A loaded webhook body: the lead id, whether it is a test, and the submission it becomes."""

    lead_id: str
    is_test: bool
    submission: dict[str, Any]
    warnings: tuple[str, ...]


def load_google_lead(body: Mapping[str, Any], field_map: Mapping[str, str]) -> GoogleLead:
    """Load a webhook body; raises `ValidationError` when `lead_id` or `user_column_data` is unusable.

    A bad optional value (an id that is not a number, say) is dropped with a warning.
    """
    data, messages = load_tolerant(GoogleLeadSchema(), body)
    if data is None:
        raise ValidationError({key: value for key, value in messages.items() if key in REQUIRED_KEYS})
    warnings = [f"{key}: {message}" for key, found in messages.items() for message in _listed(found)]
    answers = load_answers(data["user_column_data"], warnings)
    submission = google_submission({**data, "user_column_data": answers}, field_map, warnings)
    return GoogleLead(data["lead_id"], bool(data.get("is_test")), submission, tuple(warnings))


def load_answers(items: Sequence[Any], warnings: list[str]) -> list[dict[str, str]]:
    """Each item of `user_column_data` read on its own; one that cannot be read is dropped with a warning naming
    its place and what was expected (never its text: a label or an answer may hold personal data)."""
    schema = UserColumnSchema()
    answers = []
    for index, item in enumerate(items):
        try:
            answer = schema.load(item)
        except ValidationError as exc:
            messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
            for name, found in messages.items():
                where = f"user_column_data.{index}" + ("" if name == "_schema" else f".{name}")
                warnings += [f"{where}: {message}; the answer was dropped" for message in message_list(found)]
            continue
        if not answer["column_id"].strip() and not answer["column_name"].strip():  # no question to file it under
            warnings.append(f"user_column_data.{index}: {_NO_QUESTION}; the answer was dropped")
            continue
        answers.append(answer)
    return answers


def google_submission(data: Mapping[str, Any], field_map: Mapping[str, str], warnings: list[str]) -> dict[str, Any]:
    """The submission for a loaded body: contact fields by name, everything else under `customFields`."""
    submission: dict[str, Any] = {}
    # Pairs, not a dict: an answer whose key an earlier one holds is left for normalization to report, never
    # dropped here without a word. Attribution comes first, so no answer takes its keys.
    custom = [(key, data[name]) for name, key in ATTRIBUTION_KEYS.items() if data.get(name) not in (None, "")]
    for column in data["user_column_data"]:
        column_id, value = column["column_id"].strip(), column.get("string_value")
        name = (column.get("column_name") or "").strip()
        if column_id in field_map:
            _answer_once(submission, column_id, column_id, value, warnings)  # the source's field_map decides
        elif column_id in CONTACT_COLUMNS:
            _answer_once(submission, CONTACT_COLUMNS[column_id], column_id, value, warnings)
        elif column_id in SENSITIVE_COLUMNS:
            warnings.append(f"{column_id}: national id numbers are not forwarded")
        elif column_id in CUSTOM_CONTACT_COLUMNS or column_id in QUALIFYING_COLUMNS:
            custom.append((CUSTOM_CONTACT_COLUMNS.get(column_id, column_id.lower()), value))
        else:  # `load_answers` kept only answers with a column_id or a column_name
            custom.append((_question_key(name, column_id, custom), value))
    if custom:
        # careCycle's item form, so no question label can be mistaken for the item keys themselves.
        submission["customFields"] = [{"fieldKey": key, "value": value} for key, value in custom]
    return submission


def _answer_once(submission: dict[str, Any], name: str, column_id: str, value: Any, warnings: list[str]) -> None:
    """Put a column's answer under `name`: Google sends each column once, so a second answer of the same column
    takes the place of a blank first one, and another filled one is dropped with a warning naming the column."""
    earlier = submission.get(name)
    if earlier is None or not str(earlier).strip():
        submission[name] = value
    elif str(value).strip() and str(value).strip() != str(earlier).strip():  # the same answer but for blanks is none
        warnings.append(f"{column_id}: expected once: an earlier answer has this column_id; dropped")


def _question_key(name: str, column_id: str, earlier: Sequence[tuple[str, Any]]) -> str:
    """The customFields key of an advertiser's own question: its label; its column_id when an earlier answer
    holds that label already (two questions may share one, such as "Please specify", or use an attribution key);
    its label again when both are taken, for normalization to drop a differing answer with a warning naming it."""
    if not name or not column_id:
        return name or column_id
    taken = {custom_field_key(key) for key, _ in earlier}
    return column_id if custom_field_key(name) in taken and custom_field_key(column_id) not in taken else name


def _listed(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"{key}: {m}" for key, found in messages.items() for m in _listed(found)]
    return message_list(messages)
