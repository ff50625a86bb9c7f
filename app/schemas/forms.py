"""Consent and provenance a form post carries, validated and normalized; a bad value is dropped with a warning.

Names are the inbound ones (what landing pages and the TrustedForm / Jornaya scripts put in the form), so a
warning names the field the page author has to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError

from app.schemas.contractfields import contract_length, cut_to_contract_length
from app.schemas.fields import LooseBool, NormalizingField, TrimmedString, clean_text, field_messages

TRUSTEDFORM_DOMAIN = "trustedform.com"
MAX_URL_CHARS = 2048
# Long enough for any TCPA disclosure; careCycle custom values are cut to 255 later (with a warning),
# which is why pages should post a consent text id (`consent_text_id` below) where they have one.
MAX_CONSENT_TEXT_CHARS = 5000
# An id naming the consent text the page shows travels in its place, within careCycle's 255 characters.
MAX_CONSENT_TEXT_ID_CHARS = 255
# A longer text (or id) is cut to its limit, with a warning, never dropped: the lead consented, and dropping the
# wording would drop the consent of a page that shows it on submit.
_CONSENT_WORDING_LIMITS = {"consent_text": MAX_CONSENT_TEXT_CHARS, "consent_text_id": MAX_CONSENT_TEXT_ID_CHARS}
_LEADID_TOKEN = re.compile(r"^[A-Za-z0-9-]{8,100}$")
# A host name as DNS spells it. urlsplit takes everything before the first "/" as the host, where browsers and
# requests end it at a backslash too: "https://evil.example\x.trustedform.com" ends in trustedform.com for
# urlsplit and leads to evil.example for them. A host holding any other character is not taken.
_DNS_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


class WebUrl(NormalizingField[str]):
    """An absolute http(s) URL with a host, at most 2048 characters, no whitespace."""

    expected = "an http or https URL"
    max_input_chars = None  # checked below against MAX_URL_CHARS; splitting a URL is linear

    def _normalize(self, value: Any) -> str:
        text = self._text(value)
        if len(text) > MAX_URL_CHARS or any(ch.isspace() for ch in text):
            raise self.make_error("invalid")
        try:
            parts = urlsplit(text)
            _ = parts.port  # reading it checks it
        except ValueError:  # a malformed IPv6 host or an out-of-range port
            raise self.make_error("invalid") from None
        if not parts.hostname or not self.is_acceptable(parts):
            raise self.make_error("invalid")
        return text

    def is_acceptable(self, parts: SplitResult) -> bool:
        """True when a URL that parsed, with a host, is one this field takes."""
        return parts.scheme.lower() in ("http", "https")


class TrustedFormCertUrl(WebUrl):
    """A TrustedForm certificate URL: https, on trustedform.com or a subdomain, without credentials."""

    expected = "an https URL on trustedform.com"

    def is_acceptable(self, parts: SplitResult) -> bool:
        host = (parts.hostname or "").rstrip(".")
        on_trustedform = host == TRUSTEDFORM_DOMAIN or host.endswith("." + TRUSTEDFORM_DOMAIN)
        plain = _DNS_HOST.fullmatch(host) is not None and "@" not in parts.netloc
        return parts.scheme.lower() == "https" and on_trustedform and plain


class LeadIdToken(NormalizingField[str]):
    """A Jornaya LeadiD token (a UUID-like string of letters, digits and hyphens)."""

    expected = "a Jornaya LeadiD token (letters, digits and hyphens)"

    def _normalize(self, value: Any) -> str:
        text = self._text(value)
        if not _LEADID_TOKEN.match(text):
            raise self.make_error("invalid")
        return text


class FormProvenanceSchema(Schema):
    """What a form post says about consent and its origin, keyed by the inbound field names."""

    class Meta:
        unknown = EXCLUDE

    consent_text = TrimmedString(MAX_CONSENT_TEXT_CHARS)
    consent_text_id = TrimmedString(MAX_CONSENT_TEXT_ID_CHARS)
    consent = LooseBool()
    page_url = WebUrl()
    # The page's URL as the browser's Referer header gives it, read when the post has no page_url field: a
    # warning about it names the header, which the page author did not write, not a field the page lacks.
    referer = WebUrl(data_key="Referer")
    trustedform_cert_url = TrustedFormCertUrl(data_key="xxTrustedFormCertUrl")
    jornaya_leadid = LeadIdToken(data_key="universal_leadid")


_SCHEMA = FormProvenanceSchema()


def load_provenance(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The usable consent and provenance values (blank ones left out), and a warning per dropped value."""
    warnings: list[str] = []
    given = {name: value for name, value in raw.items() if value is not None}
    if not given:
        return {}, warnings  # most posts: no consent box, no TrustedForm or LeadiD, no page URL
    for name, limit in _CONSENT_WORDING_LIMITS.items():
        if isinstance(given.get(name), str):
            given[name] = _within_limit(name, given[name], limit, warnings)
    try:
        # `partial`: no field is required; the ones not given need no visit.
        loaded: dict[str, Any] = _SCHEMA.load(given, partial=True)
    except ValidationError as exc:
        loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        warnings += field_messages(messages)
    return {name: value for name, value in loaded.items() if value is not None}, warnings


def _within_limit(name: str, text: str, limit: int, warnings: list[str]) -> str:
    """`text` cut to `limit` characters (as cleaned and counted by careCycle), with a warning naming the field
    `name` when it was longer; the text as given otherwise."""
    cleaned = clean_text(text)
    if contract_length(cleaned) <= limit:
        return text
    warnings.append(f"{name}: expected at most {limit} characters; cut")
    return cut_to_contract_length(cleaned, limit)
