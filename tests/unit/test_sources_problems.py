"""What `leadrelay check-config` says of a sources file it refuses: for every problem, which source, which key, and
what was expected, in the relay's words (never marshmallow's "Not a valid string." or "Unknown field.")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.sources import SourcesError, load_sources

API = 'kind = "api"\nsecret_env = "K"\n'
FORM = 'kind = "form"\nallowed_origins = ["https://a.example.com"]\n'
FACEBOOK = 'kind = "facebook"\npage_ids = ["1"]\n'
GOOGLE = 'kind = "google"\nsecret_env = "K"\n'

# marshmallow's own messages, which say what went wrong but not what the file should hold.
MARSHMALLOW_WORDING = re.compile(
    r"Not a valid|Unknown field|Missing data|Must be|Length must|Invalid (input|type|value)|may not be null"
    r"|Special numeric|too large|does not match|Shorter than|Longer than",
    re.IGNORECASE,
)


def problems_of(tmp_path: Path, toml: str) -> list[str]:
    path = tmp_path / "sources.toml"
    path.write_text(toml)
    with pytest.raises(SourcesError) as raised:
        load_sources(str(path), {"K": "a-key-of-twenty-chars"}, {})
    return raised.value.problems


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param(
            "[sources.x]\nsecret_env = 'K'",
            "sources.x.kind: missing: expected one of api, form, facebook or google",
            id="kind-missing",
        ),
        pytest.param(
            "[sources.x]\nkind = 3", "sources.x.kind: expected one of api, form, facebook or google", id="kind-number"
        ),
        pytest.param(
            "[sources.x]\nkind = 'apix'\nsecret_env = 'K'",
            "sources.x.kind: expected one of api, form, facebook or google",
            id="kind-unknown",
        ),
        pytest.param(
            f"[sources.x]\n{API}source_idd = 'acme'",
            "sources.x.source_idd: not a key a source takes: did you mean source_id?",
            id="key-misspelt",
        ),
        pytest.param(
            f"[sources.x]\n{API}colour = 'red'",
            "sources.x.colour: not a key a source takes: expected kind, secret_env, source_id, lead_cost, field_map,"
            " custom_fields, allowed_origins, redirect_allowlist, thank_you_url, honeypot_field, double_submit_seconds,"
            " duplicate_window_days, rate_limit_per_ip_per_min, rate_limit_per_min, consent_keys, page_ids, form_ids,"
            " deliver_test_leads, accept_external_id, accept_null_origin or consent_checkbox",
            id="key-unknown",
        ),
        pytest.param(
            "[sources.x]\nkind = 'api'\nsecret_env = 3",
            "sources.x.secret_env: expected the name of the environment variable holding the key, such as"
            " ACME_API_KEY (capital letters, digits and _)",
            id="secret-env-number",
        ),
        pytest.param(
            f"[sources.x]\n{API}source_id = 3",
            "sources.x.source_id: expected careCycle's source identifier (sent as sourceId): text of 1 to 255"
            " characters",
            id="source-id-number",
        ),
        pytest.param(
            f"[sources.x]\n{API}source_id = ''",
            "sources.x.source_id: expected careCycle's source identifier (sent as sourceId): text of 1 to 255"
            " characters",
            id="source-id-empty",
        ),
        pytest.param(
            f"[sources.x]\n{API}lead_cost = 'cheap'",
            "sources.x.lead_cost: expected careCycle's leadCost for this source's leads: a number of 0 or more",
            id="lead-cost-text",
        ),
        pytest.param(
            f"[sources.x]\n{API}lead_cost = -1",
            "sources.x.lead_cost: expected careCycle's leadCost for this source's leads: a number of 0 or more",
            id="lead-cost-negative",
        ),
        pytest.param(
            f"[sources.x]\n{API}lead_cost = inf",
            "sources.x.lead_cost: expected careCycle's leadCost for this source's leads: a number of 0 or more",
            id="lead-cost-infinite",
        ),
        pytest.param(
            f"[sources.x]\n{API}field_map = ['cell']",
            "sources.x.field_map: expected a table of inbound field names, each naming the careCycle field (or"
            " customFields key) it goes to",
            id="field-map-list",
        ),
        pytest.param(
            f"[sources.x]\n{API}field_map = {{cell = 1}}",
            "sources.x.field_map.cell: expected a careCycle field, an alias of one, a customFields key of 1 to 100"
            " characters, or a name starting with _ (drops the field)",
            id="field-map-target-number",
        ),
        pytest.param(
            f"[sources.x]\n{API}field_map = {{\"\" = 'phoneNumber'}}",
            'sources.x.field_map."": expected an inbound field name of 1 to 200 characters',
            id="field-map-name-empty",
        ),
        pytest.param(
            f"[sources.x]\n{API}custom_fields = ['acme']",
            "sources.x.custom_fields: expected a table of customFields keys, each with the value every lead of the"
            " source gets",
            id="custom-fields-list",
        ),
        pytest.param(
            "[sources.x]\nkind = 'form'\nallowed_origins = 'https://a.example.com'",
            "sources.x.allowed_origins: expected a list of the landing pages' origins, such as"
            ' ["https://landing.example.com"]',
            id="origins-not-a-list",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}redirect_allowlist = 'https://a.example.com/t'",
            "sources.x.redirect_allowlist: expected a list of thank-you page URLs, such as"
            ' ["https://landing.example.com/thanks"]',
            id="redirects-not-a-list",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}redirect_allowlist = ['ftp://a.example.com/t']",
            "sources.x.redirect_allowlist.0: expected an http or https URL, such as https://landing.example.com/thanks",
            id="redirect-not-http",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}thank_you_url = 3",
            "sources.x.thank_you_url: expected an http or https URL, such as https://landing.example.com/thanks",
            id="thank-you-number",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}honeypot_field = 3",
            "sources.x.honeypot_field: expected a form field name of 1 to 100 characters that people leave empty,"
            " such as company_website",
            id="honeypot-number",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}double_submit_seconds = 1.5",
            "sources.x.double_submit_seconds: expected a whole number of seconds from 0 to 31536000 (a year)",
            id="double-submit-fraction",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}double_submit_seconds = '600'",
            "sources.x.double_submit_seconds: expected a whole number of seconds from 0 to 31536000 (a year)",
            id="double-submit-text",
        ),
        pytest.param(
            f"[sources.x]\n{API}duplicate_window_days = 400",
            "sources.x.duplicate_window_days: expected a number of days from 0 to 365",
            id="duplicate-window-past-a-year",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}rate_limit_per_ip_per_min = 0",
            "sources.x.rate_limit_per_ip_per_min: expected a whole number of posts a minute from one address, from"
            " 1 to 1000000000",
            id="per-ip-limit-zero",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}rate_limit_per_min = 'lots'",
            "sources.x.rate_limit_per_min: expected a whole number of posts a minute, from 1 to 1000000000",
            id="form-limit-text",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}consent_keys = 'tcpa'",
            "sources.x.consent_keys: expected a table of customFields keys for consent_text, consent_at, page_url,"
            " client_ip, trustedform_cert_url or jornaya_leadid",
            id="consent-keys-text",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}consent_keys = {{referrer = 'page_url'}}",
            "sources.x.consent_keys.referrer: not a consent key: expected consent_text, consent_at, page_url,"
            " client_ip, trustedform_cert_url or jornaya_leadid",
            id="consent-key-unknown",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}consent_keys = {{page = 'page_url'}}",
            "sources.x.consent_keys.page: not a consent key: did you mean page_url?",
            id="consent-key-misspelt",
        ),
        pytest.param(
            f"[sources.x]\n{FORM}consent_keys = {{page_url = 3}}",
            "sources.x.consent_keys.page_url: expected a customFields key of 1 to 100 characters (careCycle counts"
            " an emoji as 2)",
            id="consent-key-number",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\npage_ids = '102938475610293'",
            'sources.x.page_ids: expected a list of Meta page ids, each in quotes, such as ["102938475610293"]',
            id="page-ids-not-a-list",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\npage_ids = [102938475610293]",
            'sources.x.page_ids.0: expected a numeric page id in quotes, such as "102938475610293"',
            id="page-id-number",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\nform_ids = [556677889900112]",
            'sources.x.form_ids.0: expected a numeric form id in quotes, such as "556677889900112"',
            id="form-id-number",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\npage_ids = ['\u0661\u0662\u0663']",
            'sources.x.page_ids.0: expected ASCII digits in a page id, such as "102938475610293"',
            id="page-id-arabic-indic-digits",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\nform_ids = ['\uff11\uff12\uff13']",
            'sources.x.form_ids.0: expected ASCII digits in a form id, such as "556677889900112"',
            id="form-id-fullwidth-digits",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\npage_ids = [\"102938475610293\\n\"]",
            'sources.x.page_ids.0: expected a numeric page id in quotes, such as "102938475610293"',
            id="page-id-with-a-newline-after-it",
        ),
        pytest.param(
            f"[sources.x]\n{GOOGLE}deliver_test_leads = 'maybe'",
            "sources.x.deliver_test_leads: expected true or false",
            id="boolean-text",
        ),
        pytest.param(
            "[sources.x]\nkind = 'facebook'\npage_ids = ['1']\ndeliver_test_leads = 2",
            "sources.x.deliver_test_leads: expected true or false",
            id="boolean-number",
        ),
        pytest.param(
            "sources = { x = 3 }",
            "sources.x: expected a table of the source's keys, written [sources.x]",
            id="source-not-a-table",
        ),
        pytest.param(
            "sources = 3", "sources: expected a [sources.<slug>] table for each source", id="sources-not-tables"
        ),
        pytest.param(
            "title = 'ours'", "sources: missing: expected a [sources.<slug>] table for each source", id="no-sources"
        ),
        pytest.param(
            f"source = 'typo'\n[sources.x]\n{API}",
            "source: not a key of the sources file: expected only [sources.<slug>] tables",
            id="top-level-key",
        ),
    ],
)
def test_a_sources_file_problem_says_which_source_which_key_and_what_was_expected(tmp_path, toml, problem):
    assert problem in problems_of(tmp_path, toml)


@pytest.mark.parametrize(
    "toml",
    [
        "[sources.x]\nkind = []",
        f"[sources.x]\n{API}lead_cost = nan",
        f"[sources.x]\n{API}lead_cost = 1e400",
        f"[sources.x]\n{API}source_id = '{'s' * 256}'",
        f"[sources.x]\n{API}field_map = {{cell = ['a']}}",
        f"[sources.x]\n{API}custom_fields = 3",
        f"[sources.x]\n{FORM}redirect_allowlist = [3]",
        f"[sources.x]\n{FORM}double_submit_seconds = -1",
        f"[sources.x]\n{FORM}rate_limit_per_min = 99999999999999999999",
        f"[sources.x]\n{FACEBOOK}form_ids = 'x'",
        f"[sources.x]\n{FORM}consent_checkbox = 'ticked'",
        f"[sources.x]\n{FORM}consent_keys = {{client_ip = ''}}\n",
        "[sources.x]\nkind = 'api'\nsecret_env = 'lower_case'",
        "[sources.Bad]\nkind = 'api'\nsecret_env = 'K'",
    ],
)
def test_no_sources_file_problem_is_put_in_marshmallows_words(tmp_path, toml):
    problems = problems_of(tmp_path, toml)

    assert problems and all(re.match(r"sources\.\w+\S*: expected ", p) for p in problems), problems
    assert not [p for p in problems if MARSHMALLOW_WORDING.search(p)]
