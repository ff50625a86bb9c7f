"""Free text from careCycle and Graph: kept without the values an upload sent and the shapes of personal data."""

from __future__ import annotations

import pytest

from workers.redaction import Redactor


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        pytest.param("Rate limit exceeded", "Rate limit exceeded", id="plain-words"),
        pytest.param("at most 255 characters, 200 records", "at most 255 characters, 200 records", id="short-numbers"),
        pytest.param("Expected string, received null", "Expected string, received null", id="zod-type-name"),
        pytest.param(
            "Expected 'Male' | 'Female', received 'femal'", "Expected 'Male' | 'Female', received …", id="enum"
        ),
        pytest.param("write to jane.doe@example.com", "write to …", id="email"),
        pytest.param("call (312) 555-0177 now", "call … now", id="spaced-phone"),
        pytest.param("born 03/04/1951.", "born ….", id="date"),
        pytest.param("mbi 1EG4TE5MK73 unknown", "mbi … unknown", id="medicare-id"),
    ],
)
def test_the_shapes_of_personal_data_are_taken_out(text, kept):
    assert Redactor()(text, 300) == kept


def test_every_value_of_the_records_is_taken_out_in_any_case_and_the_secrets_too():
    records = [{"firstName": "Zelda", "state": "NY", "customFields": [{"fieldKey": "plan", "value": ["Gold Plus"]}]}]
    redact = Redactor.of_records(records, ["cc_live_key"])

    assert redact("zelda chose gold plus in NY (key cc_live_key)", 300) == "… chose … in NY (key …)"


def test_a_short_name_is_taken_out_where_it_stands_as_a_word():
    records = [{"firstName": "Al", "lastName": "Wu", "state": "NY", "city": "Oz"}]
    redact = Redactor.of_records(records)

    assert (
        redact("record for Al Wu: always wuthering in NY and Oz", 300)
        == "record for … …: always wuthering in NY and Oz"
    )


def test_each_word_of_a_name_an_address_or_a_mailbox_is_taken_out_but_not_house_numbers_nor_field_keys():
    records = [
        {
            "firstName": "Zebulon",
            "address": "255 Marmalade Lane",
            "email": "zeb.quix@example.org",
            "customFields": [{"fieldKey": "tcpa_consent_at", "value": "yes"}],
        }
    ]
    redact = Redactor.of_records(records)

    text = redact("street MARMALADE Lane: at most 255 characters; mailbox zeb.quix; unknown field tcpa_consent_at", 300)

    assert text == "street … …: at most 255 characters; mailbox ….…; unknown field tcpa_consent_at"


def test_the_text_is_cut_to_the_limit():
    assert Redactor()("x" * 500, 300) == "x" * 300
