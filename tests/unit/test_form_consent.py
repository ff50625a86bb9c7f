"""Consent and provenance of form leads (SPEC "Normalization"): what travels as customFields, and what is dropped."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from app import create_app
from app.schemas.forms import load_provenance
from app.sources import ConsentKeys, SourceRegistry
from tests.factories import make_phone
from tests.intake_support import FORM_URL, URLENCODED, custom_fields, form, form_source, stored_record

NOW_ISO = "2027-01-15T08:00:00Z"  # FakeClock's start
CERT = "https://cert.trustedform.com/2a8e5b3c1d4f6e7a8b9c0d1e2f3a4b5c6d7e8f90"
LEADID = "6E3A7E5B-1C2D-4E5F-8A9B-0C1D2E3F4A5B"
TEXT = "By submitting you agree that Acme Dental may call you at the number given, including by autodialer."


@pytest.fixture
def post(settings, redis, clock):
    def send(fields, source=None, **headers):
        app = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source or form_source()]))
        response = app.test_client().post(
            FORM_URL, json=form(**fields), headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.7"}
        )
        assert response.status_code == 202, response.json
        provenance = custom_fields(stored_record(redis, settings, response.json["id"]))
        return provenance, response.json["warnings"]

    return send


@pytest.fixture
def post_urlencoded(settings, redis, clock):
    """Post a urlencoded body as a browser sends it, names repeated as often as the page has the input."""

    def send(body, source=None):
        app = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source or form_source()]))
        response = app.test_client().post(
            FORM_URL,
            data=f"phone={make_phone()}&zip=10001&{body}",
            content_type=URLENCODED,
            headers={"Accept": "application/json"},
            environ_base={"REMOTE_ADDR": "203.0.113.7"},
        )
        assert response.status_code == 202, response.json
        provenance = custom_fields(stored_record(redis, settings, response.json["id"]))
        return provenance, response.json["warnings"]

    return send


@pytest.mark.parametrize(
    ("fields", "headers", "expected", "warnings"),
    [
        pytest.param({}, {}, {"client_ip": "203.0.113.7"}, [], id="nothing-but-the-ip"),
        pytest.param(
            {"tcpa_consent_text": TEXT},
            {},
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="consent-text-shown-on-submit",
        ),
        pytest.param(
            {"consent_text": TEXT, "consent": "on"},
            {},
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="checked-consent-box-with-text",
        ),
        pytest.param(
            {"consent": "yes"},
            {},
            {"tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="checked-consent-box-alone",
        ),
        pytest.param(
            {"consent_text": TEXT, "consent": "off"},
            {},
            {"client_ip": "203.0.113.7"},
            ["consent: not given; no consent is recorded with the lead"],
            id="unchecked-consent-box",
        ),
        pytest.param(
            {"tcpa_consent_id": "tcpa-disclosure-v3"},
            {},
            {"tcpa_consent_text": "tcpa-disclosure-v3", "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="consent-text-id-shown-on-submit",
        ),
        pytest.param(
            {"consent_text_id": "tcpa-disclosure-v3", "consent": "on"},
            {},
            {"tcpa_consent_text": "tcpa-disclosure-v3", "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="checked-consent-box-with-text-id",
        ),
        pytest.param(
            {"tcpa_consent_id": "tcpa-disclosure-v3", "tcpa_consent_text": TEXT},
            {},
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"},
            [],
            id="consent-text-wins-over-its-id",
        ),
        pytest.param(
            {"tcpa_consent_id": "tcpa-disclosure-v3", "consent": "off"},
            {},
            {"client_ip": "203.0.113.7"},
            ["consent: not given; no consent is recorded with the lead"],
            id="unchecked-consent-box-with-text-id",
        ),
        pytest.param(
            {"page_url": "https://landing.example.com/offer?utm_source=google"},
            {"Referer": "https://landing.example.com/"},
            {"page_url": "https://landing.example.com/offer?utm_source=google", "client_ip": "203.0.113.7"},
            [],
            id="page-url-field-wins-over-referer",
        ),
        pytest.param(
            {},
            {"Referer": "https://landing.example.com/offer"},
            {"page_url": "https://landing.example.com/offer", "client_ip": "203.0.113.7"},
            [],
            id="referer-as-page-url",
        ),
        pytest.param(
            {"page_url": "javascript:alert(1)"},
            {},
            {"client_ip": "203.0.113.7"},
            ["page_url: expected an http or https URL"],
            id="page-url-not-a-web-url",
        ),
        pytest.param(
            {},
            {"Referer": "landing page"},
            {"client_ip": "203.0.113.7"},
            ["Referer: expected an http or https URL"],
            id="referer-not-a-web-url-named-as-the-header",
        ),
        pytest.param(
            {"page_url": "javascript:alert(1)"},
            {"Referer": "https://landing.example.com/offer"},
            {"client_ip": "203.0.113.7"},
            ["page_url: expected an http or https URL"],
            id="page-url-field-posted-bad-is-not-replaced-by-referer",
        ),
        pytest.param(
            {"page_url": " "},
            {"Referer": "https://landing.example.com/offer"},
            {"page_url": "https://landing.example.com/offer", "client_ip": "203.0.113.7"},
            [],
            id="blank-page-url-field-falls-back-to-referer",
        ),
        pytest.param(
            {"xxTrustedFormCertUrl": CERT, "xxTrustedFormToken": CERT, "xxTrustedFormPingUrl": "https://ping.x"},
            {},
            {"client_ip": "203.0.113.7", "trustedform_cert_url": CERT},
            [],
            id="trustedform-certificate",
        ),
        pytest.param(
            {"universal_leadid": LEADID},
            {},
            {"client_ip": "203.0.113.7", "jornaya_leadid": LEADID},
            [],
            id="jornaya-leadid",
        ),
        pytest.param(
            {"universal_leadid": "<script>"},
            {},
            {"client_ip": "203.0.113.7"},
            ["universal_leadid: expected a Jornaya LeadiD token (letters, digits and hyphens)"],
            id="jornaya-leadid-malformed",
        ),
    ],
)
def test_form_forwards_consent_and_provenance_as_custom_fields(post, fields, headers, expected, warnings):
    provenance, shown = post(fields, **headers)

    assert provenance == expected
    assert shown == warnings


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://cert.trustedform.com/abc", id="not-https"),
        pytest.param("https://cert.trustedform.com.evil.example/abc", id="lookalike-suffix"),
        pytest.param("https://eviltrustedform.com/abc", id="lookalike-prefix"),
        pytest.param("https://evil.example/cert.trustedform.com/abc", id="domain-in-path"),
        pytest.param("https://cert.trustedform.com@evil.example/abc", id="credentials-trick"),
        pytest.param("https://user@cert.trustedform.com/abc", id="credentials"),
        # A browser, and requests, read a backslash as the path's start: the host is evil.example.
        pytest.param("https://evil.example\\cert.trustedform.com/abc", id="backslash-trick"),
        pytest.param("https://evil.example%2Fcert.trustedform.com/abc", id="escaped-slash-in-host"),
        pytest.param("cert.trustedform.com/abc", id="no-scheme"),
        pytest.param("https://[cert.trustedform.com/abc", id="malformed"),
    ],
)
def test_form_drops_a_trustedform_url_not_on_trustedform_with_a_warning(post, url):
    provenance, warnings = post({"xxTrustedFormCertUrl": url})

    assert "trustedform_cert_url" not in provenance
    assert warnings == ["xxTrustedFormCertUrl: expected an https URL on trustedform.com"]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://cert.trustedform.com/abc", id="cert-host"),
        pytest.param("https://trustedform.com/abc", id="apex"),
        pytest.param("https://CERT.TrustedForm.com/abc", id="any-case"),
    ],
)
def test_form_keeps_a_trustedform_certificate_url(post, url):
    provenance, warnings = post({"xxTrustedFormCertUrl": url})

    assert provenance["trustedform_cert_url"] == url
    assert warnings == []


def test_form_uses_the_sources_consent_keys(post):
    keys = ConsentKeys(
        consent_text="consent_language",
        consent_at="consented_at",
        page_url="landing_page",
        client_ip="ip_address",
        trustedform_cert_url="tf_cert",
        jornaya_leadid="leadid",
    )
    fields = {"tcpa_consent_text": TEXT, "page_url": "https://landing.example.com/", "xxTrustedFormCertUrl": CERT}

    provenance, _ = post({**fields, "universal_leadid": LEADID}, source=form_source(consent_keys=keys))

    assert provenance == {
        "consent_language": TEXT,
        "consented_at": NOW_ISO,
        "landing_page": "https://landing.example.com/",
        "ip_address": "203.0.113.7",
        "tf_cert": CERT,
        "leadid": LEADID,
    }


def test_a_submission_cannot_set_the_provenance_keys_itself(post):
    spoofed = {"client_ip": "1.1.1.1", "tcpa_consent_at": "2020-01-01T00:00:00Z", "trustedform_cert_url": "x"}

    provenance, _ = post({**spoofed, "consent": "yes"})

    assert provenance == {"tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"}


@pytest.mark.parametrize(
    "custom",
    [
        pytest.param({"tcpa_consent_at": "2020-01-01T00:00:00Z", "client_ip": "1.1.1.1", "utm_id": "7"}, id="object"),
        pytest.param(
            [{"fieldKey": "tcpa_consent_at", "value": "2020"}, {"fieldKey": "client_ip", "value": "1.1.1.1"}]
            + [{"fieldKey": "utm_id", "value": "7"}],
            id="carecycle-items",
        ),
    ],
)
def test_a_submission_cannot_set_the_provenance_keys_through_its_own_custom_fields(post, custom):
    provenance, _ = post({"custom_fields": custom})

    assert provenance == {"client_ip": "203.0.113.7", "utm_id": "7"}


@pytest.mark.parametrize(
    "spoofed",
    [
        pytest.param({"tcpa_consent_at ": "2020-01-01T00:00:00Z", "trustedform_cert_url\t": "x"}, id="padded-fields"),
        pytest.param({"custom_fields": {" tcpa_consent_at": "2020", "client_ip\n": "1.1.1.1"}}, id="padded-object"),
        pytest.param(
            {
                "custom_fields": [
                    {"fieldKey": "tcpa_consent_at\t", "value": "2020"},
                    {"fieldKey": " client_ip", "value": "1.1.1.1"},
                ]
            },
            id="padded-items",
        ),
    ],
)
def test_padding_a_provenance_key_does_not_get_a_submissions_own_value_through(post, spoofed):
    provenance, _ = post({**spoofed, "consent": "no", "utm_id": "7"})

    assert provenance == {"client_ip": "203.0.113.7", "utm_id": "7"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            f"tcpa_consent_text={quote(TEXT)}&tcpa_consent_text={quote(TEXT)}",
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO},
            id="consent-text",
        ),
        pytest.param(
            f"consent_text={quote(TEXT)}&consent_text={quote(TEXT)}&consent=on&consent=on",
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO},
            id="consent-text-and-box",
        ),
        pytest.param(
            "page_url=https%3A%2F%2Flanding.example.com%2Foffer&page_url=https%3A%2F%2Flanding.example.com%2Foffer",
            {"page_url": "https://landing.example.com/offer"},
            id="page-url",
        ),
        pytest.param(
            f"xxTrustedFormCertUrl={quote(CERT)}&xxTrustedFormCertUrl={quote(CERT)}",
            {"trustedform_cert_url": CERT},
            id="trustedform-certificate",
        ),
        pytest.param(f"universal_leadid={LEADID}&universal_leadid={LEADID}", {"jornaya_leadid": LEADID}, id="leadid"),
    ],
)
def test_a_provenance_input_posted_twice_with_one_value_is_that_value(post_urlencoded, body, expected):
    # A page with a desktop and a mobile copy of its hidden inputs posts each of them twice.
    provenance, warnings = post_urlencoded(body)

    assert provenance == {**expected, "client_ip": "203.0.113.7"}
    assert warnings == []


def test_two_different_consent_texts_record_no_consent_and_say_why(post_urlencoded):
    provenance, warnings = post_urlencoded(f"tcpa_consent_text={quote(TEXT)}&tcpa_consent_text=Other+words")

    assert provenance == {"client_ip": "203.0.113.7"}
    assert warnings == ["consent_text: expected one value, not several: text"]


@pytest.mark.parametrize(
    ("body", "expected", "warnings"),
    [
        pytest.param(
            f"tcpa_consent_text={quote(TEXT)}&consent=0&consent=1",
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO},
            [],
            id="box-ticked",
        ),
        pytest.param("consent=0&consent=1", {"tcpa_consent_at": NOW_ISO}, [], id="box-ticked-without-text"),
        pytest.param(
            f"tcpa_consent_text={quote(TEXT)}&consent=0",
            {},
            ["consent: not given; no consent is recorded with the lead"],
            id="box-left-unticked",
        ),
    ],
)
def test_a_consent_box_after_a_hidden_default_of_its_name_is_read_by_its_last_value(
    post_urlencoded, body, expected, warnings
):
    # <input type=hidden name=consent value=0><input type=checkbox name=consent value=1> (Rails' check_box):
    # the hidden default is always sent, the box's value after it only when ticked.
    provenance, shown = post_urlencoded(body)

    assert provenance == {**expected, "client_ip": "203.0.113.7"}
    assert shown == warnings


@pytest.mark.parametrize(
    ("body", "given"),
    [
        pytest.param("consent=true&consent=false", True, id="aspnet-box-before-its-hidden-default-ticked"),
        pytest.param("consent=false", False, id="aspnet-box-before-its-hidden-default-unticked"),
        pytest.param("consent=0&consent=1&consent=0", True, id="desktop-copy-ticked-mobile-copy-not"),
        pytest.param("consent=0&consent=0&consent=1", True, id="mobile-copy-ticked-desktop-copy-not"),
        pytest.param("consent=0&consent=0", False, id="neither-copy-ticked"),
    ],
)
def test_a_consent_box_posted_with_hidden_defaults_is_given_when_any_copy_is_ticked(post_urlencoded, body, given):
    # ASP.NET's Html.CheckBox puts its hidden "false" after the box, so a ticked box posts "true" then "false";
    # a page with a desktop and a mobile copy of a Rails box posts each copy's default.
    provenance, shown = post_urlencoded(f"tcpa_consent_text={quote(TEXT)}&{body}")

    if given:
        assert provenance == {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO, "client_ip": "203.0.113.7"}
        assert shown == []
    else:
        assert provenance == {"client_ip": "203.0.113.7"}
        assert shown == ["consent: not given; no consent is recorded with the lead"]


@pytest.mark.parametrize(
    ("body", "expected", "warnings"),
    [
        pytest.param(
            f"tcpa_consent_text={quote(TEXT)}&consent=on",
            {"tcpa_consent_text": TEXT, "tcpa_consent_at": NOW_ISO},
            [],
            id="box-ticked",
        ),
        pytest.param(
            f"tcpa_consent_text={quote(TEXT)}",
            {},
            ["consent: not given; no consent is recorded with the lead"],
            id="box-unticked-sends-no-field",
        ),
        pytest.param(
            "first_name=Jane", {}, ["consent: not given; no consent is recorded with the lead"], id="no-text-no-box"
        ),
    ],
)
def test_on_a_source_with_a_consent_checkbox_a_post_without_the_box_records_no_consent(
    post_urlencoded, body, expected, warnings
):
    provenance, shown = post_urlencoded(body, source=form_source(consent_checkbox=True))

    assert provenance == {**expected, "client_ip": "203.0.113.7"}
    assert shown == warnings


def test_form_consent_and_provenance_are_kept_ahead_of_static_and_submitted_custom_fields_when_over_the_cap(post):
    static = {f"static_{n}": "v" for n in range(50)}  # as many as careCycle takes
    fields = {"tcpa_consent_text": TEXT, "page_url": "https://landing.example.com/", "xxTrustedFormCertUrl": CERT}

    provenance, warnings = post(
        {**fields, "universal_leadid": LEADID, "utm_source": "google"},
        source=form_source(static_custom_fields=static),
    )

    assert list(provenance) == [
        *(f"static_{n}" for n in range(44)),
        "tcpa_consent_text",
        "tcpa_consent_at",
        "page_url",
        "client_ip",
        "trustedform_cert_url",
        "jornaya_leadid",
    ]
    assert provenance["tcpa_consent_text"] == TEXT and provenance["client_ip"] == "203.0.113.7"
    assert warnings == ["customFields: expected at most 50 items; 7 dropped"]


@pytest.mark.parametrize(
    "fields", [pytest.param({}, id="text-shown-on-submit"), pytest.param({"consent": "on"}, id="box")]
)
def test_a_consent_text_over_the_limit_is_cut_and_the_consent_still_recorded(post, fields):
    long_text = (TEXT + " ") * 60  # a whole disclosure pasted in: over 5,000 characters

    provenance, warnings = post({"tcpa_consent_text": long_text, **fields})

    assert provenance["tcpa_consent_at"] == NOW_ISO
    assert provenance["tcpa_consent_text"] == long_text[:255].strip()
    assert warnings == [
        "consent_text: expected at most 5000 characters; cut",
        "customFields.tcpa_consent_text: expected at most 255 characters; cut",
    ]


def test_a_consent_text_id_over_the_limit_is_cut_and_the_consent_still_recorded(post):
    provenance, warnings = post({"tcpa_consent_id": "disclosure-" + "v" * 300})

    assert provenance["tcpa_consent_at"] == NOW_ISO
    assert provenance["tcpa_consent_text"] == ("disclosure-" + "v" * 300)[:255]
    assert warnings == ["consent_text_id: expected at most 255 characters; cut"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a" * 5000, "a" * 5000, id="at-the-limit"),
        pytest.param("a " * 3000, ("a " * 2500).strip(), id="over-the-limit"),
        pytest.param("\U0001f600" * 2501, "\U0001f600" * 2500, id="emoji-count-two-and-are-never-split"),
        pytest.param("a" + "\U0001f600" * 2500, "a" + "\U0001f600" * 2499, id="emoji-across-the-limit-goes-whole"),
    ],
)
def test_load_provenance_cuts_a_consent_text_to_the_limit_as_carecycle_counts(text, expected):
    loaded, warnings = load_provenance({"consent_text": text})

    assert loaded == {"consent_text": expected}
    assert warnings == ([] if text == expected else ["consent_text: expected at most 5000 characters; cut"])
