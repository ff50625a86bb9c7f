"""The sources file's shape: one table per source under `[sources.<slug>]`, every key checked."""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.schemas.carecycle import MAX_CUSTOM_FIELD_KEY_CHARS
from app.schemas.contractfields import contract_length
from app.schemas.customfields import configured_value_problem, custom_field_key
from app.schemas.fields import clean_text
from app.schemas.meta import GRAPH_ID
from app.schemas.origins import WebOrigin

SOURCE_KINDS = ("api", "form", "facebook", "google")
MAX_SLUG_CHARS = 63
SLUG_CHARS = rf"[a-z0-9][a-z0-9_-]{{0,{MAX_SLUG_CHARS - 1}}}"
# \Z, not $: Python's $ takes a newline at the end too, and a slug is a URL path segment, a metrics label, a filter.
SLUG_PATTERN = re.compile(rf"^{SLUG_CHARS}\Z")
ENV_NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")

# What a slug is, as every message refusing one says it (the sources file's tables, LEADRELAY_SOURCE_KEYS' and
# LEADRELAY_OPS_TOKENS' names).
SLUG_EXPECTED = f"lowercase letters, digits, - and _ (at most {MAX_SLUG_CHARS}, starting with a letter or digit)"

validate_slug = validate.Regexp(SLUG_PATTERN, error=f"expected a slug: {SLUG_EXPECTED}")
_HTTP_URL: dict[str, Any] = {"schemes": {"http", "https"}, "require_tld": False}


_YEAR_SECONDS = 365 * 86400  # Redis refuses expiry times past its range: a window this long is a typo anyway
_MAX_RATE = 10**9
_ANY_SCRIPT_DIGITS = re.compile(r"\d{1,30}")
_KEYS_OF_KINDS = {
    "page_ids": ("facebook",),
    "form_ids": ("facebook",),
    "deliver_test_leads": ("facebook", "google"),
}


_FieldT = TypeVar("_FieldT", bound=fields.Field[Any])


def _expecting(field: _FieldT, expected: str) -> _FieldT:
    """`field` refusing a value of any wrong type, out of range or null with `expected`, and its absence, when
    required, with `missing: <expected>`: marshmallow's own messages ("Not a valid string.", "Missing data for
    required field.") say what went wrong, not what the file should hold."""
    field.error_messages = {**dict.fromkeys(field.error_messages, expected), "required": f"missing: {expected}"}
    return field


def _unknown_key(key: str, known: list[str], what: str) -> str:
    """What to say of a key that is not one of `known`: the nearest known key if it looks like a typo, else all."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"not {what}: did you mean {close[0]}?"
    return f"not {what}: expected {', '.join(known[:-1])} or {known[-1]}"


def _fits_custom_field_key(name: str) -> bool:
    """Whether careCycle takes `name`, as intake cleans it, as a customFields key: 1 to 100 characters as careCycle
    counts them (an emoji is 2). Any other would be dropped, or cut, with a warning on every lead."""
    return 1 <= contract_length(clean_text(name)) <= MAX_CUSTOM_FIELD_KEY_CHARS


_CUSTOM_KEY_EXPECTED = (
    f"expected a customFields key of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS} characters (careCycle counts an emoji as 2)"
)
# Any name other than a careCycle field or an alias of one becomes a customFields key.
_FIELD_MAP_TARGET_EXPECTED = (
    f"expected a careCycle field, an alias of one, a customFields key of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS}"
    " characters, or a name starting with _ (drops the field)"
)
_HONEYPOT_EXPECTED = (
    f"expected a form field name of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS} characters that people leave empty, such as"
    " company_website"
)


def _configured_custom_key(key: str) -> None:
    if not _fits_custom_field_key(key):
        raise ValidationError(_CUSTOM_KEY_EXPECTED)


def _field_map_target(target: str) -> None:
    if not _fits_custom_field_key(target):
        raise ValidationError(_FIELD_MAP_TARGET_EXPECTED)


def _honeypot_field(name: str) -> None:
    # Read as a customFields key would be: an unmapped form input becomes one.
    if not _fits_custom_field_key(name):
        raise ValidationError(_HONEYPOT_EXPECTED)


def _custom_field_value(value: Any) -> None:
    problem = configured_value_problem(value)
    if problem is not None:
        raise ValidationError(problem)


_CONSENT_KEYS_EXPECTED = (
    "expected a table of customFields keys for consent_text, consent_at, page_url, client_ip, trustedform_cert_url"
    " or jornaya_leadid"
)


def _custom_key(**kwargs: Any) -> fields.String:
    return _expecting(fields.String(validate=_configured_custom_key, **kwargs), _CUSTOM_KEY_EXPECTED)


class _TableSchema(Schema):
    """A table of the sources file whose unknown keys are refused one by one, each with the key meant when it looks
    like a typo of one (marshmallow's own refusal says only "Unknown field.")."""

    class Meta:
        unknown = EXCLUDE  # refused by `check_known_keys`

    unknown_key_is = "a key"  # "not <this>: ..."

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_known_keys(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        known = list(self.fields)
        unknown = [key for key in _as_table(original) if key not in known]
        if unknown:
            raise ValidationError({key: [_unknown_key(key, known, self.unknown_key_is)] for key in unknown})


class ConsentKeysSchema(_TableSchema):
    """careCycle customFields keys under which consent and provenance are forwarded."""

    error_messages = {"type": _CONSENT_KEYS_EXPECTED}
    unknown_key_is = "a consent key"

    consent_text = _custom_key(load_default="tcpa_consent_text")
    consent_at = _custom_key(load_default="tcpa_consent_at")
    page_url = _custom_key(load_default="page_url")
    client_ip = _custom_key(load_default="client_ip")
    trustedform_cert_url = _custom_key(load_default="trustedform_cert_url")
    jornaya_leadid = _custom_key(load_default="jornaya_leadid")


_KIND_EXPECTED = f"expected one of {', '.join(SOURCE_KINDS[:-1])} or {SOURCE_KINDS[-1]}"
_SECRET_ENV_EXPECTED = (
    "expected the name of the environment variable holding the key, such as ACME_API_KEY (capital letters, digits"
    " and _)"
)
_SOURCE_ID_EXPECTED = "expected careCycle's source identifier (sent as sourceId): text of 1 to 255 characters"
_LEAD_COST_EXPECTED = "expected careCycle's leadCost for this source's leads: a number of 0 or more"
_FIELD_MAP_EXPECTED = (
    "expected a table of inbound field names, each naming the careCycle field (or customFields key) it goes to"
)
_FIELD_NAME_EXPECTED = "expected an inbound field name of 1 to 200 characters"
_CUSTOM_FIELDS_EXPECTED = "expected a table of customFields keys, each with the value every lead of the source gets"
_ORIGINS_EXPECTED = 'expected a list of the landing pages\' origins, such as ["https://landing.example.com"]'
_REDIRECTS_EXPECTED = 'expected a list of thank-you page URLs, such as ["https://landing.example.com/thanks"]'
_URL_EXPECTED = "expected an http or https URL, such as https://landing.example.com/thanks"
_DOUBLE_SUBMIT_EXPECTED = f"expected a whole number of seconds from 0 to {_YEAR_SECONDS} (a year)"
_DUPLICATE_DAYS_EXPECTED = "expected a number of days from 0 to 365"
_PER_IP_EXPECTED = f"expected a whole number of posts a minute from one address, from 1 to {_MAX_RATE}"
_PER_FORM_EXPECTED = f"expected a whole number of posts a minute, from 1 to {_MAX_RATE}"
_BOOLEAN_EXPECTED = "expected true or false"


def _url() -> fields.String:
    return _expecting(fields.String(validate=validate.URL(**_HTTP_URL, error=_URL_EXPECTED)), _URL_EXPECTED)


def _meta_ids(kind: str, example: str) -> fields.List[str]:
    expected = f'expected a numeric {kind} id in quotes, such as "{example}"'
    each = fields.String(validate=_MetaIdDigits(expected, f'expected ASCII digits in a {kind} id, such as "{example}"'))
    return _expecting(
        fields.List(_expecting(each, expected)),
        f'expected a list of Meta {kind} ids, each in quotes, such as ["{example}"]',
    )


class _MetaIdDigits(validate.Validator):
    """A Meta id as the Graph API writes it and the webhooks take it (`GRAPH_ID`): 1 to 30 ASCII digits, nothing
    after them (not even a newline)."""

    def __init__(self, expected: str, expected_ascii: str) -> None:
        self.expected = expected
        self.expected_ascii = expected_ascii

    def __call__(self, value: str) -> str:
        if GRAPH_ID.fullmatch(value):
            return value
        # Other scripts' digits ("١٢٣", "１２３"), which str.isdigit() and int() take, name no Graph object: no
        # lead would ever be routed by such an id, so it is refused as the webhooks refuse it.
        if _ANY_SCRIPT_DIGITS.fullmatch(value):
            raise ValidationError(self.expected_ascii)
        raise ValidationError(self.expected)


def _boolean() -> fields.Boolean:
    return _expecting(fields.Boolean(), _BOOLEAN_EXPECTED)


def _whole_number(low: int, high: int, expected: str) -> fields.Integer:
    return _expecting(fields.Integer(strict=True, validate=validate.Range(low, high, error=expected)), expected)


class SourceSchema(_TableSchema):
    """One `[sources.<slug>]` table; each refusal says what the key expects."""

    unknown_key_is = "a key a source takes"

    kind = _expecting(
        fields.String(required=True, validate=validate.OneOf(SOURCE_KINDS, error=_KIND_EXPECTED)), _KIND_EXPECTED
    )
    secret_env = _expecting(
        fields.String(validate=validate.Regexp(ENV_NAME_PATTERN, error=_SECRET_ENV_EXPECTED)), _SECRET_ENV_EXPECTED
    )
    source_id = _expecting(
        fields.String(validate=validate.Length(1, 255, error=_SOURCE_ID_EXPECTED)), _SOURCE_ID_EXPECTED
    )
    lead_cost = _expecting(fields.Float(validate=validate.Range(min=0, error=_LEAD_COST_EXPECTED)), _LEAD_COST_EXPECTED)
    field_map = _expecting(
        fields.Dict(
            keys=_expecting(
                fields.String(validate=validate.Length(1, 200, error=_FIELD_NAME_EXPECTED)), _FIELD_NAME_EXPECTED
            ),
            values=_expecting(fields.String(validate=_field_map_target), _FIELD_MAP_TARGET_EXPECTED),
        ),
        _FIELD_MAP_EXPECTED,
    )
    custom_fields = _expecting(
        fields.Dict(keys=_custom_key(), values=fields.Raw(validate=_custom_field_value)), _CUSTOM_FIELDS_EXPECTED
    )
    allowed_origins = _expecting(fields.List(WebOrigin()), _ORIGINS_EXPECTED)
    redirect_allowlist = _expecting(fields.List(_url()), _REDIRECTS_EXPECTED)
    thank_you_url = _url()
    honeypot_field = _expecting(fields.String(validate=_honeypot_field), _HONEYPOT_EXPECTED)
    double_submit_seconds = _whole_number(0, _YEAR_SECONDS, _DOUBLE_SUBMIT_EXPECTED)
    duplicate_window_days = _expecting(
        fields.Float(validate=validate.Range(min=0, max=365, error=_DUPLICATE_DAYS_EXPECTED)), _DUPLICATE_DAYS_EXPECTED
    )
    rate_limit_per_ip_per_min = _whole_number(1, _MAX_RATE, _PER_IP_EXPECTED)
    rate_limit_per_min = _whole_number(1, _MAX_RATE, _PER_FORM_EXPECTED)
    consent_keys = _expecting(fields.Nested(ConsentKeysSchema), _CONSENT_KEYS_EXPECTED)
    page_ids = _meta_ids("page", "102938475610293")
    form_ids = _meta_ids("form", "556677889900112")
    deliver_test_leads = _boolean()
    accept_external_id = _boolean()
    accept_null_origin = _boolean()
    consent_checkbox = _boolean()

    # Both checks run beside field errors (a table's every problem is listed at once) and read which keys
    # are present from the table as written, since a key with a bad value is absent from the loaded data.
    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_kind_needs(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        kind, given = data.get("kind"), _as_table(original)
        if kind is None:
            return  # an unknown kind is reported by itself: what it needs cannot be said
        problems: dict[str, list[str]] = {}
        if kind in ("api", "google") and not given.get("secret_env"):
            article = "an" if kind == "api" else "a"
            problems["secret_env"] = [f"{article} {kind} source needs secret_env (the variable holding its key)"]
        if kind == "facebook" and not (given.get("page_ids") or given.get("form_ids")):
            problems["page_ids"] = ["a facebook source needs page_ids or form_ids to route leads to it"]
        if kind == "form" and not given.get("allowed_origins"):
            problems["allowed_origins"] = ["a form source needs allowed_origins (the landing pages' origins)"]
        form_only = (
            "allowed_origins",
            "redirect_allowlist",
            "thank_you_url",
            "honeypot_field",
            "double_submit_seconds",
            "rate_limit_per_ip_per_min",
            "rate_limit_per_min",
            "accept_external_id",
            "accept_null_origin",
            "consent_checkbox",
        )
        for name in form_only:
            if name in given and kind != "form":
                problems[name] = [f"only form sources take {name}"]
        thank_you = data.get("thank_you_url")
        if thank_you and thank_you not in data.get("redirect_allowlist", []):
            problems["thank_you_url"] = ["thank_you_url must also be in redirect_allowlist"]
        if problems:
            raise ValidationError(problems)

    @validates_schema(skip_on_field_errors=False)
    def check_consent_keys_apart(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Two values under one customFields key: only one of them (a page URL, a client IP) would be sent.
        named: dict[str, list[str]] = {}
        for name, key in data.get("consent_keys", {}).items():
            named.setdefault(custom_field_key(key), []).append(name)
        shared = [f"{key} for {' and '.join(names)}" for key, names in named.items() if len(names) > 1]
        if shared:
            raise ValidationError(
                {"consent_keys": [f"expected a different customFields key for each, got {'; '.join(shared)}"]}
            )

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_keys_of_other_kinds(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        # Meta's ids route Meta leads to the one source that takes them; only Meta and Google send test leads.
        kind, given = data.get("kind"), _as_table(original)
        if kind is None:
            return
        problems = {
            name: [f"only {' and '.join(kinds)} sources take {name}"]
            for name, kinds in _KEYS_OF_KINDS.items()
            if name in given and kind not in kinds
        }
        if problems:
            raise ValidationError(problems)


def _as_table(original: Any) -> dict[str, Any]:
    return original if isinstance(original, dict) else {}


_TABLES_EXPECTED = "expected a [sources.<slug>] table for each source"


class SourcesFileSchema(Schema):
    """The whole file: `[sources.<slug>]` tables. Each table is checked apart (`validate_slug`, `SourceSchema`),
    so that one bad table neither hides the problems of another nor keeps the valid ones from being read."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "not a key of the sources file: expected only [sources.<slug>] tables"}

    sources = _expecting(fields.Dict(keys=fields.String(), values=fields.Raw(), required=True), _TABLES_EXPECTED)
