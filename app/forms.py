"""Public web-form intake: origin and rate checks, honeypot, consent and provenance, where to send the browser.

What a form post becomes (SPEC "Normalization", reference web-forms-and-normalization.md Part C):
- a browser on an origin the source does not list is refused (`OriginNotAllowedError`); a post without an
  `Origin` header (a server-side post) is not a browser's and passes;
- per client and per source, posts per minute are limited (`RateLimitedError` from the store's throttle);
- a filled honeypot keeps the lead as `spam`, out of delivery but visible to ops, and the poster gets the
  very answer a person would get (the status shows `queued`), so a bot learns nothing;
- consent text (or its id) and time, page URL, client IP, TrustedForm certificate and Jornaya LeadiD travel as
  customFields under the source's `consent_keys`; a submission cannot set those keys itself;
- the same phone to the same source within `double_submit_seconds` returns the first lead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.clock import Clock
from app.intake import Admission, Intake, InvalidLead
from app.models import LeadStatus
from app.schemas.customfields import custom_field_key
from app.schemas.fieldnames import resolve_field_name
from app.schemas.fields import reads_as_true
from app.schemas.forms import load_provenance
from app.schemas.leads import FLAG_FIELDS, collapse_repeated
from app.sources import LeadSource
from app.store.throttle import form_gate

logger = logging.getLogger(__name__)

REDIRECT_FIELD = "_redirect"
CONSENT_TEXT_FIELDS = ("tcpa_consent_text", "consent_text")
# The id of the consent text a page shows, for a page that posts it in place of the text itself.
CONSENT_TEXT_ID_FIELDS = ("tcpa_consent_id", "consent_text_id")
CONSENT_FIELD = "consent"
PAGE_URL_FIELD = "page_url"
TRUSTEDFORM_FIELD = "xxTrustedFormCertUrl"
LEADID_FIELD = "universal_leadid"
# Inputs the TrustedForm script adds besides the certificate URL: machinery, not lead data.
TRUSTEDFORM_MACHINERY_FIELDS = ("xxTrustedFormToken", "xxTrustedFormPingUrl")
# The inputs consent and provenance are read from: never lead fields of their own.
_CONSENT_INPUTS = frozenset(
    (*CONSENT_TEXT_FIELDS, *CONSENT_TEXT_ID_FIELDS, CONSENT_FIELD, PAGE_URL_FIELD, TRUSTEDFORM_FIELD, LEADID_FIELD)
).union(TRUSTEDFORM_MACHINERY_FIELDS)
PREFLIGHT_MAX_AGE_SECONDS = 600
ALLOWED_METHODS = "POST, OPTIONS"
IPV6_CLIENT_PREFIX = 64  # one household or host gets a whole /64: limit it as one client


# What a browser sends as `Origin` for a page that hides where it is (Referrer-Policy no-referrer, a sandboxed
# frame, a file).
HIDDEN_ORIGIN = "null"


class OriginNotAllowedError(Exception):
    """A browser on an origin the source does not list tried to post to it (or asked to); `hidden` when the page
    hid its origin (`Origin: null`) from a source that does not take such posts."""

    def __init__(self, message: str, *, hidden: bool = False) -> None:
        super().__init__(message)
        self.hidden = hidden


@dataclass(frozen=True)
class FormPost:
    """One form post as received: its fields, and what the request said about where it came from."""

    fields: Mapping[str, Any]
    origin: str | None = None
    referer: str | None = None
    client_ip: str | None = None
    wants_json: bool = False
    warnings: tuple[str, ...] = ()  # how its body had to be read (an encoding guessed)


@dataclass(frozen=True)
class FormReceipt:
    """What to answer: the lead, which a person who posted always sees as `queued` (a public form tells the
    poster nothing the relay knows about a phone: a honeypot catch, an earlier lead of the same person, an
    earlier post's progress), the post's own warnings, and where to send their browser (if anywhere)."""

    id: str
    warnings: tuple[str, ...]
    redirect_to: str | None = None


@dataclass(frozen=True)
class FormDesk:
    """What form intake needs: the intake and the clock."""

    intake: Intake
    clock: Clock


def submit_form(desk: FormDesk, source: LeadSource, post: FormPost) -> FormReceipt | InvalidLead:
    """Check, then accept one form post; raises `OriginNotAllowedError` or `RateLimitedError`."""
    check_origin(source, post.origin, native_post=True)
    now = desk.clock.now()
    gate = form_gate(
        source.slug,
        desk.intake.fingerprint_of(client_key(post.client_ip)),
        per_client=source.rate_limit_per_ip_per_min,
        per_source=source.rate_limit_per_min,
        now=now,
    )
    fields = dict(post.fields)
    is_spam = not _is_blank(fields.pop(source.honeypot_field, None))
    redirect_to, redirect_warnings = redirect_target(source, fields.get(REDIRECT_FIELD), post.wants_json)
    warnings = [*post.warnings, *redirect_warnings]
    provenance, provenance_warnings = consent_and_provenance(source, fields, post, now)
    warnings += provenance_warnings
    submitted, dropped = _submitted_fields(source, fields)
    warnings += dropped
    payload = {**provenance, **submitted}
    # Kept with the lead, not only answered: a native form post is answered with a redirect, so the status
    # API is where anyone learns that consent was not given or the page posts in a legacy encoding.
    read = tuple(warnings)
    if is_spam:
        # No double-submit key: a bot reusing a person's phone must not swallow that person's real post.
        admission = Admission(
            status=LeadStatus.SPAM, detail=f"honeypot filled on form {source.slug}", gate=gate, warnings=read
        )
    else:
        admission = Admission(dedupe_by_phone_seconds=source.double_submit_seconds, gate=gate, warnings=read)
    # The limits are counted as the lead is stored (one round trip), or alone when the post is refused.
    [result] = desk.intake.accept(source, [payload], admission)
    if isinstance(result, InvalidLead):
        return result
    if is_spam:
        logger.info("form post caught by the honeypot", extra={"lead_id": result.id, "source": source.slug})
    return FormReceipt(result.id, result.warnings, redirect_to)


def check_origin(source: LeadSource, origin: str | None, *, native_post: bool = False) -> None:
    """Pass a post without `Origin` (not from a browser) or from an allowed origin; else raise. A `native_post`
    with `Origin: null` passes too when the source accepts pages hiding their origin; a preflight never does:
    only a native post, which needs none, comes so from such a page."""
    if native_post and origin == HIDDEN_ORIGIN and source.accept_null_origin:
        return
    if origin is not None and not source.is_origin_allowed(origin):
        raise OriginNotAllowedError(f"origin not allowed for form {source.slug}", hidden=origin == HIDDEN_ORIGIN)


def cors_headers(source: LeadSource, origin: str | None) -> dict[str, str]:
    """Headers that let a script on an allowed origin read the answer (none for other origins)."""
    if origin is None or not source.is_origin_allowed(origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Retry-After, X-Request-ID"}


def preflight_headers(source: LeadSource, origin: str | None) -> dict[str, str]:
    """The answer to `OPTIONS`: a CORS preflight grant for an allowed origin; raises for other origins."""
    if origin is None:
        return {"Allow": ALLOWED_METHODS}  # not a preflight: plain OPTIONS
    check_origin(source, origin)
    return {
        **cors_headers(source, origin),
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
    }


def redirect_target(source: LeadSource, requested: Any, wants_json: bool) -> tuple[str | None, list[str]]:
    """Where to 303 a native form post: an allow-listed `_redirect`, else the source's thank-you page.

    A `_redirect` not on the allow-list is never followed (no open redirect), and warned about: the person is
    sent to the source's thank-you page instead (their lead was taken; the warning is kept with it for the
    page's author), or, for a source without one, answered with JSON. Script posts (`wants_json`) always get JSON.
    """
    if wants_json:
        return None, []
    warnings: list[str] = []
    requested = collapse_repeated(requested)  # a page's desktop and mobile copies of the input, one URL
    if not _is_blank(requested):
        if isinstance(requested, str) and source.is_redirect_allowed(requested.strip()):
            return requested.strip(), []
        warnings.append(f"{REDIRECT_FIELD}: expected a URL on the form's redirect allow-list; ignored")
    if source.thank_you_url and source.is_redirect_allowed(source.thank_you_url):
        return source.thank_you_url, warnings
    return None, warnings


def consent_and_provenance(
    source: LeadSource, fields: Mapping[str, Any], post: FormPost, now: float
) -> tuple[dict[str, Any], list[str]]:
    """customFields (under the source's consent keys) recording consent and where the lead came from.

    Consent is given by a ticked `consent` box, or, on a source without `consent_checkbox`, by posting a
    form that shows the consent text (the "by submitting you agree" pattern) with the text or its id. An
    unticked box records no consent; on a source with `consent_checkbox`, neither does a post without the box,
    which is what a browser sends for an unticked one. The text travels under the consent text key, else its id.
    """
    loaded, warnings = load_provenance(_provenance_inputs(fields, post))
    names = source.consent_keys
    out: dict[str, Any] = {}
    wording = loaded.get("consent_text", loaded.get("consent_text_id"))
    consented = loaded.get("consent", wording is not None and not source.consent_checkbox)
    if consented:
        if wording is not None:
            out[names.consent_text] = wording
        out[names.consent_at] = iso_utc(now)
    elif wording is not None or source.consent_checkbox:
        warnings.append(f"{CONSENT_FIELD}: not given; no consent is recorded with the lead")
    page_url = loaded.get("page_url", loaded.get("referer"))
    if page_url is not None:
        out[names.page_url] = page_url
    if post.client_ip:
        out[names.client_ip] = post.client_ip
    if "trustedform_cert_url" in loaded:
        out[names.trustedform_cert_url] = loaded["trustedform_cert_url"]
    if "jornaya_leadid" in loaded:
        out[names.jornaya_leadid] = loaded["jornaya_leadid"]
    return out, warnings


def _provenance_inputs(fields: Mapping[str, Any], post: FormPost) -> dict[str, Any]:
    """The raw consent and provenance values of a post, read the way browsers submit them.

    An input posted twice with one value (a page's desktop and mobile copies) is that value, as for lead
    fields. A repeated `consent` is ticked when any of its values is: a hidden default of the same name sits
    before the box (Rails' `check_box`: "0", then "1" when ticked) or after it (ASP.NET's `Html.CheckBox`:
    "true", then "false" always), and a page may carry a desktop and a mobile copy of the box, each with its
    hidden default; an unticked box sends only its defaults, whatever the layout.
    """
    page_url = collapse_repeated(fields.get(PAGE_URL_FIELD))
    consent = fields.get(CONSENT_FIELD)
    return {
        "consent_text": _first_filled(fields, CONSENT_TEXT_FIELDS),
        "consent_text_id": _first_filled(fields, CONSENT_TEXT_ID_FIELDS),
        "consent": _ticked_copy(consent) if isinstance(consent, list | tuple) and consent else consent,
        "page_url": None if _is_blank(page_url) else page_url,
        "Referer": post.referer if _is_blank(page_url) else None,
        TRUSTEDFORM_FIELD: collapse_repeated(fields.get(TRUSTEDFORM_FIELD)),
        LEADID_FIELD: collapse_repeated(fields.get(LEADID_FIELD)),
    }


def _first_filled(fields: Mapping[str, Any], names: Sequence[str]) -> Any:
    """The value of the first of `names` posted not blank (an input posted twice with one value as that value)."""
    values = (collapse_repeated(fields.get(name)) for name in names)
    return next((value for value in values if not _is_blank(value)), None)


def _ticked_copy(values: Sequence[Any]) -> Any:
    """Of a checkbox's posted values, one that reads as ticked, else the last (read, and warned about, as such)."""
    return next((value for value in values if reads_as_true(value)), values[-1])


def ip_without_port(address: str | None) -> str | None:
    """The IP of a client address given as `ip:port` or `[v6]:port`, as some proxies write X-Forwarded-For
    hops (Azure Application Gateway); any other address, an IP or not, is returned as given."""
    if not address or _is_ip(address):
        return address
    if address.startswith("["):
        host, bracket, port = address[1:].partition("]")
        port = port.removeprefix(":") if bracket else "?"
    else:
        host, _, port = address.rpartition(":")
    if (not port or port.isdigit()) and _is_ip(host):
        return host
    return address


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_key(client_ip: str | None) -> str:
    """The client a per-IP limit counts: the IPv4 address, or the IPv6 /64 network."""
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


def iso_utc(epoch_seconds: float) -> str:
    """`2027-01-15T08:00:00Z`: ISO 8601 in UTC, to the second."""
    moment = dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _submitted_fields(source: LeadSource, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The post's lead fields, and warnings for what was left out: the inputs consent and provenance came
    from, any value of its own under a consent key (as a field or inside its `customFields`), which only the
    relay sets, and an `externalId` unless the source accepts one (careCycle updates the customer it names).
    Names are compared as they would be stored (`custom_field_key`): padding a name does not get it through.
    A yes/no field posted more than once is a checkbox beside its hidden defaults: ticked when any value is.
    """
    forwarded = source.consent_keys.every_key
    kept: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in fields.items():
        if custom_field_key(name) in forwarded or name in _CONSENT_INPUTS:
            continue
        resolved = resolve_field_name(name, source.field_map)
        target = resolved[0] if resolved else None
        if target == "externalId" and not source.accept_external_id:
            warnings.append("externalId: not taken from a form post; the relay's lead id is sent instead")
            continue
        if target == "customFields":
            value = _without_keys(value, forwarded)
        elif target in FLAG_FIELDS and isinstance(value, list | tuple) and value:
            value = _ticked_copy(value)  # a checkbox posted with its hidden default, as `consent` is
        kept[name] = value
    return kept, warnings


def _without_keys(custom: Any, reserved: frozenset[str]) -> Any:
    """A submission's own customFields (a {key: value} object or careCycle's item list) minus `reserved` keys."""
    if isinstance(custom, Mapping) and "fieldKey" not in custom:
        return {key: value for key, value in custom.items() if custom_field_key(key) not in reserved}
    if isinstance(custom, list):
        return [item for item in custom if not _is_reserved_item(item, reserved)]
    if _is_reserved_item(custom, reserved):
        return None
    return custom


def _is_reserved_item(item: Any, reserved: frozenset[str]) -> bool:
    return isinstance(item, Mapping) and custom_field_key(item.get("fieldKey")) in reserved


def _is_blank(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_is_blank(item) for item in value)
    return value is None or (isinstance(value, str) and not value.strip())
