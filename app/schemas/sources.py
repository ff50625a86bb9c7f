"""The sources file's shape: one table per source under `[sources.<slug>]`, every key checked."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import idna
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.schemas.carecycle import MAX_CUSTOM_FIELD_KEY_CHARS, contract_length
from app.schemas.customfields import configured_value_problem, custom_field_key
from app.schemas.fields import clean_text

SOURCE_KINDS = ("api", "form", "facebook", "google")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")

validate_slug = validate.Regexp(SLUG_PATTERN, error="expected a slug: lowercase letters, digits, - and _")
_http_url = validate.URL(schemes={"http", "https"}, require_tld=False)


_YEAR_SECONDS = 365 * 86400  # Redis refuses expiry times past its range: a window this long is a typo anyway
_MAX_RATE = 10**9
_KEYS_OF_KINDS = {
    "page_ids": ("facebook",),
    "form_ids": ("facebook",),
    "deliver_test_leads": ("facebook", "google"),
}


_DEFAULT_PORTS = {"http": 80, "https": 443}


class WebOrigin(fields.String):
    """A landing page's origin, as a browser writes it in `Origin`: `scheme://host[:port]`, scheme and host
    in lower case (an IDN host in punycode), no default port. Written any other way it would match no
    browser's post, so every post from the page would be refused: it is normalized here, and a value with
    a path, query, fragment or credentials (not an origin at all), or with a wildcard, is refused."""

    default_error_messages = {
        # marshmallow's own refusal of a value that is not text, which gives no input to show
        "invalid": 'expected an origin as text, such as "https://landing.example.com"',
        "not_origin": "expected an origin such as https://landing.example.com (scheme, host and port only: "
        "no path, query or fragment), got {input!r}",
        "wildcard": "expected each landing page's origin in full, such as https://landing.example.com (no "
        "wildcards: list every origin), got {input!r}",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "*" in text:  # a host named so is a valid URL's, but an allowed origin is compared whole
            raise self.make_error("wildcard", input=text[:200])
        origin = browser_origin(text)
        if origin is None:
            raise self.make_error("not_origin", input=text[:200])
        return origin


def _ascii_host(host: str) -> str:
    """A host as browsers send it: a name in UTS #46 punycode (`straße.de` is `xn--strae-oqa.de`, where
    Python's own IDNA 2003 codec would write `strasse.de`), an IP address or ASCII name in lower case."""
    if host.isascii() or ":" in host:
        return host.lower()
    return idna.encode(host, uts46=True).decode("ascii")


def browser_origin(text: str) -> str | None:
    """`text` serialized as browsers serialize an origin, or None when it is no http(s) origin."""
    if any(ch.isspace() for ch in text) or "?" in text or "#" in text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
        host = _ascii_host(parts.hostname or "")
    except (ValueError, UnicodeError):  # a malformed IPv6 host or port; a host IDNA cannot encode
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or parts.path not in ("", "/"):
        return None
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{shown_host}{shown_port}"


def _fits_custom_field_key(name: str) -> bool:
    """Whether careCycle takes `name`, as intake cleans it, as a customFields key: 1 to 100 characters as careCycle
    counts them (an emoji is 2). Any other would be dropped, or cut, with a warning on every lead."""
    return 1 <= contract_length(clean_text(name)) <= MAX_CUSTOM_FIELD_KEY_CHARS


def _configured_custom_key(key: str) -> None:
    if not _fits_custom_field_key(key):
        raise ValidationError(
            f"expected a customFields key of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS} characters"
            " (careCycle counts an emoji as 2)"
        )


def _field_map_target(target: str) -> None:
    # Any name other than a careCycle field or an alias of one becomes a customFields key.
    if not _fits_custom_field_key(target):
        raise ValidationError(
            f"expected a careCycle field, an alias of one, a customFields key of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS}"
            " characters, or a name starting with _ (drops the field)"
        )


def _custom_field_value(value: Any) -> None:
    problem = configured_value_problem(value)
    if problem is not None:
        raise ValidationError(problem)


class ConsentKeysSchema(Schema):
    """careCycle customFields keys under which consent and provenance are forwarded."""

    class Meta:
        unknown = RAISE

    consent_text = fields.String(load_default="tcpa_consent_text", validate=_configured_custom_key)
    consent_at = fields.String(load_default="tcpa_consent_at", validate=_configured_custom_key)
    page_url = fields.String(load_default="page_url", validate=_configured_custom_key)
    client_ip = fields.String(load_default="client_ip", validate=_configured_custom_key)
    trustedform_cert_url = fields.String(load_default="trustedform_cert_url", validate=_configured_custom_key)
    jornaya_leadid = fields.String(load_default="jornaya_leadid", validate=_configured_custom_key)


class SourceSchema(Schema):
    """One `[sources.<slug>]` table."""

    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(SOURCE_KINDS))
    secret_env = fields.String(
        validate=validate.Regexp(ENV_NAME_PATTERN, error="expected an environment variable name, e.g. ACME_API_KEY")
    )
    source_id = fields.String(validate=validate.Length(1, 255))
    lead_cost = fields.Float(validate=validate.Range(min=0))
    field_map = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 200)), values=fields.String(validate=_field_map_target)
    )
    custom_fields = fields.Dict(
        keys=fields.String(validate=_configured_custom_key), values=fields.Raw(validate=_custom_field_value)
    )
    allowed_origins = fields.List(WebOrigin())
    redirect_allowlist = fields.List(fields.String(validate=_http_url))
    thank_you_url = fields.String(validate=_http_url)
    honeypot_field = fields.String(validate=_configured_custom_key)
    double_submit_seconds = fields.Integer(strict=True, validate=validate.Range(min=0, max=_YEAR_SECONDS))
    duplicate_window_days = fields.Float(validate=validate.Range(min=0, max=365))
    rate_limit_per_ip_per_min = fields.Integer(strict=True, validate=validate.Range(min=1, max=_MAX_RATE))
    rate_limit_per_min = fields.Integer(strict=True, validate=validate.Range(min=1, max=_MAX_RATE))
    consent_keys = fields.Nested(ConsentKeysSchema)
    page_ids = fields.List(fields.String(validate=validate.Regexp(r"^\d{1,30}$", error="expected a numeric page id")))
    form_ids = fields.List(fields.String(validate=validate.Regexp(r"^\d{1,30}$", error="expected a numeric form id")))
    deliver_test_leads = fields.Boolean()
    accept_external_id = fields.Boolean()
    accept_null_origin = fields.Boolean()
    consent_checkbox = fields.Boolean()

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


class SourcesFileSchema(Schema):
    """The whole file: `[sources.<slug>]` tables. Each table is checked apart (`validate_slug`, `SourceSchema`),
    so that one bad table neither hides the problems of another nor keeps the valid ones from being read."""

    class Meta:
        unknown = RAISE

    sources = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
