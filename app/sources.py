"""Lead sources: who may send leads, how their fields map, and the careCycle settings their leads carry.

Sources come from the TOML file named by `LEADRELAY_SOURCES` (see deploy/sources.example.toml), plus
plain API sources named in `LEADRELAY_SOURCE_KEYS`. Secrets are never in the file: each source names
the environment variable that holds its key.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from app.config import ConfigError, Settings
from app.schemas.carecycle import MAX_CUSTOM_FIELDS
from app.schemas.customfields import custom_field_key
from app.schemas.google import ATTRIBUTION_KEYS as GOOGLE_ATTRIBUTION_KEYS
from app.schemas.meta import META_PROVENANCE_KEYS
from app.schemas.sources import SLUG_PATTERN, SourceSchema, SourcesFileSchema, validate_slug

DEFAULT_DOUBLE_SUBMIT_SECONDS = 600
DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN = 10
DEFAULT_FORM_RATE_LIMIT_PER_MIN = 600
DEFAULT_HONEYPOT_FIELD = "company_website"
# Google copies a form's key into every body, and nothing else authenticates a lead (reference §4); its FAQ
# tells advertisers whose system has no key to enter a dummy such as `123`, which anyone could guess.
MIN_GOOGLE_KEY_CHARS = 16
SECONDS_PER_DAY = 86400


class UnknownSourceError(LookupError):
    """No configured source matches a slug or credential."""


class SourcesError(ConfigError):
    """The sources file cannot be used; `problems` lists every reason, each naming where."""


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


class SourceRegistry:
    """Looks sources up by slug, by API key, and by Meta page or form id."""

    def __init__(self, sources: Iterable[LeadSource]) -> None:
        self._by_slug = {source.slug: source for source in sources}
        self._by_key = {secret: s for s in self._by_slug.values() if s.kind is SourceKind.API for secret in s.secrets}
        self._api_keys = {secret: source.slug for secret, source in self._by_key.items()}
        facebook = [s for s in self._by_slug.values() if s.kind is SourceKind.FACEBOOK]
        self._by_form = {form_id: s for s in facebook for form_id in s.form_ids}
        self._by_page = {page_id: s for s in facebook for page_id in s.page_ids}

    def __iter__(self) -> Any:
        return iter(self._by_slug.values())

    @property
    def api_keys(self) -> Mapping[str, str]:
        """API secret -> source slug, for credential matching."""
        return self._api_keys

    @property
    def person_memory_seconds(self) -> int:
        """How long intake must remember a phone: the longest duplicate window of any source."""
        return max((s.duplicate_window_seconds for s in self._by_slug.values()), default=0)

    def by_slug(self, slug: str, kind: SourceKind | None = None) -> LeadSource:
        """The source named `slug` (of `kind`, when given); raises `UnknownSourceError`."""
        source = self._by_slug.get(slug)
        if source is None or (kind is not None and source.kind is not kind):
            raise UnknownSourceError(f"no {kind or ''} source named {slug!r}".replace("  ", " "))
        return source

    def by_meta_ids(self, page_id: str | None, form_id: str | None) -> LeadSource:
        """The facebook source for a lead form (preferred) or page; raises `UnknownSourceError`."""
        source = self._by_form.get(form_id or "") or self._by_page.get(page_id or "")
        if source is None:
            raise UnknownSourceError("no facebook source for this page or form")
        return source


def load_configured_sources(settings: Settings) -> SourceRegistry:
    """The sources the settings name: the sources file, the API keys, none holding an ops token, and no
    duplicate window longer than leads are kept; raises `SourcesError` listing every problem."""
    sources, problems = check_configured_sources(settings)
    if problems:
        raise SourcesError(problems)
    return SourceRegistry(sources)


def check_configured_sources(settings: Settings) -> tuple[list[LeadSource], list[str]]:
    """The sources the settings name and every problem `load_configured_sources` refuses them for. With problems,
    the sources (those of a readable kind) are only for more checks, such as the settings their kinds need."""
    sources, problems = _read_sources(
        settings.leadrelay_sources,
        settings.environ,
        settings.leadrelay_source_keys,
        ops_tokens=settings.leadrelay_ops_tokens,
    )
    return sources, problems + _windows_past_retention(sources, settings)


def load_sources(
    path: str | None,
    environ: Mapping[str, str],
    api_keys: Mapping[str, str],
    *,
    ops_tokens: Collection[str] = (),
) -> SourceRegistry:
    """Sources from the file at `path` (if any) plus `api_keys` (secret -> slug); raises `SourcesError`
    listing every problem."""
    sources, problems = _read_sources(path, environ, api_keys, ops_tokens=ops_tokens)
    if problems:
        raise SourcesError(problems)
    return SourceRegistry(sources)


def _read_sources(
    path: str | None,
    environ: Mapping[str, str],
    api_keys: Mapping[str, str],
    *,
    ops_tokens: Collection[str] = (),
) -> tuple[list[LeadSource], list[str]]:
    """The sources of `api_keys` (secret -> slug) and of the file at `path` (if any), and every problem found:
    each table's in file order, then those between sources. With problems, the sources are only for more checks.

    A source secret that is also one of `ops_tokens` is refused: whoever holds the source's key could
    then read every lead's status and re-queue leads.
    """
    # Several keys may name one source (a new key beside the old one while clients move over).
    keys_by_slug: dict[str, list[str]] = {}
    for secret, slug in api_keys.items():
        keys_by_slug.setdefault(slug, []).append(secret)
    sources = [LeadSource(slug=slug, secret=",".join(secrets)) for slug, secrets in keys_by_slug.items()]
    problems: list[str] = [
        # By position, not by name: a pair written the wrong way round (secret=name) would show its secret.
        f"LEADRELAY_SOURCE_KEYS: the name of source {position} of {len(keys_by_slug)} is {_SLUG_EXPECTED}"
        for position, slug in enumerate(keys_by_slug, start=1)
        if not SLUG_PATTERN.match(slug)  # as the file's tables: a metrics label, a status filter, a path segment
    ]
    if path:
        from_file, problems = _read_sources_file(path, environ)
        sources += from_file
    slugs = [s.slug for s in sources]
    repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    problems += [f"sources.{slug}: defined twice (file and LEADRELAY_SOURCE_KEYS)" for slug in repeated]
    problems += _routing_clashes(sources)  # across the file and LEADRELAY_SOURCE_KEYS
    shared = [source.slug for source in sources if any(secret in ops_tokens for secret in source.secrets)]
    problems += [f"sources.{slug}: a secret of this source is also an ops token" for slug in shared]
    return sources, problems


_SLUG_EXPECTED = "not a slug: expected lowercase letters, digits, - and _ (at most 63), as a sources file's"


def _windows_past_retention(sources: list[LeadSource], settings: Settings) -> list[str]:
    """A problem for each window longer than leads are kept."""
    # A repeat is recognized by the earlier lead it names: once that lead is purged, the same phone would
    # be delivered (and billed) again inside the window.
    # The same goes for a double submission, which is answered with the earlier lead: once that is purged,
    # the new submission would be answered for a lead no longer held, and not taken in.
    limit = f"must not exceed LEADRELAY_RETENTION_DAYS ({settings.leadrelay_retention_days:g})"
    return [
        f"sources.{source.slug}.{name}: {limit}"
        for source in sources
        for name, seconds in (
            ("duplicate_window_days", source.duplicate_window_seconds),
            ("double_submit_seconds", source.double_submit_seconds),
        )
        if seconds > settings.retention_seconds()
    ]


def _read_sources_file(path: str, environ: Mapping[str, str]) -> tuple[list[LeadSource], list[str]]:
    """The sources of one TOML file, and every problem of the file and its tables.

    Each `[sources.<slug>]` table is checked on its own, so one bad table does not hide another's problems.
    A table with problems still yields a source of its valid keys (with a readable kind), so that the checks
    between sources (a secret or Meta id used twice, windows past retention) see it too; such a source is
    never used, as the problems stop the process.
    """
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        return [], [f"LEADRELAY_SOURCES: cannot read {path}: {exc.strerror}"]
    except tomllib.TOMLDecodeError as exc:
        return [], [f"LEADRELAY_SOURCES: {path} is not valid TOML: {exc}"]
    except UnicodeDecodeError:
        return [], [f"LEADRELAY_SOURCES: {path} is not UTF-8 text (TOML files are)"]
    problems: list[str] = []
    try:
        tables: dict[str, Any] = SourcesFileSchema().load(raw)["sources"]
    except ValidationError as exc:
        problems += _flatten(exc.normalized_messages())  # type: ignore[no-untyped-call]
        tables = exc.valid_data.get("sources", {}) if isinstance(exc.valid_data, dict) else {}
    sources = []
    for slug, table in tables.items():
        loaded, found = _load_table(slug, table)
        problems += found
        if loaded is not None:
            sources.append(_source(slug, loaded, environ, problems))
    problems += _short_google_keys(sources)
    problems += _custom_fields_without_room(sources)
    return sources, problems


def _load_table(slug: str, table: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """One `[sources.<slug>]` table's valid keys (None without a valid kind) and its problems: its slug's,
    then its keys'."""
    where = f"sources.{slug}"
    found: list[str] = []
    try:
        validate_slug(slug)
    except ValidationError as exc:
        found += _flatten(exc.messages, where)
    try:
        return SourceSchema().load(table), found
    except ValidationError as exc:
        found += _flatten(exc.normalized_messages(), where)  # type: ignore[no-untyped-call]
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return (valid if "kind" in valid else None), found


def _source(slug: str, table: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> LeadSource:
    secret = None
    if table.get("secret_env"):
        secret = environ.get(table["secret_env"]) or None
        if secret is None:
            problems.append(f"sources.{slug}.secret_env: environment variable {table['secret_env']} is not set")
    days = table.get("duplicate_window_days", 0)
    defaults = ConsentKeys()
    return LeadSource(
        slug=slug,
        kind=SourceKind(table["kind"]),
        secret=secret,
        secret_env=table.get("secret_env"),
        source_id=table.get("source_id"),
        lead_cost=table.get("lead_cost"),
        field_map=table.get("field_map", {}),
        static_custom_fields=table.get("custom_fields", {}),
        allowed_origins=tuple(table.get("allowed_origins", [])),
        redirect_allowlist=tuple(table.get("redirect_allowlist", [])),
        thank_you_url=table.get("thank_you_url"),
        honeypot_field=table.get("honeypot_field", DEFAULT_HONEYPOT_FIELD),
        double_submit_seconds=table.get("double_submit_seconds", DEFAULT_DOUBLE_SUBMIT_SECONDS),
        duplicate_window_seconds=int(days * SECONDS_PER_DAY),
        rate_limit_per_ip_per_min=table.get("rate_limit_per_ip_per_min", DEFAULT_FORM_RATE_LIMIT_PER_IP_PER_MIN),
        rate_limit_per_min=table.get("rate_limit_per_min", DEFAULT_FORM_RATE_LIMIT_PER_MIN),
        consent_keys=ConsentKeys(**table["consent_keys"]) if "consent_keys" in table else defaults,
        page_ids=tuple(table.get("page_ids", [])),
        form_ids=tuple(table.get("form_ids", [])),
        deliver_test_leads=table.get("deliver_test_leads", False),
        accept_external_id=table.get("accept_external_id", False),
        accept_null_origin=table.get("accept_null_origin", False),
        consent_checkbox=table.get("consent_checkbox", False),
    )


def _short_google_keys(sources: list[LeadSource]) -> list[str]:
    """A problem for each google source holding a key (any of its comma-separated ones) too short to be secret;
    the key itself is never shown."""
    return [
        f"sources.{source.slug}.secret_env: {source.secret_env} holds a key of fewer than {MIN_GOOGLE_KEY_CHARS}"
        f" characters; expected a long random key, at least {MIN_GOOGLE_KEY_CHARS} characters, not a placeholder"
        " such as 123"
        for source in sources
        if source.kind is SourceKind.GOOGLE and any(len(key) < MIN_GOOGLE_KEY_CHARS for key in source.secrets)
    ]


def _custom_fields_without_room(sources: list[LeadSource]) -> list[str]:
    """A problem for each source whose static custom_fields leave too little of careCycle's cap for the consent
    and provenance the relay adds to its leads: every lead would lose either those or static fields."""
    problems = []
    for source in sources:
        static = {custom_field_key(key) for key in source.static_custom_fields}
        allowed = MAX_CUSTOM_FIELDS - len(source.relay_custom_keys - static)
        if len(static) > allowed:
            problems.append(
                f"sources.{source.slug}.custom_fields: expected at most {allowed} items; careCycle takes"
                f" {MAX_CUSTOM_FIELDS} customFields and a {source.kind} source's leads carry"
                f" {len(source.relay_custom_keys)} of their own for consent, provenance and attribution"
                f" ({', '.join(sorted(source.relay_custom_keys))})"
            )
    return problems


def _routing_clashes(sources: list[LeadSource]) -> list[str]:
    problems = []
    for attribute in ("page_ids", "form_ids", "secrets"):
        owners: dict[str, str] = {}
        for source in sources:
            for value in getattr(source, attribute):
                if value in owners:
                    shown = "the same secret" if attribute == "secrets" else value
                    problems.append(f"sources.{source.slug}.{attribute}: {shown} is also used by {owners[value]}")
                owners[value] = source.slug
    return problems


def _flatten(messages: Any, where: str = "") -> list[str]:
    """marshmallow's nested messages as `sources.<slug>.<key>: message` lines."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            # A Dict field nests its entries' errors under "key" (the slug) and "value" (the table).
            inner = where if key in ("key", "value") else (f"{where}.{key}" if where else str(key))
            lines += _flatten(value, inner)
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{where}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, where)]
    return [f"{where}: {messages}"]
