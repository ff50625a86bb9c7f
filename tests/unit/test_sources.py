"""The sources file: every key checked, every problem listed with where it is, secrets only by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.schemas.sources import ConsentKeysSchema, SourceSchema
from app.sources import LeadSource, SourceKind, SourceRegistry, SourcesError, UnknownSourceError, load_sources

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "sources.example.toml"
EXAMPLE_ENV = {"ACME_PARTNER_API_KEY": "acme-secret-0123456789", "GOOGLE_ACA_FORM_KEY": "google-form-key-5f2c9e0a7b1d"}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return str(path)


def test_the_shipped_example_documents_every_key_a_source_may_have():
    text = EXAMPLE.read_text()
    keys = set(SourceSchema().fields) | set(ConsentKeysSchema().fields)

    undocumented = [key for key in sorted(keys) if not re.search(rf"(^|[\s#\[.]){key}\b", text, re.MULTILINE)]
    assert not undocumented, f"add to deploy/sources.example.toml: {undocumented}"


def test_the_shipped_example_loads_with_its_secrets_set():
    registry = load_sources(str(EXAMPLE), EXAMPLE_ENV, {})

    assert {s.slug for s in registry} == {"acme-partner", "medicare-landing", "facebook-aep", "google-aca"}
    assert registry.api_keys == {"acme-secret-0123456789": "acme-partner"}
    form = registry.by_slug("medicare-landing", SourceKind.FORM)
    assert form.is_origin_allowed("https://medicare.example.com")
    assert not form.is_origin_allowed("https://evil.example.com")
    assert form.duplicate_window_seconds == 30 * 86400
    assert registry.person_memory_seconds == 30 * 86400
    assert registry.by_meta_ids("102938475610293", None).slug == "facebook-aep"
    assert registry.by_slug("google-aca").secret == "google-form-key-5f2c9e0a7b1d"


def test_api_keys_from_the_environment_add_plain_api_sources():
    registry = load_sources(None, {}, {"k1": "partner"})

    assert registry.by_slug("partner").kind is SourceKind.API
    assert registry.api_keys == {"k1": "partner"}


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param('[sources.x]\nkind = "carrier-pigeon"', "sources.x.kind:", id="unknown-kind"),
        pytest.param('[sources.x]\nkind = "api"', "sources.x.secret_env:", id="api-without-secret"),
        pytest.param('[sources.x]\nkind = "api"\nsecret_env = "UNSET_VAR"', "UNSET_VAR is not set", id="secret-unset"),
        pytest.param(
            '[sources.x]\nkind = "api"\nsecret = "inline!"\nsecret_env = "K"', "sources.x.secret:", id="inline"
        ),
        pytest.param('[sources.x]\nkind = "form"', "sources.x.allowed_origins:", id="form-without-origins"),
        pytest.param(
            '[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com/path"]', "origin", id="bad-origin"
        ),
        pytest.param(
            '[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\n'
            'thank_you_url = "https://a.example.com/t"',
            "redirect_allowlist",
            id="thank-you-not-allow-listed",
        ),
        pytest.param('[sources.x]\nkind = "facebook"', "sources.x.page_ids:", id="facebook-without-ids"),
        pytest.param(
            '[sources.x]\nkind = "api"\nsecret_env = "K"\naccept_external_id = true',
            "sources.x.accept_external_id: only form sources take accept_external_id",
            id="accept-external-id-on-an-api-source",
        ),
        pytest.param(
            '[sources.x]\nkind = "api"\nsecret_env = "K"\nconsent_checkbox = true',
            "sources.x.consent_checkbox: only form sources take consent_checkbox",
            id="consent-checkbox-on-an-api-source",
        ),
        pytest.param(
            '[sources.x]\nkind = "api"\nsecret_env = "K"\nrate_limit_per_min = 100',
            "sources.x.rate_limit_per_min: only form sources take rate_limit_per_min",
            id="form-post-limit-on-an-api-source",
        ),
        pytest.param(
            '[sources.x]\nkind = "google"\nsecret_env = "K"\ndouble_submit_seconds = 600',
            "sources.x.double_submit_seconds: only form sources take double_submit_seconds",
            id="double-submit-window-on-a-google-source",
        ),
        pytest.param(
            '[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\nconsent_checkbox = "ticked"',
            "sources.x.consent_checkbox: expected true or false",
            id="consent-checkbox-not-a-boolean",
        ),
        pytest.param('[sources.X]\nkind = "facebook"\npage_ids = ["1"]', "sources.X:", id="bad-slug"),
        pytest.param(
            '[sources."web\\n"]\nkind = "facebook"\npage_ids = ["1"]', "expected a slug", id="slug-ending-in-a-newline"
        ),
        pytest.param('[sources.x]\nkind = "api"\nsecret_env = "K"\nlead_cost = -1', "lead_cost", id="negative-cost"),
        pytest.param("[sources.x\nkind=", "not valid TOML", id="broken-toml"),
        pytest.param(
            '[sources.a]\nkind = "facebook"\npage_ids = ["1"]\n[sources.b]\nkind = "facebook"\npage_ids = ["1"]',
            "sources.b.page_ids: 1 is also used by a",
            id="page-routed-twice",
        ),
    ],
)
def test_a_bad_sources_file_is_refused_naming_where(tmp_path, toml, problem):
    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K": "secret"}, {})

    assert any(problem in p for p in raised.value.problems), raised.value.problems


@pytest.mark.parametrize("origin", ["3", "true", '{ url = "https://a.example.com" }'])
def test_an_allowed_origin_that_is_not_text_is_refused_naming_where_not_a_crash(tmp_path, origin):
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = [{origin}]'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    assert raised.value.problems == [
        'sources.x.allowed_origins.0: expected an origin as text, such as "https://landing.example.com"'
    ]


@pytest.mark.parametrize(("line", "expected"), [("accept_null_origin = true", True), ("", False)])
def test_a_form_source_says_whether_it_takes_posts_from_pages_hiding_their_origin(tmp_path, line, expected):
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\n{line}'

    [source] = load_sources(write(tmp_path, toml), {}, {})

    assert source.accept_null_origin is expected


def test_only_a_form_source_takes_accept_null_origin(tmp_path):
    toml = '[sources.x]\nkind = "api"\nsecret_env = "K"\naccept_null_origin = true\n'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K": "key-0123456789abcdef"}, {})

    assert raised.value.problems == ["sources.x.accept_null_origin: only form sources take accept_null_origin"]


@pytest.mark.parametrize(("line", "expected"), [("consent_checkbox = true", True), ("", False)])
def test_a_form_source_says_whether_its_page_asks_for_consent_with_a_checkbox(tmp_path, line, expected):
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\n{line}'

    [source] = load_sources(write(tmp_path, toml), {}, {})

    assert source.consent_checkbox is expected


@pytest.mark.parametrize(
    ("configured", "origin"),
    [
        pytest.param("https://landing.example.com", "https://landing.example.com", id="as-browsers-send-it"),
        pytest.param("https://Landing.Example.COM", "https://landing.example.com", id="host-in-capitals"),
        pytest.param("HTTPS://landing.example.com", "https://landing.example.com", id="scheme-in-capitals"),
        pytest.param("https://landing.example.com:443", "https://landing.example.com", id="default-https-port"),
        pytest.param("http://landing.example.com:80", "http://landing.example.com", id="default-http-port"),
        pytest.param("https://landing.example.com/", "https://landing.example.com", id="trailing-slash"),
        pytest.param("https://landing.example.com:8443", "https://landing.example.com:8443", id="other-port-kept"),
        pytest.param("https://[2001:DB8::1]:443", "https://[2001:db8::1]", id="ipv6-host"),
        pytest.param("https://bücher.example", "https://xn--bcher-kva.example", id="idn-host-in-punycode"),
        pytest.param("https://straße.de", "https://xn--strae-oqa.de", id="idn-host-as-browsers-encode-it"),
    ],
)
def test_an_allowed_origin_is_kept_as_browsers_send_it_in_the_origin_header(tmp_path, configured, origin):
    # Written any other way, it would match no browser's Origin and every post from the page would be refused.
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = ["{configured}"]\n'

    [source] = load_sources(write(tmp_path, toml), {}, {})

    assert source.allowed_origins == (origin,)
    assert source.is_origin_allowed(origin)


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param("https://landing.example.com/offer", id="path"),
        pytest.param("https://landing.example.com?utm_source=x", id="query"),
        pytest.param("https://landing.example.com/#top", id="fragment"),
        pytest.param("https://user@landing.example.com", id="credentials"),
        pytest.param("landing.example.com", id="no-scheme"),
        pytest.param("ftp://landing.example.com", id="not-http"),
        pytest.param("https://landing.example.com:99999", id="port-out-of-range"),
    ],
)
def test_an_allowed_origin_that_is_no_origin_is_refused_saying_what_is_expected(tmp_path, configured):
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = ["https://ok.example.com", "{configured}"]\n'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    assert raised.value.problems == [
        "sources.x.allowed_origins.1: expected an origin such as https://landing.example.com (scheme, host and "
        f"port only: no path, query or fragment), got {configured!r}"
    ]


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param("https://*.example.com", id="any-subdomain"),
        pytest.param("https://landing.example.*", id="any-top-level-domain"),
        pytest.param("https://*", id="any-host"),
    ],
)
def test_an_allowed_origin_with_a_wildcard_is_refused_saying_to_list_each_origin(tmp_path, configured):
    # Origins are compared whole: a wildcard would match no browser's Origin, and every post be refused 403.
    toml = f'[sources.x]\nkind = "form"\nallowed_origins = ["https://ok.example.com", "{configured}"]\n'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    assert raised.value.problems == [
        "sources.x.allowed_origins.1: expected each landing page's origin in full, such as"
        f" https://landing.example.com (no wildcards: list every origin), got {configured!r}"
    ]


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param('page_url = "landing"\nclient_ip = "landing"', id="two-of-them-renamed-alike"),
        pytest.param('jornaya_leadid = "page_url"', id="one-renamed-to-anothers-default"),
    ],
)
def test_consent_keys_that_name_one_custom_field_twice_are_refused(tmp_path, keys):
    # Two values under one key: one of them (the page URL, the client IP) would never reach careCycle.
    toml = (
        f'[sources.x]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\n[sources.x.consent_keys]\n{keys}\n'
    )

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    [problem] = raised.value.problems
    assert problem.startswith("sources.x.consent_keys: expected a different customFields key for each, got ")


def test_check_config_reports_an_allowed_origin_with_a_path(tmp_path, monkeypatch, capsys):
    from app.cli import main
    from app.crypto import generate_key

    toml = '[sources.acme]\nkind = "form"\nallowed_origins = ["https://landing.example.com/offer"]\n'
    monkeypatch.setenv("LEADRELAY_SOURCES", write(tmp_path, toml))
    monkeypatch.setenv("CARECYCLE_API_KEY", "cc_x")
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2
    assert "sources.acme.allowed_origins.0: expected an origin such as" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "key", "problem"),
    [
        pytest.param("api", 'page_ids = ["777"]', "page_ids: only facebook sources take page_ids", id="page-ids-api"),
        pytest.param("form", 'form_ids = ["1"]', "form_ids: only facebook sources take form_ids", id="form-ids-form"),
        pytest.param(
            "google", 'page_ids = ["7"]', "page_ids: only facebook sources take page_ids", id="page-ids-google"
        ),
        pytest.param(
            "api",
            "deliver_test_leads = true",
            "deliver_test_leads: only facebook and google sources take deliver_test_leads",
            id="test-leads-api",
        ),
        pytest.param(
            "form",
            "deliver_test_leads = false",
            "deliver_test_leads: only facebook and google sources take deliver_test_leads",
            id="test-leads-form",
        ),
    ],
)
def test_a_key_only_another_kind_takes_is_refused_naming_the_kinds_that_take_it(tmp_path, kind, key, problem):
    needs = {
        "api": 'secret_env = "K"',
        "form": 'allowed_origins = ["https://a.example.com"]',
        "google": 'secret_env = "K"',
    }
    toml = f'[sources.x]\nkind = "{kind}"\n{needs[kind]}\n{key}\n'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K": "a-long-random-key-0123456789"}, {})

    assert raised.value.problems == [f"sources.x.{problem}"]


def test_meta_ids_route_only_to_facebook_sources():
    registry = SourceRegistry(
        [
            LeadSource(slug="partner", kind=SourceKind.API, page_ids=("1",), form_ids=("2",)),
            LeadSource(slug="fb", kind=SourceKind.FACEBOOK, page_ids=("3",)),
        ]
    )

    assert registry.by_meta_ids("3", "2").slug == "fb"
    with pytest.raises(UnknownSourceError):
        registry.by_meta_ids("1", "2")


def test_every_problem_in_the_file_is_listed_at_once(tmp_path):
    toml = '[sources.a]\nkind = "api"\n[sources.b]\nkind = "form"\n[sources.c]\nkind = "nope"'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    assert len(raised.value.problems) == 3


def test_each_table_is_checked_on_its_own_and_the_checks_between_sources_run_beside_its_problems(tmp_path):
    toml = (
        '[sources.a]\nkind = "facebook"\npage_ids = ["1"]\n'
        '[sources.b]\nkind = "facebook"\npage_ids = ["1"]\n'
        '[sources.c]\nkind = "api"\n'
        '[sources.d]\nkind = "api"\nsecret_env = "D_KEY"\nlead_cost = -1\n'
    )

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {"tok": "partner"}, ops_tokens={"tok": "alice"})

    assert raised.value.problems == [
        "sources.c.secret_env: an api source needs secret_env (the variable holding its key)",
        "sources.d.lead_cost: expected careCycle's leadCost for this source's leads: a number of 0 or more",
        "sources.d.secret_env: environment variable D_KEY is not set",
        "sources.b.page_ids: 1 is also used by a",
        "sources.partner: a secret of this source is also an ops token",
    ]


def test_a_table_with_problems_still_takes_part_in_the_checks_between_sources(tmp_path):
    toml = (
        '[sources.acme]\nkind = "api"\nsecret_env = "K"\nsourceid = "typo"\n'
        '[sources.Gamma]\nkind = "api"\nsecret_env = "K"\n'
    )

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K": "one-secret-0123456789"}, {})

    assert raised.value.problems == [
        "sources.acme.sourceid: not a key a source takes: did you mean source_id?",
        "sources.Gamma: expected a slug: lowercase letters, digits, - and _ (at most 63, starting with a letter or"
        " digit)",
        "sources.Gamma.secrets: the same secret is also used by acme",
    ]


def test_a_key_beside_the_sources_tables_does_not_hide_their_problems(tmp_path):
    toml = 'source = "typo"\n[sources.x]\nkind = "api"\n'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {}, {})

    assert raised.value.problems == [
        "source: not a key of the sources file: expected only [sources.<slug>] tables",
        "sources.x.secret_env: an api source needs secret_env (the variable holding its key)",
    ]


def test_a_missing_file_names_the_variable(tmp_path):
    with pytest.raises(SourcesError) as raised:
        load_sources(str(tmp_path / "absent.toml"), {}, {})

    assert raised.value.problems[0].startswith("LEADRELAY_SOURCES:")


def test_secret_values_never_appear_in_problems(tmp_path):
    toml = '[sources.a]\nkind = "api"\nsecret_env = "K1"\n[sources.b]\nkind = "api"\nsecret_env = "K2"'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K1": "same-secret", "K2": "same-secret"}, {})

    assert "same-secret" not in str(raised.value)
    assert "also used by a" in str(raised.value)


GOOGLE_TOML = '[sources.gads]\nkind = "google"\nsecret_env = "GADS_KEY"\n'


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("123", id="googles-suggested-dummy"),
        pytest.param("x" * 15, id="one-short-of-16"),
        pytest.param("a-long-random-key-0123456789, 123", id="one-of-its-rotation-keys"),
    ],
)
def test_a_google_source_with_a_key_shorter_than_16_characters_is_refused_naming_its_variable(tmp_path, key):
    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, GOOGLE_TOML), {"GADS_KEY": key}, {})

    assert raised.value.problems == [
        "sources.gads.secret_env: GADS_KEY holds a key of fewer than 16 characters; expected a long random key,"
        " at least 16 characters, not a placeholder such as 123"
    ]


@pytest.mark.parametrize(
    "key",
    [pytest.param("x" * 16, id="16-characters"), pytest.param("new-key-0123456789, old-key-0123456789", id="rotation")],
)
def test_a_google_source_takes_keys_of_16_characters_or_more(tmp_path, key):
    registry = load_sources(write(tmp_path, GOOGLE_TOML), {"GADS_KEY": key}, {})

    assert registry.by_slug("gads", SourceKind.GOOGLE).secrets == tuple(part.strip() for part in key.split(","))


API_TOML = '[sources.web]\nkind = "api"\nsecret_env = "WEB_KEY"\n'


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("123", id="a-placeholder"),
        pytest.param("x" * 15, id="one-short-of-16"),
        pytest.param("a-long-random-key-0123456789, web", id="one-of-its-rotation-keys"),
    ],
)
def test_an_api_source_with_a_key_shorter_than_16_characters_is_refused_naming_its_variable(tmp_path, key):
    # Whoever guesses it posts leads billed to the partner, and nothing limits how often a wrong key may be tried.
    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, API_TOML), {"WEB_KEY": key}, {})

    assert raised.value.problems == [
        "sources.web.secret_env: WEB_KEY holds a key of fewer than 16 characters; expected a long random key,"
        " at least 16 characters"
    ]


def test_an_api_source_takes_keys_of_16_characters_or_more(tmp_path):
    registry = load_sources(write(tmp_path, API_TOML), {"WEB_KEY": "x" * 16}, {})

    assert registry.api_keys == {"x" * 16: "web"}


def test_a_source_named_in_the_environment_must_be_a_slug_and_its_error_never_shows_the_pair():
    api_keys = {"first-key-0123456789": "partner", "second-key-0123456789": "Partner One", "pa": "sEcReT-key-9876"}

    with pytest.raises(SourcesError) as raised:
        load_sources(None, {}, api_keys)

    assert raised.value.problems == [
        f"LEADRELAY_SOURCE_KEYS: the name of source {n} of 3 is not a slug: expected lowercase letters, digits, - "
        "and _ (at most 63, starting with a letter or digit)"
        for n in (2, 3)
    ]
    assert "sEcReT" not in "".join(raised.value.problems)


def test_a_source_named_in_the_environment_that_is_no_slug_is_refused_beside_a_sources_file(tmp_path):
    # The file's own problems are listed as well: neither list takes the other's place.
    api_keys = {"first-key-0123456789": "Partner One"}

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, API_TOML), {"WEB_KEY": "short"}, api_keys)

    assert raised.value.problems == [
        "LEADRELAY_SOURCE_KEYS: the name of source 1 of 1 is not a slug: expected lowercase letters, digits, - "
        "and _ (at most 63, starting with a letter or digit)",
        "sources.web.secret_env: WEB_KEY holds a key of fewer than 16 characters; expected a long random key,"
        " at least 16 characters",
    ]


@pytest.mark.parametrize(
    ("toml", "environ", "api_keys"),
    [
        pytest.param(None, {}, {"shared-secret-0123456789": "partner"}, id="api-key-in-the-environment"),
        pytest.param(
            '[sources.partner]\nkind = "api"\nsecret_env = "K"', {"K": "shared-secret-0123456789"}, {}, id="api-key"
        ),
        pytest.param(
            '[sources.partner]\nkind = "google"\nsecret_env = "K"', {"K": "shared-secret-0123456789"}, {}, id="google"
        ),
    ],
)
def test_a_source_secret_that_is_also_an_ops_token_is_refused(tmp_path, toml, environ, api_keys):
    path = write(tmp_path, toml) if toml else None

    with pytest.raises(SourcesError) as raised:
        load_sources(path, environ, api_keys, ops_tokens={"shared-secret-0123456789": "alice"})

    assert raised.value.problems == ["sources.partner: a secret of this source is also an ops token"]


def test_a_key_under_a_source_in_the_file_and_another_in_the_environment_is_refused(tmp_path):
    toml = '[sources.filekey]\nkind = "api"\nsecret_env = "K"'

    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, toml), {"K": "key-0123456789abcdef"}, {"key-0123456789abcdef": "envsrc"})

    assert raised.value.problems == ["sources.filekey.secrets: the same secret is also used by envsrc"]


def test_a_sources_file_that_is_not_utf8_is_refused_naming_the_setting(tmp_path):
    path = tmp_path / "sources.toml"
    path.write_bytes(b"\xff\xfe[sources.a]")

    with pytest.raises(SourcesError) as raised:
        load_sources(str(path), {}, {})

    assert raised.value.problems == [f"LEADRELAY_SOURCES: {path} is not UTF-8 text (TOML files are)"]


EMOJI_KEY = "\U0001f600" * 51  # 51 characters, 102 as careCycle counts them
CUSTOM_FIELD_KEY_EXPECTED = "expected a customFields key of 1 to 100 characters (careCycle counts an emoji as 2)"
FIELD_MAP_TARGET_EXPECTED = (
    "expected a careCycle field, an alias of one, a customFields key of 1 to 100 characters,"
    " or a name starting with _ (drops the field)"
)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param(
            "custom_fields = {when = 1979-05-27T07:32:00Z}",
            "sources.a.custom_fields.when: expected a string, number, boolean or list of strings",
            id="custom-field-datetime",
        ),
        pytest.param(
            "custom_fields = {t = {x = 1}}",
            "sources.a.custom_fields.t: expected a string, number, boolean or list of strings",
            id="custom-field-table",
        ),
        pytest.param(
            f'custom_fields = {{long = "{"x" * 256}"}}',
            "sources.a.custom_fields.long: expected at most 255 characters",
            id="custom-field-too-long",
        ),
        pytest.param(
            f'custom_fields = {{"{EMOJI_KEY}" = "v"}}',
            f'sources.a.custom_fields."{EMOJI_KEY}": {CUSTOM_FIELD_KEY_EXPECTED}',
            id="custom-field-key-of-emoji-past-carecycles-limit",
        ),
        pytest.param(
            'custom_fields = {"   " = "v"}',
            f'sources.a.custom_fields."   ": {CUSTOM_FIELD_KEY_EXPECTED}',
            id="custom-field-key-of-spaces-only",
        ),
        pytest.param(
            '[sources.a.consent_keys]\npage_url = "   "',
            f"sources.a.consent_keys.page_url: {CUSTOM_FIELD_KEY_EXPECTED}",
            id="consent-key-of-spaces-only",
        ),
        pytest.param(
            f'[sources.a.consent_keys]\nclient_ip = "{EMOJI_KEY}"',
            f"sources.a.consent_keys.client_ip: {CUSTOM_FIELD_KEY_EXPECTED}",
            id="consent-key-of-emoji-past-carecycles-limit",
        ),
        pytest.param(
            'field_map = {answer = ""}',
            f"sources.a.field_map.answer: {FIELD_MAP_TARGET_EXPECTED}",
            id="field-map-to-a-blank-name",
        ),
        pytest.param(
            f'field_map = {{answer = "{"q" * 101}"}}',
            f"sources.a.field_map.answer: {FIELD_MAP_TARGET_EXPECTED}",
            id="field-map-to-a-custom-field-key-past-carecycles-limit",
        ),
        pytest.param(
            f'field_map = {{answer = "{EMOJI_KEY}"}}',
            f"sources.a.field_map.answer: {FIELD_MAP_TARGET_EXPECTED}",
            id="field-map-to-a-custom-field-key-of-emoji-past-carecycles-limit",
        ),
        pytest.param(
            "double_submit_seconds = 99999999999999999999",
            "sources.a.double_submit_seconds: expected a whole number of seconds from 0 to 31536000 (a year)",
            id="double-submit-window-past-redis-expiry-range",
        ),
    ],
)
def test_a_configured_value_every_lead_would_trip_on_is_refused(tmp_path, toml, problem):
    with pytest.raises(SourcesError) as raised:
        table = f'[sources.a]\nkind = "form"\nallowed_origins = ["https://a.example.com"]\n{toml}'
        load_sources(write(tmp_path, table), {}, {})

    assert raised.value.problems == [problem]


def static_fields(count):
    return "custom_fields = {" + ", ".join(f'k{n} = "v"' for n in range(count)) + "}"


FORM_TABLE = '[sources.landing]\nkind = "form"\nallowed_origins = ["https://landing.example.com"]\n'
FACEBOOK_TABLE = '[sources.landing]\nkind = "facebook"\nform_ids = ["1"]\n'
FORM_KEYS = "client_ip, jornaya_leadid, page_url, tcpa_consent_at, tcpa_consent_text, trustedform_cert_url"
GOOGLE_TABLE = '[sources.landing]\nkind = "google"\nsecret_env = "K"\n'
GOOGLE_KEYS = (
    "gclid, google_adgroup_id, google_api_version, google_asset_group_id, google_campaign_id, google_creative_id,"
    " google_form_id, google_lead_id, google_lead_source, google_lead_stage, google_lead_submit_time"
)
FACEBOOK_KEYS = "ad_id, adset_id, campaign_id, form_id, is_organic, leadgen_id, page_id, platform, tcpa_consent_at"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        pytest.param(
            FORM_TABLE + static_fields(45),
            "sources.landing.custom_fields: expected at most 44 items; careCycle takes 50 customFields and a form"
            f" source's leads carry 6 of their own for consent, provenance and attribution ({FORM_KEYS})",
            id="form-45",
        ),
        pytest.param(
            FORM_TABLE + static_fields(50),
            "sources.landing.custom_fields: expected at most 44 items; careCycle takes 50 customFields and a form"
            f" source's leads carry 6 of their own for consent, provenance and attribution ({FORM_KEYS})",
            id="form-50",
        ),
        pytest.param(
            FACEBOOK_TABLE + static_fields(42),
            "sources.landing.custom_fields: expected at most 41 items; careCycle takes 50 customFields and a"
            f" facebook source's leads carry 9 of their own for consent, provenance and attribution ({FACEBOOK_KEYS})",
            id="facebook-42",
        ),
        pytest.param(
            GOOGLE_TABLE + static_fields(40),
            "sources.landing.custom_fields: expected at most 39 items; careCycle takes 50 customFields and a"
            f" google source's leads carry 11 of their own for consent, provenance and attribution ({GOOGLE_KEYS})",
            id="google-40",
        ),
    ],
)
def test_static_custom_fields_that_leave_no_room_for_consent_and_provenance_are_refused(tmp_path, table, problem):
    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, table), {"K": "a-long-random-key-0123456789"}, {})

    assert raised.value.problems == [problem]


@pytest.mark.parametrize(
    ("table", "count"),
    [
        pytest.param(FORM_TABLE, 44, id="form"),
        pytest.param(FACEBOOK_TABLE, 41, id="facebook"),
        pytest.param('[sources.landing]\nkind = "api"\nsecret_env = "K"\n', 50, id="api"),
        pytest.param(GOOGLE_TABLE, 39, id="google"),
    ],
)
def test_static_custom_fields_may_fill_what_consent_and_provenance_leave_of_the_cap(tmp_path, table, count):
    registry = load_sources(write(tmp_path, table + static_fields(count)), {"K": "a-long-random-key-0123456789"}, {})

    assert len(registry.by_slug("landing").static_custom_fields) == count


def test_a_static_custom_field_under_a_consent_key_takes_that_keys_room(tmp_path):
    table = FORM_TABLE + static_fields(44)[:-1] + ', page_url = "https://landing.example.com/"}'

    registry = load_sources(write(tmp_path, table), {}, {})

    assert len(registry.by_slug("landing").static_custom_fields) == 45


def test_lookups_of_unknown_sources_raise():
    registry = load_sources(None, {}, {"k1": "partner"})

    with pytest.raises(UnknownSourceError):
        registry.by_slug("partner", SourceKind.FORM)
    with pytest.raises(UnknownSourceError):
        registry.by_meta_ids("9", "9")


def test_check_config_reports_sources_file_problems(tmp_path, monkeypatch, capsys):
    from app.cli import main
    from app.crypto import generate_key

    monkeypatch.setenv("LEADRELAY_SOURCES", write(tmp_path, '[sources.x]\nkind = "api"'))
    monkeypatch.setenv("CARECYCLE_API_KEY", "cc_x")
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())

    assert main(["check-config"]) == 2
    assert "sources.x.secret_env" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["worker", "--burst"], ["web"]])
def test_a_process_started_with_a_bad_sources_file_exits_2_naming_the_problem(tmp_path, monkeypatch, capsys, command):
    from app.cli import main
    from app.crypto import generate_key

    monkeypatch.setenv("LEADRELAY_SOURCES", write(tmp_path, '[sources.x]\nkind = "api"'))
    monkeypatch.setenv("CARECYCLE_API_KEY", "cc_x")
    monkeypatch.setenv("LEADRELAY_ENCRYPTION_KEY", generate_key())
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: the sources file is read first
    monkeypatch.setattr("os.execv", lambda *argv: pytest.fail("the web tier was started"))

    assert main(command) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "sources.x.secret_env" in err


def test_check_config_passes_on_the_example_with_its_environment(monkeypatch, capsys):
    from app.cli import main
    from app.crypto import generate_key

    facebook = {
        f"FACEBOOK_{name}": "x" for name in ("APP_SECRET", "VERIFY_TOKEN", "ACCESS_TOKEN")
    }  # its facebook source
    needed = {**EXAMPLE_ENV, **facebook, "CARECYCLE_API_KEY": "cc_x", "LEADRELAY_ENCRYPTION_KEY": generate_key()}
    for name, value in needed.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEADRELAY_SOURCES", str(EXAMPLE))

    assert main(["check-config"]) == 0
    assert "4 sources" in capsys.readouterr().out


def test_a_source_may_have_several_keys_while_clients_move_to_a_new_one(tmp_path):
    registry = load_sources(
        write(tmp_path, '[sources.acme]\nkind = "api"\nsecret_env = "ACME_KEYS"'),
        {"ACME_KEYS": "new-key-0123456789, old-key-0123456789"},
        {"env-new": "partner", "env-old": "partner"},
    )

    assert registry.api_keys == {
        "new-key-0123456789": "acme",
        "old-key-0123456789": "acme",
        "env-new": "partner",
        "env-old": "partner",
    }


def test_a_duplicate_window_longer_than_leads_are_kept_is_refused(tmp_path):
    from app.config import Settings
    from app.sources import load_configured_sources

    path = write(tmp_path, '[sources.web]\nkind = "api"\nsecret_env = "K"\nduplicate_window_days = 60')
    settings = Settings.from_env(
        {"LEADRELAY_SOURCES": path, "LEADRELAY_RETENTION_DAYS": "30", "K": "web-key-0123456789"}
    )

    with pytest.raises(SourcesError) as raised:
        load_configured_sources(settings)

    assert raised.value.problems == [
        "sources.web.duplicate_window_days: must not exceed LEADRELAY_RETENTION_DAYS=30: expected at most 30 (days)"
    ]
    assert load_configured_sources(settings.replace(leadrelay_retention_days=60)).by_slug("web")


def test_a_window_past_retention_is_listed_beside_the_problems_of_the_file(tmp_path):
    from app.config import Settings
    from app.sources import load_configured_sources

    toml = '[sources.web]\nkind = "api"\nsecret_env = "K"\nduplicate_window_days = 60\n[sources.x]\nkind = "api"'
    settings = Settings.from_env({"LEADRELAY_SOURCES": write(tmp_path, toml), "LEADRELAY_RETENTION_DAYS": "30"})

    with pytest.raises(SourcesError) as raised:
        load_configured_sources(settings)

    assert raised.value.problems == [
        "sources.web.secret_env: environment variable K is not set",
        "sources.x.secret_env: an api source needs secret_env (the variable holding its key)",
        "sources.web.duplicate_window_days: must not exceed LEADRELAY_RETENTION_DAYS=30: expected at most 30 (days)",
    ]


def test_a_double_submit_window_longer_than_leads_are_kept_is_refused(tmp_path):
    from app.config import Settings
    from app.sources import load_configured_sources

    toml = '[sources.web]\nkind = "form"\nallowed_origins = ["https://a.example"]\ndouble_submit_seconds = 172800'
    settings = Settings.from_env({"LEADRELAY_SOURCES": write(tmp_path, toml), "LEADRELAY_RETENTION_DAYS": "1"})

    with pytest.raises(SourcesError) as raised:
        load_configured_sources(settings)

    expected = "must not exceed LEADRELAY_RETENTION_DAYS=1: expected at most 86400 (seconds)"
    assert raised.value.problems == [f"sources.web.double_submit_seconds: {expected}"]


def test_a_retention_shorter_than_the_double_submit_default_is_no_problem_for_sources_that_are_not_forms(tmp_path):
    from app.config import Settings
    from app.sources import load_configured_sources

    toml = '[sources.partner]\nkind = "api"\nsecret_env = "K"\n[sources.goog]\nkind = "google"\nsecret_env = "G"'
    env = {"K": "partner-key-0123456789", "G": "google-key-0123456789", "LEADRELAY_RETENTION_DAYS": "0.005"}
    env["LEADRELAY_RECORD_RETENTION_HOURS"] = "0.1"
    settings = Settings.from_env({"LEADRELAY_SOURCES": write(tmp_path, toml), **env})

    assert load_configured_sources(settings).by_slug("partner")


@pytest.mark.parametrize(
    ("table", "problems"),
    [
        pytest.param(
            'kind = "api"\nlead_cost = -1\nallowed_origins = ["https://a.example.com"]',
            [
                "sources.x.lead_cost: expected careCycle's leadCost for this source's leads: a number of 0 or more",
                "sources.x.secret_env: an api source needs secret_env (the variable holding its key)",
                "sources.x.allowed_origins: only form sources take allowed_origins",
            ],
            id="bad-value-beside-missing-and-foreign-keys",
        ),
        pytest.param(
            'kind = "form"\nallowed_origins = ["https://a.example.com/offer"]\npage_ids = ["7"]',
            [
                "sources.x.allowed_origins.0: expected an origin such as https://landing.example.com (scheme, host"
                " and port only: no path, query or fragment), got 'https://a.example.com/offer'",
                "sources.x.page_ids: only facebook sources take page_ids",
            ],
            id="bad-origin-beside-a-meta-key",
        ),
    ],
)
def test_a_tables_bad_value_does_not_hide_what_else_is_wrong_with_it(tmp_path, table, problems):
    with pytest.raises(SourcesError) as raised:
        load_sources(write(tmp_path, f"[sources.x]\n{table}\n"), {}, {})

    assert sorted(raised.value.problems) == sorted(problems)
