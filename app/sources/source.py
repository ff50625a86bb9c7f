"""A lead source: who may send leads, how their fields map, and the careCycle settings their leads carry."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.schemas.customfields import custom_field_key
from app.schemas.google import ATTRIBUTION_KEYS as GOOGLE_ATTRIBUTION_KEYS
from app.schemas.meta import META_PROVENANCE_KEYS

DEFAULT_DOUBLE_SUBMIT_SECONDS = 600
DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN = 10
DEFAULT_FORM_RATE_LIMIT_PER_MIN = 600
DEFAULT_HONEYPOT_FIELD = "company_website"


class SourceKind(enum.StrEnum):
    API = "api"
    FORM = "form"
    FACEBOOK = "facebook"
    GOOGLE = "google"


@dataclass(frozen=True)
class ConsentKeys:
    """careCycle customFields keys under which consent and provenance travel."""

    consent_text: str = "tcpa_consent_text"
    consent_at: str = "tcpa_consent_at"
    page_url: str = "page_url"
    client_ip: str = "client_ip"
    trustedform_cert_url: str = "trustedform_cert_url"
    jornaya_leadid: str = "jornaya_leadid"

    @functools.cached_property
    def every_key(self) -> frozenset[str]:
        """Every one of these keys: values only the relay sets."""
        return frozenset(dataclasses.astuple(self))


@dataclass(frozen=True)
class LeadSource:
    """One configured source of leads."""

    slug: str
    kind: SourceKind = SourceKind.API
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    source_id: str | None = None
    lead_cost: float | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    static_custom_fields: Mapping[str, Any] = field(default_factory=dict)
    allowed_origins: tuple[str, ...] = ()
    redirect_allowlist: tuple[str, ...] = ()
    thank_you_url: str | None = None
    honeypot_field: str = DEFAULT_HONEYPOT_FIELD
    double_submit_seconds: int = DEFAULT_DOUBLE_SUBMIT_SECONDS
    duplicate_window_seconds: int = 0
    rate_limit_per_ip_per_min: int = DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN
    rate_limit_per_min: int = DEFAULT_FORM_RATE_LIMIT_PER_MIN
    consent_keys: ConsentKeys = field(default_factory=ConsentKeys)
    page_ids: tuple[str, ...] = ()
    form_ids: tuple[str, ...] = ()
    deliver_test_leads: bool = False
    # Forms: whether a post may name its own externalId. careCycle updates the customer an externalId names,
    # so on a public form only the pages that really carry a CRM id should be trusted with one.
    accept_external_id: bool = False
    # Forms: whether a post whose Origin is `null` is taken. A browser sends that for a native form post from a
    # page whose Referrer-Policy is no-referrer (and from a sandboxed frame or a file), so such a page can only
    # post to a source that accepts it; any other site's page could post so too, which the rate limits and the
    # honeypot answer, as they answer a post made outside a browser.
    accept_null_origin: bool = False
    # Forms: whether the page asks for consent with a `consent` checkbox. A browser sends nothing for an
    # unticked box, so on such a page a post without the field is consent not given.
    consent_checkbox: bool = False

    @functools.cached_property
    def secrets(self) -> tuple[str, ...]:
        """Every key valid for this source: its variable may hold several, comma-separated, for rotation."""
        return tuple(part.strip() for part in (self.secret or "").split(",") if part.strip())

    def is_origin_allowed(self, origin: str | None) -> bool:
        """True when a browser on `origin` may post to this (form) source."""
        return origin is not None and origin.rstrip("/") in self.allowed_origins

    def is_redirect_allowed(self, url: str) -> bool:
        """True when `url` is on the source's thank-you allow-list (exact match)."""
        return url in self.redirect_allowlist

    @functools.cached_property
    def relay_custom_keys(self) -> frozenset[str]:
        """The customFields keys the relay itself fills on this source's leads (consent, provenance and
        attribution)."""
        if self.kind is SourceKind.FORM:
            keys: Collection[str] = self.consent_keys.every_key
        elif self.kind is SourceKind.FACEBOOK:
            keys = (self.consent_keys.consent_at, *META_PROVENANCE_KEYS)
        elif self.kind is SourceKind.GOOGLE:
            keys = tuple(GOOGLE_ATTRIBUTION_KEYS.values())
        else:
            keys = ()
        return frozenset(custom_field_key(key) for key in keys)

    @functools.cached_property
    def kept_custom_keys(self) -> frozenset[str]:
        """The customFields keys never dropped for careCycle's cap: the relay's own, and every consent key
        (an API partner may send consent under them)."""
        return self.relay_custom_keys | {custom_field_key(key) for key in self.consent_keys.every_key}
