"""A Graph lead's `field_data` -> the careCycle record it becomes, one row per spelling Meta uses."""

from __future__ import annotations

import pytest

from app.intake import Intake
from app.schemas.meta import is_test_lead, meta_submission
from app.sources import LeadSource, SourceKind

SOURCE = LeadSource(slug="fb-acme", kind=SourceKind.FACEBOOK, form_ids=("2",), source_id="src-fb", lead_cost=12.5)
PROVENANCE = {
    "leadgen_id": "900000000000001",
    "form_id": "200000000000001",
    "page_id": "100000000000001",
    "ad_id": "300000000000001",
    "adset_id": None,
    "platform": "fb",
    "is_organic": False,
    "tcpa_consent_at": "2026-01-01T00:00:00Z",
}
PROVENANCE_FIELDS = [
    {"fieldKey": "leadgen_id", "value": "900000000000001"},
    {"fieldKey": "form_id", "value": "200000000000001"},
    {"fieldKey": "page_id", "value": "100000000000001"},
    {"fieldKey": "ad_id", "value": "300000000000001"},
    {"fieldKey": "platform", "value": "fb"},
    {"fieldKey": "is_organic", "value": False},
    {"fieldKey": "tcpa_consent_at", "value": "2026-01-01T00:00:00Z"},
]
NYC = {"postalCode": "10001", "timezone": "America/New_York", "state": "NY", "city": "New York"}
CONFIG = {"sourceId": "src-fb", "leadCost": 12.5}


def answers(**named):
    return [
        {"name": name, "values": values if isinstance(values, list) else [values]} for name, values in named.items()
    ]


@pytest.mark.parametrize(
    ("field_data", "disclaimers", "expected"),
    [
        pytest.param(
            answers(
                full_name="Jane Example",
                email="jane.example@example.com",
                phone_number="+12125550142",
                zip_code="10001",
                **{"which_plan_are_you_interested_in?": "plan_b"},
            ),
            [{"checkbox_key": "optional_1", "is_checked": "1"}, {"checkbox_key": "optional_2", "is_checked": ""}],
            {
                "phoneNumber": "+12125550142",
                "firstName": "Jane",
                "lastName": "Example",
                "email": "jane.example@example.com",
                **NYC,
                **CONFIG,
                "customFields": [
                    *PROVENANCE_FIELDS,
                    {"fieldKey": "which_plan_are_you_interested_in?", "value": "plan_b"},
                    {"fieldKey": "consent_optional_1", "value": True},
                    {"fieldKey": "consent_optional_2", "value": False},
                ],
            },
            id="metas-sample-lead",
        ),
        pytest.param(
            answers(FULL_NAME="Jane Q Example", PHONE="(212) 555-0142", ZIP="10001-1234"),
            [],
            {"phoneNumber": "+12125550142", "firstName": "Jane", "lastName": "Example", **NYC, **CONFIG},
            id="legacy-upper-case-keys",
        ),
        pytest.param(
            answers(
                first_name="Jane",
                last_name="Example",
                phone_number="2125550142",
                street_address="1 Main St",
                city="Albany",
                state="New York",
                post_code="12207",
                date_of_birth="1950-02-03",
                gender="female",
                marital_status="married",
            ),
            [],
            {
                "phoneNumber": "+12125550142",
                "firstName": "Jane",
                "lastName": "Example",
                "postalCode": "12207",
                "timezone": "America/New_York",
                "state": "NY",
                "city": "Albany",
                "address": "1 Main St",
                "dateOfBirth": "02-03-1950",
                "gender": "Female",
                "maritalStatus": "Married",
                **CONFIG,
            },
            id="address-birth-date-and-enums",
        ),
        pytest.param(
            answers(date_of_birth="02/03/1950", phone_number="+12125550142", zip_code="10001", gender="Woman"),
            [],
            {"phoneNumber": "+12125550142", **NYC, "dateOfBirth": "02-03-1950", "gender": "Female", **CONFIG},
            id="us-birth-date-and-gender-word",
        ),
        pytest.param(
            answers(phone_number="+13125550142", maritial_status="widow", **{"which_products?": ["dental", "vision"]}),
            [],
            {
                "phoneNumber": "+13125550142",
                "timezone": "America/Chicago",
                "maritalStatus": "Widowed",
                **CONFIG,
                "customFields": [*PROVENANCE_FIELDS, {"fieldKey": "which_products?", "value": ["dental", "vision"]}],
            },
            id="misspelt-marital-type-and-multi-select",
        ),
        pytest.param(
            answers(work_phone_number="+12125550142", work_email="j@example.com", province="NY", country="US"),
            [],
            {
                "phoneNumber": "+12125550142",
                "email": "j@example.com",
                "timezone": "America/New_York",
                "state": "NY",
                **CONFIG,
                "customFields": [*PROVENANCE_FIELDS, {"fieldKey": "country", "value": "US"}],
            },
            id="work-contact-province-and-country",
        ),
        pytest.param(
            answers(phone_number="+12125550142", zip_code="10001", form_id="chosen by a question", **{"": "x"}),
            [],
            {"phoneNumber": "+12125550142", **NYC, **CONFIG},
            id="question-named-like-provenance-cannot-override-it",
        ),
    ],
)
def test_field_data_becomes_this_exact_record(field_data, disclaimers, expected):
    normalized = Intake.normalize(SOURCE, meta_submission(field_data, PROVENANCE, disclaimers))

    expected.setdefault("customFields", PROVENANCE_FIELDS)
    assert normalized.record == expected
    assert normalized.warnings == ()


def test_a_bad_optional_answer_is_dropped_with_a_warning_and_the_lead_kept():
    field_data = answers(phone_number="+12125550142", zip_code="10001", date_of_birth="02/30/1950")

    normalized = Intake.normalize(SOURCE, meta_submission(field_data, {}))

    assert "dateOfBirth" not in normalized.record
    assert normalized.warnings and normalized.warnings[0].startswith("dateOfBirth")


def test_a_lead_answering_two_phone_questions_differently_keeps_the_first_and_warns_without_either_number():
    # An older form's PHONE beside a newer phone_number question: both fill phoneNumber, only one can be sent.
    field_data = answers(PHONE="(212) 555-0142", phone_number="+13125550177", zip_code="10001")

    normalized = Intake.normalize(SOURCE, meta_submission(field_data, {}))

    assert normalized.record["phoneNumber"] == "+12125550142"
    assert [warning for warning in normalized.warnings if warning.startswith("phoneNumber")] == [
        "phoneNumber: given under more than one name with different values; the first was kept"
    ]
    assert not any("555" in warning for warning in normalized.warnings)


def test_a_lead_answering_two_phone_questions_alike_has_no_warning():
    field_data = answers(PHONE="(212) 555-0142", phone_number="+12125550142", zip_code="10001")

    normalized = Intake.normalize(SOURCE, meta_submission(field_data, {}))

    assert normalized.record["phoneNumber"] == "+12125550142" and normalized.warnings == ()


def test_a_work_phone_beside_the_phone_is_no_second_answer_to_warn_about():
    field_data = answers(phone_number="+12125550142", work_phone_number="+13125550177", zip_code="10001")

    normalized = Intake.normalize(SOURCE, meta_submission(field_data, {}))

    assert normalized.record["phoneNumber"] == "+12125550142" and normalized.warnings == ()


@pytest.mark.parametrize(
    ("field_data", "expected"),
    [
        pytest.param(answers(full_name="<test lead: dummy data for full_name>"), True, id="testing-tool"),
        pytest.param(answers(full_name="Jane Example", email="test@fb.com"), False, id="real-person"),
    ],
)
def test_testing_tool_leads_are_recognised_by_their_placeholder_answers(field_data, expected):
    assert is_test_lead(field_data) is expected
