"""Web-form intake over HTTP: encodings, CORS and origins, redirects, honeypot, rate limits, windows."""

from __future__ import annotations

import gzip
import io
import json
from urllib.parse import urlencode

import pytest

from app import create_app
from app.logs import LogIdsFilter
from app.sources import SourceKind, SourceRegistry
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.factories import make_source
from tests.intake_support import (
    FORM_URL,
    LANDING,
    OTHER_THANKS,
    THANKS,
    URLENCODED,
    custom_fields,
    form,
    form_source,
    stored_ids,
    stored_record,
)
from tests.metricscheck import scrape
from tests.support import post_chunked

JSON_ACCEPT = {"Accept": "application/json"}
# The reference's example post (web-forms-and-normalization.md C.1).
REFERENCE_BODY = (
    "first_name=Jane&last_name=Example&phone=%28212%29+555-0142&email=jane.example%40example.com&zip=10001"
    "&utm_source=google&utm_medium=cpc&utm_campaign=spring_promo&gclid=ExAmPlEgClId0123456789&company_website="
)


@pytest.fixture
def sources():
    return [
        form_source(),
        make_source(slug="partner", kind=SourceKind.API, secret=SOURCE_KEY),
        make_source(slug="gads", kind=SourceKind.GOOGLE),
    ]


@pytest.fixture
def app(settings, redis, clock, sources):
    return create_app(settings, redis=redis, clock=clock, sources=SourceRegistry(sources))


def test_form_post_is_stored_and_answered_303_to_the_thank_you_page(client, redis, settings, store):
    response = client.post(FORM_URL, data=REFERENCE_BODY, content_type=URLENCODED, headers={"Origin": LANDING})

    assert response.status_code == 303
    assert response.headers["Location"] == THANKS
    [lead_id] = stored_ids(redis)
    assert store.leads.get(lead_id).status == "queued"
    record = stored_record(redis, settings, lead_id)
    assert {k: record[k] for k in ("phoneNumber", "firstName", "lastName", "email", "postalCode", "sourceId")} == {
        "phoneNumber": "+12125550142",
        "firstName": "Jane",
        "lastName": "Example",
        "email": "jane.example@example.com",
        "postalCode": "10001",
        "sourceId": "src_acme",
    }
    assert custom_fields(record) == {
        "client_ip": "127.0.0.1",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring_promo",
        "gclid": "ExAmPlEgClId0123456789",
    }


def multipart_body(fields):
    return {**fields, "resume": (io.BytesIO(b"%PDF-1.4 not a lead"), "cv.pdf")}


@pytest.mark.parametrize(
    ("build", "content_type"),
    [
        pytest.param(lambda f: urlencode(f), URLENCODED, id="urlencoded"),
        pytest.param(lambda f: urlencode(f), f"{URLENCODED};charset=UTF-8", id="urlencoded-charset"),
        pytest.param(multipart_body, None, id="multipart-with-a-file-part"),
        pytest.param(lambda f: json.dumps(f), "application/json", id="json"),
        pytest.param(lambda f: json.dumps(f), "application/json; charset=utf-8", id="json-charset"),
    ],
)
def test_form_accepts_each_encoding_a_landing_page_uses(client, redis, settings, build, content_type):
    fields = form(phone="(212) 555-0142", utm_campaign="spring")

    response = client.post(FORM_URL, data=build(fields), content_type=content_type, headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued"
    record = stored_record(redis, settings, response.json["id"])
    assert record["phoneNumber"] == "+12125550142"
    assert custom_fields(record) == {"client_ip": "127.0.0.1", "utm_campaign": "spring"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("phone=2125550142\r\nzip=10001", "text/plain", id="text-plain-form"),
        pytest.param("<lead/>", "application/xml", id="xml"),
        pytest.param("phone=2125550142", None, id="no-content-type"),
        pytest.param("phone=2125550142", "application/octet-stream", id="octet-stream"),
    ],
)
def test_form_refuses_other_media_types_with_415(client, redis, body, content_type):
    response = client.post(FORM_URL, data=body.encode(), content_type=content_type)

    assert response.status_code == 415
    assert response.json["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param("[1, 2]", "BAD_REQUEST", id="json-list"),
        pytest.param("{not json", "BAD_REQUEST", id="broken-json"),
        pytest.param('{"a": ' * 40 + "1" + "}" * 40, "BAD_REQUEST", id="nested-too-deep"),
        pytest.param("[" * 60_000, "BAD_REQUEST", id="nested-past-the-parser"),
        pytest.param('{"phone": "(212) 555-0142", "phone": "(212) 555-0143"}', "BAD_REQUEST", id="a-name-twice"),
    ],
)
def test_form_refuses_json_that_is_no_flat_object(client, redis, body, code):
    response = client.post(FORM_URL, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json["error"]["code"] == code
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    "body",
    [pytest.param(urlencode(form(notes="x" * 70_000)), id="urlencoded"), pytest.param(b"{" + b" " * 70_000, id="json")],
)
def test_form_refuses_a_body_over_64_kib_with_413(client, redis, body):
    content_type = URLENCODED if isinstance(body, str) else "application/json"

    response = client.post(FORM_URL, data=body, content_type=content_type)

    assert response.status_code == 413
    assert response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "at most 65536 bytes" in response.json["error"]["message"]
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(urlencode(form(notes="y" * 70_000)).encode(), URLENCODED, id="urlencoded"),
        pytest.param(json.dumps(form(notes="y" * 70_000)).encode(), "application/json", id="json"),
        pytest.param(
            b'--b\r\nContent-Disposition: form-data; name="notes"\r\n\r\n' + b"y" * 70_000 + b"\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
            id="multipart",
        ),
    ],
)
def test_form_refuses_a_chunked_body_over_64_kib_with_413_rather_than_cutting_it(client, redis, body, content_type):
    # Sent without a Content-Length, the body was cut at the limit and its first 64 KiB taken as the lead.
    response = post_chunked(client, FORM_URL, body, headers=JSON_ACCEPT, content_type=content_type)

    assert response.status_code == 413, response.json
    assert "at most 65536 bytes" in response.json["error"]["message"]
    assert stored_ids(redis) == []


def test_form_takes_a_chunked_body_of_exactly_64_kib_whole(client, redis, settings):
    head = urlencode(form(zip=None, utm_campaign="spring")) + "&notes="
    body = (head + "y" * (65536 - len(head) - len("&zip=60601")) + "&zip=60601").encode()

    response = post_chunked(client, FORM_URL, body, headers=JSON_ACCEPT, content_type=URLENCODED)

    assert len(body) == 65536 and response.status_code == 202, response.json
    assert stored_record(redis, settings, response.json["id"])["postalCode"] == "60601"


def test_form_refuses_a_multipart_body_of_more_parts_than_it_reads_naming_the_limit(client, redis):
    fields = {**form(), **{f"q{i}": "x" for i in range(1001)}}
    body = "".join(f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items())

    response = client.post(FORM_URL, data=body + "--b--\r\n", content_type="multipart/form-data; boundary=b")

    assert len(body) < 65536
    assert response.status_code == 413
    assert response.json["error"]["message"] == "the body may be at most 65536 bytes in at most 1000 form fields"


@pytest.mark.parametrize(
    ("body", "content_type", "fields"),
    [
        pytest.param(
            b'--b\r\nContent-Disposition: form-data; name="phone"\r\n\r\n2125550142\r\n--b\r\nContent-Disp',
            "multipart/form-data; boundary=b",
            {"body": ["expected multipart/form-data parts, each opened by --b, the last closed by --b--"]},
            id="cut-off-mid-part",
        ),
        pytest.param(
            b"phone=2125550142&zip=10001",
            "multipart/form-data; boundary=b",
            {"body": ["expected multipart/form-data parts, each opened by --b, the last closed by --b--"]},
            id="not-multipart-at-all",
        ),
        pytest.param(
            b"phone=2125550142&zip=10001",
            "multipart/form-data",
            {"Content-Type": ["expected multipart/form-data with its boundary, e.g. multipart/form-data; boundary=x"]},
            id="no-boundary",
        ),
    ],
)
def test_a_multipart_body_that_cannot_be_read_is_refused_with_400_saying_why_not_as_a_missing_phone(
    client, redis, body, content_type, fields
):
    response = client.post(FORM_URL, data=body, content_type=content_type)

    assert response.status_code == 400
    assert response.json["error"]["code"] == "BAD_REQUEST"
    assert response.json["error"]["fields"] == fields
    assert stored_ids(redis) == []


@pytest.mark.parametrize("content_type", [URLENCODED, "multipart/form-data", "application/json"])
def test_a_name_posted_twice_keeps_its_filled_copy(client, redis, settings, content_type):
    # A page with a desktop and a mobile copy of an input posts both; a script posting JSON may list both too.
    data = {"phone": ["", "(212) 555-0142"], "zip": ["10001", ""], "first_name": "Jane"}
    if content_type == URLENCODED:
        data = "phone=&phone=%28212%29+555-0142&zip=10001&zip=&first_name=Jane"
    elif content_type == "application/json":
        data = json.dumps(data)

    response = client.post(FORM_URL, data=data, content_type=content_type, headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    record = stored_record(redis, settings, response.json["id"])
    assert (record["phoneNumber"], record["postalCode"]) == ("+12125550142", "10001")


@pytest.mark.parametrize("content_type", [URLENCODED, "multipart/form-data"])
def test_a_name_posted_twice_with_one_value_is_that_value(client, redis, settings, content_type):
    data = {"phone": ["(212) 555-0142", "(212) 555-0142"], "zip": ["10001", "10001"]}
    if content_type == URLENCODED:
        data = "phone=%28212%29+555-0142&phone=%28212%29+555-0142&zip=10001&zip=10001"

    response = client.post(FORM_URL, data=data, content_type=content_type, headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    assert response.json["warnings"] == []
    record = stored_record(redis, settings, response.json["id"])
    assert (record["phoneNumber"], record["postalCode"]) == ("+12125550142", "10001")


TWO_PHONES = {"phone": ["(212) 555-0142", "(212) 555-0143"], "zip": "10001"}


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        (URLENCODED, "phone=%28212%29+555-0142&phone=%28212%29+555-0143&zip=10001"),
        ("multipart/form-data", TWO_PHONES),
        ("application/json", json.dumps(TWO_PHONES)),
    ],
    ids=[URLENCODED, "multipart/form-data", "application/json"],
)
def test_a_phone_posted_twice_with_different_values_is_refused_for_being_two_not_for_being_no_phone(
    client, redis, content_type, data
):
    response = client.post(FORM_URL, data=data, content_type=content_type, headers=JSON_ACCEPT)

    assert response.status_code == 422
    [message] = response.json["error"]["fields"]["phoneNumber"]
    assert message.startswith("expected one value, not several: ")
    assert "555-0143" not in response.get_data(as_text=True)
    assert stored_ids(redis) == []


def test_an_optional_field_posted_twice_with_different_values_is_dropped_with_a_warning_saying_so(
    client, redis, settings
):
    data = "phone=2125550142&zip=10001&zip=60601"

    response = client.post(FORM_URL, data=data, content_type=URLENCODED, headers=JSON_ACCEPT)

    assert response.status_code == 202
    assert response.json["warnings"] == [
        "postalCode: expected one value, not several: a US ZIP code: 5 digits or ZIP+4"
    ]
    assert "postalCode" not in stored_record(redis, settings, response.json["id"])


@pytest.mark.parametrize(
    ("body", "ticked"),
    [
        pytest.param("doNotSMS=0&doNotSMS=1", True, id="rails-box-after-its-hidden-default-ticked"),
        pytest.param("doNotSMS=0", False, id="rails-box-after-its-hidden-default-unticked"),
        pytest.param("doNotSMS=true&doNotSMS=false", True, id="aspnet-box-before-its-hidden-default-ticked"),
        pytest.param("doNotSMS=0&doNotSMS=0&doNotSMS=1", True, id="mobile-copy-ticked-desktop-copy-not"),
        pytest.param("doNotSMS=0&doNotSMS=false", False, id="neither-copy-ticked"),
    ],
)
def test_a_yes_no_box_posted_with_hidden_defaults_is_ticked_when_any_copy_is(client, redis, settings, body, ticked):
    # A page built with Rails' check_box or ASP.NET's Html.CheckBox posts a hidden default of the box's name
    # beside it (before or after), so a ticked "do not text me" box arrives as two values: it is ticked.
    response = client.post(
        FORM_URL, data=f"phone=2125550142&zip=10001&{body}", content_type=URLENCODED, headers=JSON_ACCEPT
    )

    assert response.status_code == 202, response.json
    assert response.json["warnings"] == []
    assert stored_record(redis, settings, response.json["id"])["doNotSMS"] is ticked


NOT_UTF8 = "form body: not UTF-8, read as windows-1252"


def multipart(*parts: tuple[str, bytes]) -> bytes:
    body = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value + b"\r\n"
        for name, value in parts
    )
    return body + b"--b--\r\n"


@pytest.mark.parametrize(
    ("body", "content_type", "names", "warnings"),
    [
        pytest.param(b"first_name=Jos%C3%A9&last_name=M%C3%BCller", URLENCODED, ("José", "Müller"), [], id="utf-8"),
        pytest.param(
            b"first_name=Jos%E9&last_name=M%FCller", URLENCODED, ("José", "Müller"), [NOT_UTF8], id="windows-1252-page"
        ),
        pytest.param(
            b"first_name=Jos\xe9&last_name=O%92Brien", URLENCODED, ("José", "O\u2019Brien"), [NOT_UTF8], id="raw-bytes"
        ),
        pytest.param(
            b"first_name=Jos%E9&last_name=M%FCller",
            URLENCODED + "; charset=ISO-8859-1",
            ("José", "Müller"),
            [],
            id="declared-latin-1",
        ),
        pytest.param(
            b"first_name=Jos%E9&last_name=O%92Brien",
            URLENCODED + "; charset=windows-1252",
            ("José", "O\u2019Brien"),
            [],
            id="declared-windows-1252",
        ),
        pytest.param(
            b"first_name=Jos%E9&last_name=Example",
            URLENCODED + "; charset=Shift_JIS",
            ("Jos\ufffd", "Example"),
            [],
            id="declared-shift-jis-kept-to",
        ),
        pytest.param(
            b"_charset_=windows-1252&first_name=Jos%E9&last_name=O%92Brien",
            URLENCODED,
            ("José", "O\u2019Brien"),
            [],
            id="charset-field-windows-1252",
        ),
        pytest.param(
            b"_charset_=Shift_JIS&first_name=%8ER%93c&last_name=%91%BE%98Y",
            URLENCODED,
            ("山田", "太郎"),
            [],
            id="charset-field-shift-jis",
        ),
        pytest.param(
            b"_charset_=UTF-8&first_name=Jos%C3%A9&last_name=M%C3%BCller",
            URLENCODED,
            ("José", "Müller"),
            [],
            id="charset-field-utf-8",
        ),
        pytest.param(
            multipart(("first_name", b"Jos\xe9"), ("last_name", b"M\xfcller")),
            "multipart/form-data; boundary=b",
            ("José", "Müller"),
            [NOT_UTF8],
            id="multipart-windows-1252-page",
        ),
        pytest.param(
            multipart(("first_name", "José".encode()), ("last_name", "Müller".encode())),
            "multipart/form-data; boundary=b",
            ("José", "Müller"),
            [],
            id="multipart-utf-8",
        ),
        pytest.param(
            multipart(
                ("_charset_", b"Shift_JIS"), ("first_name", "山田".encode("shift_jis")), ("last_name", b"Example")
            ),
            "multipart/form-data; boundary=b",
            ("山田", "Example"),
            [],
            id="multipart-charset-field",
        ),
    ],
)
def test_a_form_post_is_read_in_the_encoding_its_page_posted_it_in(
    client, redis, settings, body, content_type, names, warnings
):
    # Browsers post a form in its page's encoding and never name it in the Content-Type; a `_charset_` input
    # is filled with it. A body that is not UTF-8 and says nothing is read as windows-1252 (WHATWG's legacy
    # default), not with its letters turned into U+FFFD.
    if content_type == URLENCODED or content_type.startswith(URLENCODED + ";"):
        body += b"&phone=2125550144&zip=10001"
    else:
        body = multipart(("phone", b"2125550144"), ("zip", b"10001")).removesuffix(b"--b--\r\n") + body

    response = client.post(FORM_URL, data=body, content_type=content_type, headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    record = stored_record(redis, settings, response.json["id"])
    assert (record["firstName"], record["lastName"]) == names
    assert response.json["warnings"] == warnings
    assert "_charset_" not in custom_fields(record)


@pytest.mark.parametrize(
    ("extra", "warnings"),
    [
        pytest.param(b"", [NOT_UTF8], id="windows-1252-page"),
        pytest.param(
            b'--b\r\nContent-Disposition: form-data; name="_charset_"\r\n\r\nISO-8859-1\r\n', [], id="charset-field"
        ),
    ],
)
def test_a_multipart_post_from_a_legacy_page_is_read_with_its_non_ascii_input_names(
    client, redis, settings, extra, warnings
):
    # The page's encoding spells its input names too: werkzeug reads part headers as UTF-8 only, and refused the
    # post as a multipart body that cannot be read.
    body = extra + (
        b'--b\r\nContent-Disposition: form-data; name="phone"\r\n\r\n2125550144\r\n'
        b'--b\r\nContent-Disposition: form-data; name="zip"\r\n\r\n10001\r\n'
        b'--b\r\nContent-Disposition: form-data; name="pr\xe9nom"\r\n\r\nJ\xe9r\xf4me\r\n'
        b"--b--\r\n"
    )

    response = client.post(FORM_URL, data=body, content_type="multipart/form-data; boundary=b", headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    assert response.json["warnings"] == warnings
    assert custom_fields(stored_record(redis, settings, response.json["id"]))["prénom"] == "Jérôme"


@pytest.mark.parametrize(
    ("charset", "encoded", "name"),
    [
        pytest.param("windows-874", b"%A1", "\u0e01", id="windows-874"),
        pytest.param("x-mac-cyrillic", b"%80", "\u0410", id="x-mac-cyrillic"),
        pytest.param("macintosh", b"%8E", "\u00e9", id="macintosh"),
        pytest.param("ISO-8859-8-I", b"%E0", "\u05d0", id="iso-8859-8-i"),
    ],
)
def test_a_form_post_whose_charset_field_names_a_web_charset_python_spells_otherwise_is_read_in_it(
    client, redis, settings, charset, encoded, name
):
    # A browser writes the encoding's WHATWG name into `_charset_`; a few of those are unknown to Python.
    body = b"_charset_=" + charset.encode() + b"&first_name=" + encoded + b"&phone=2125550144&zip=10001"

    response = client.post(FORM_URL, data=body, content_type=URLENCODED, headers=JSON_ACCEPT)

    assert response.status_code == 202, response.json
    assert stored_record(redis, settings, response.json["id"])["firstName"] == name


@pytest.mark.parametrize("charset", ["klingon", "utf-7", "UTF-16LE", "x-user-defined", "utf-8%00"])
def test_a_form_post_whose_charset_field_names_no_web_text_charset_is_refused_naming_the_field(client, redis, charset):
    body = f"_charset_={charset}&phone=2125550144&zip=10001"

    response = client.post(FORM_URL, data=body, content_type=URLENCODED)

    assert response.status_code == 415, response.json
    assert response.json["error"]["fields"] == {"_charset_": ["expected a text charset such as utf-8 or iso-8859-1"]}
    assert stored_ids(redis) == []


def test_a_refused_charset_is_not_echoed_in_the_answer(client):
    # `_charset_` is a posted value like any other: the answer says where it was and what is expected, not what it was.
    posted = "klingon-b7e0c2"

    response = client.post(FORM_URL, data=f"_charset_={posted}&phone=2125550144&zip=10001", content_type=URLENCODED)
    page = client.post(
        FORM_URL,
        data="phone=2125550144&zip=10001",
        content_type=f"{URLENCODED}; charset={posted}",
        headers={"Sec-Fetch-Mode": "navigate"},
    )

    assert (response.status_code, page.status_code) == (415, 415)
    assert response.json["error"]["message"] == "unsupported charset in _charset_"
    assert posted not in response.get_data(as_text=True)
    assert posted not in page.get_data(as_text=True)


@pytest.mark.parametrize("charset", ["klingon", "idna", "unicode_escape", "utf-7", "rot13", "base64"])
def test_a_urlencoded_post_in_a_charset_that_is_no_web_text_charset_is_refused_naming_the_content_type(
    client, redis, charset
):
    body = "phone=2125550144&zip=10001"

    response = client.post(FORM_URL, data=body, content_type=f"{URLENCODED}; charset={charset}")

    assert response.status_code == 415 and list(response.json["error"]["fields"]) == ["Content-Type"]
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/forms/nope", id="unknown-slug"),
        pytest.param("/v1/forms/partner", id="an-api-source"),
        pytest.param("/v1/forms/gads", id="a-google-source"),
    ],
)
def test_form_answers_404_for_a_slug_that_is_no_form_source(client, redis, path):
    post = client.post(path, data=urlencode(form()), content_type=URLENCODED, headers={"Origin": LANDING})
    preflight = client.options(path, headers={"Origin": LANDING, "Access-Control-Request-Method": "POST"})

    assert post.status_code == preflight.status_code == 404
    assert post.json["error"]["code"] == "NOT_FOUND"
    assert post.json["error"]["fields"] == preflight.json["error"]["fields"] == {"slug": [FORM_SLUG_EXPECTED]}
    assert "Access-Control-Allow-Origin" not in post.headers
    assert stored_ids(redis) == []


def test_a_browser_posting_to_a_slug_that_is_no_form_source_is_shown_a_page_without_the_slug(client):
    # The slug is the site's to fix, not the visitor's: the page says the form is not available, naming no field.
    response = client.post("/v1/forms/nope", data=urlencode(form()), content_type=URLENCODED, headers=NAVIGATION)

    page = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "This form is not available" in page
    assert "Slug" not in page and FORM_SLUG_EXPECTED not in page


def test_preflight_from_an_allowed_origin_is_granted_for_post_with_content_type(client):
    response = client.options(
        FORM_URL,
        headers={
            "Origin": LANDING,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == LANDING
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"
    assert response.data == b""


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("https://evil.example.com", id="other-host"),
        pytest.param("http://landing.example.com", id="other-scheme"),
        pytest.param("https://landing.example.com:8443", id="other-port"),
        pytest.param("https://landing.example.com.evil.com", id="suffix-trick"),
        pytest.param("null", id="null-origin"),
    ],
)
def test_preflight_and_post_from_an_origin_not_allowed_are_refused_with_403(client, redis, origin):
    preflight = client.options(FORM_URL, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    post = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers={"Origin": origin})

    assert preflight.status_code == post.status_code == 403
    assert post.json["error"]["code"] == "FORBIDDEN"
    assert list(post.json["error"]["fields"]) == list(preflight.json["error"]["fields"]) == ["Origin"]
    assert LANDING not in post.get_data(as_text=True)  # the allowed origins are the operator's to know
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in post.headers
    assert stored_ids(redis) == []


def test_a_post_from_a_page_hiding_its_origin_is_refused_saying_which_setting_takes_it(client, redis):
    # Origin: null is what a browser sends for a native post from a page whose Referrer-Policy is no-referrer.
    post = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers={"Origin": "null"})

    assert post.status_code == 403
    assert "Origin: null" in post.json["error"]["message"]
    assert "accept_null_origin" in post.json["error"]["message"]
    assert stored_ids(redis) == []


def test_a_source_accepting_hidden_origins_takes_their_native_posts_but_grants_no_preflight(settings, redis, clock):
    source = form_source(accept_null_origin=True)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()
    headers = {"Origin": "null", **JSON_ACCEPT}

    post = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=headers)
    preflight = client.options(FORM_URL, headers={"Origin": "null", "Access-Control-Request-Method": "POST"})

    assert post.status_code == 202, post.json
    assert stored_ids(redis) == [post.json["id"]]
    assert "Access-Control-Allow-Origin" not in post.headers
    assert preflight.status_code == 403


def test_options_without_origin_is_no_preflight_and_lists_the_methods(client):
    response = client.options(FORM_URL)

    assert response.status_code == 204
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("headers", "allow_origin"),
    [
        pytest.param({"Origin": LANDING}, LANDING, id="allowed-origin"),
        pytest.param({"Origin": LANDING + "/"}, LANDING + "/", id="allowed-origin-trailing-slash"),
        pytest.param({}, None, id="server-side-post-without-origin"),
    ],
)
def test_post_from_an_allowed_origin_or_without_origin_is_accepted(client, redis, headers, allow_origin):
    response = client.post(FORM_URL, json=form(), headers=headers)

    assert response.status_code == 202
    assert response.headers.get("Access-Control-Allow-Origin") == allow_origin
    assert response.headers["Vary"] == "Origin"
    assert len(stored_ids(redis)) == 1


def test_errors_to_an_allowed_origin_carry_cors_headers_so_the_script_can_read_them(client):
    response = client.post(FORM_URL, json=form(phone="12"), headers={"Origin": LANDING})

    assert response.status_code == 422
    assert response.headers["Access-Control-Allow-Origin"] == LANDING
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    ("fields", "headers", "location"),
    [
        pytest.param({}, {}, THANKS, id="thank-you-page"),
        pytest.param({"_redirect": OTHER_THANKS}, {}, OTHER_THANKS, id="allow-listed-redirect"),
        pytest.param({"_redirect": "https://evil.example.com/"}, {}, THANKS, id="redirect-not-listed"),
        pytest.param({"_redirect": THANKS + "?x=1"}, {}, THANKS, id="redirect-not-an-exact-match"),
        pytest.param({"_redirect": "//evil.example.com"}, {}, THANKS, id="protocol-relative-redirect"),
        pytest.param({"_redirect": OTHER_THANKS}, {"Sec-Fetch-Mode": "cors"}, None, id="fetch-gets-json"),
        pytest.param({}, {"Accept": "application/json"}, None, id="client-prefers-json"),
        pytest.param({}, {"Sec-Fetch-Mode": "navigate", "Accept": "text/html,*/*;q=0.8"}, THANKS, id="navigation"),
    ],
)
def test_form_redirects_only_to_allow_listed_urls(client, redis, fields, headers, location):
    response = client.post(FORM_URL, data=urlencode(form(**fields)), content_type=URLENCODED, headers=headers)

    if location is None:
        assert response.status_code == 202
        assert set(response.json) == {"id", "status", "statusUrl", "warnings"}
        assert response.headers.get("Location") is None
    else:
        assert response.status_code == 303
        assert response.headers["Location"] == location
    assert len(stored_ids(redis)) == 1


def test_a_redirect_posted_twice_with_one_value_is_followed(client):
    # A page with a desktop and a mobile copy of its form posts each copy's hidden _redirect.
    body = urlencode(form(_redirect=[OTHER_THANKS, OTHER_THANKS]), doseq=True)

    response = client.post(FORM_URL, data=body, content_type=URLENCODED)

    assert response.status_code == 303
    assert response.headers["Location"] == OTHER_THANKS


def test_form_sends_the_person_to_its_thank_you_page_past_a_redirect_not_on_the_list_keeping_the_warning(client, store):
    # The lead was taken: the person is thanked, not shown JSON; the page's author finds the warning on the lead.
    response = client.post(
        FORM_URL, data=urlencode(form(_redirect="https://evil.example.com/")), content_type=URLENCODED
    )

    assert response.status_code == 303 and response.headers["Location"] == THANKS
    [lead_id] = stored_ids(store.redis)
    assert store.leads.get(lead_id).warnings == (
        "_redirect: expected a URL on the form's redirect allow-list; ignored",
    )


def test_form_without_a_thank_you_page_ignores_a_redirect_not_on_the_list_and_says_so(settings, redis, clock):
    source = form_source(thank_you_url=None)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    response = client.post(
        FORM_URL, data=urlencode(form(_redirect="https://evil.example.com/")), content_type=URLENCODED
    )

    assert response.status_code == 202
    assert response.json["warnings"] == ["_redirect: expected a URL on the form's redirect allow-list; ignored"]


def test_json_post_gets_202_json_even_when_the_source_has_a_thank_you_page(client):
    response = client.post(FORM_URL, json=form(_redirect=THANKS))

    assert response.status_code == 202
    assert response.json["statusUrl"].endswith(f"/v1/leads/{response.json['id']}")


def test_form_without_a_thank_you_page_answers_json(settings, redis, clock):
    source = form_source(thank_you_url=None, redirect_allowlist=())
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()

    response = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED)

    assert response.status_code == 202


def test_invalid_form_post_is_422_json_naming_the_fields_even_with_a_thank_you_page(client, redis):
    response = client.post(FORM_URL, data=urlencode(form(phone="555-12")), content_type=URLENCODED)

    assert response.status_code == 422
    assert response.mimetype == "application/json"
    assert list(response.json["error"]["fields"]) == ["phoneNumber"]
    assert stored_ids(redis) == []


FORM_SLUG_EXPECTED = "expected the slug of a form source the relay is configured with"
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Origin": LANDING}


def test_a_browser_sent_back_from_an_invalid_post_is_shown_a_page_saying_what_to_fix(client, redis):
    # A native form post is a navigation: what the relay answers is the page the visitor sees.
    response = client.post(FORM_URL, data=urlencode(form(phone="555-12")), content_type=URLENCODED, headers=NAVIGATION)

    page = response.get_data(as_text=True)
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert "Phone number" in page and "10 digits" in page and "Back" in page
    assert "555-12" not in page and '{"error"' not in page
    assert response.headers["X-Request-ID"] in page  # what the visitor can quote to the page's owner
    assert stored_ids(redis) == []


@pytest.mark.parametrize(
    ("origin", "status"),
    [pytest.param("https://evil.example.com", 403, id="origin-not-allowed"), pytest.param("null", 403, id="hidden")],
)
def test_a_browser_refused_for_its_page_is_shown_a_page_not_json(client, origin, status):
    headers = {**NAVIGATION, "Origin": origin}

    response = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=headers)

    assert response.status_code == status and response.mimetype == "text/html"
    assert "<title>" in response.get_data(as_text=True)


def test_a_browser_over_the_rate_limit_is_shown_a_page_saying_when_to_try_again(settings, redis, clock):
    source = form_source(rate_limit_per_ip_per_min=1)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()
    client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=NAVIGATION)

    response = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=NAVIGATION)

    assert response.status_code == 429 and response.mimetype == "text/html"
    assert f"{response.headers['Retry-After']} seconds" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-accept"),
        pytest.param({"Accept": "*/*"}, id="any"),
        pytest.param({"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, id="fetch"),
    ],
)
def test_an_invalid_post_not_from_a_navigating_browser_is_answered_json(client, headers):
    response = client.post(FORM_URL, data=urlencode(form(phone="555-12")), content_type=URLENCODED, headers=headers)

    assert response.status_code == 422 and list(response.json["error"]["fields"]) == ["phoneNumber"]


def test_a_compressed_form_post_is_refused_415_naming_content_encoding_not_read_as_a_form_without_a_phone(client):
    body = gzip.compress(urlencode(form()).encode())

    response = client.post(FORM_URL, data=body, content_type=URLENCODED, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 415 and list(response.json["error"]["fields"]) == ["Content-Encoding"]


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_a_form_post_in_a_content_coding_is_refused_without_the_coding_it_named(client, accept):
    headers = {"Content-Encoding": "x-sent-coding-1234", "Accept": accept}

    response = client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=headers)

    assert response.status_code == 415
    assert "Content-Encoding" in response.get_data(as_text=True)
    assert "sent-coding" not in response.get_data(as_text=True)


def test_a_urlencoded_post_opened_by_a_byte_order_mark_is_read_from_its_first_field(client, redis, settings):
    # Some server-side senders (.NET's UTF8 encoding, PowerShell) write a BOM before the body.
    body = "\ufeff".encode() + urlencode(form(phone="(212) 555-0142")).encode()

    response = client.post(FORM_URL, data=body, content_type=URLENCODED, headers=JSON_ACCEPT)

    assert response.status_code == 202
    assert stored_record(redis, settings, response.json["id"])["phoneNumber"] == "+12125550142"


def test_a_multipart_part_without_a_name_is_ignored_not_a_crash(client):
    body = (
        b"--b\r\nContent-Disposition: form-data\r\n\r\norphan\r\n"
        b'--b\r\nContent-Disposition: form-data; name="phone"\r\n\r\n2125550142\r\n'
        b'--b\r\nContent-Disposition: form-data; name="zip"\r\n\r\n10001\r\n--b--\r\n'
    )

    response = client.post(FORM_URL, data=body, content_type="multipart/form-data; boundary=b")

    assert response.status_code in (202, 303)


@pytest.mark.parametrize("name", ["externalId", "external_id"])
def test_a_form_post_does_not_name_its_own_external_id_unless_the_source_accepts_one(settings, redis, clock, name):
    def post_to(source):
        app = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source]))
        response = app.test_client().post(FORM_URL, data=form(**{name: "crm-42"}), headers=JSON_ACCEPT)
        assert response.status_code == 202, response.json
        return response.json, stored_record(redis, settings, response.json["id"])

    public, public_record = post_to(form_source())
    trusted, trusted_record = post_to(form_source(accept_external_id=True, double_submit_seconds=0))

    assert public_record["externalId"] == public["id"]
    assert "externalId: not taken from a form post; the relay's lead id is sent instead" in public["warnings"]
    assert trusted_record["externalId"] == "crm-42" and trusted["warnings"] == []


def test_a_form_posts_warnings_are_kept_with_its_lead_not_only_answered(client):
    # A native form post is answered with a redirect: the status API is where the warnings can be read.
    body = b"first_name=Jos%E9&phone=2125550144&zip=10001&tcpa_consent_text=I+agree&consent=no"

    answer = client.post(FORM_URL, data=body, content_type=URLENCODED, headers=JSON_ACCEPT)
    status = client.get(f"/v1/leads/{answer.json['id']}", headers={"Authorization": f"Bearer {OPS_TOKEN}"})

    expected = [NOT_UTF8, "consent: not given; no consent is recorded with the lead"]
    assert answer.json["warnings"] == expected
    assert status.json["warnings"] == expected


def test_the_request_line_of_a_form_post_refused_over_the_rate_limit_names_its_source(settings, redis, clock, caplog):
    source = form_source(rate_limit_per_ip_per_min=1)
    client = create_app(settings, redis=redis, clock=clock, sources=SourceRegistry([source])).test_client()
    caplog.handler.addFilter(LogIdsFilter())  # as the process's handler has it

    with caplog.at_level("INFO", logger="app.requests"):
        for _ in range(2):
            client.post(FORM_URL, data=urlencode(form()), content_type=URLENCODED, headers=NAVIGATION)

    lines = [r for r in caplog.records if r.name == "app.requests"]
    assert [(r.status, getattr(r, "source", None)) for r in lines] == [(303, source.slug), (429, source.slug)]


def form_intake_counts(client) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: n
        for (name, labels), n in scrape(client).items()
        if name == "leadrelay_intake_leads_total" and dict(labels)["source"] == "acme-dental"
    }


def test_a_post_refused_before_any_field_is_read_counts_as_one_invalid_submission_of_its_form(client, redis):
    # As an API request's or a Google delivery's refused so: a landing page whose every post is refused shows on
    # /metrics.
    before = form_intake_counts(client)

    refusals = [
        client.post(FORM_URL, data=b"{not json", content_type="application/json", headers=JSON_ACCEPT),
        client.post(FORM_URL, data=urlencode(form(notes="x" * 70_000)), content_type=URLENCODED, headers=JSON_ACCEPT),
        client.post(FORM_URL, data=b"<lead/>", content_type="application/xml", headers=JSON_ACCEPT),
    ]

    assert [r.status_code for r in refusals] == [400, 413, 415]
    counted = {outcome: n - before.get(outcome, 0) for outcome, n in form_intake_counts(client).items()}
    assert {outcome: n for outcome, n in counted.items() if n} == {"invalid": 3}
    assert stored_ids(redis) == []
