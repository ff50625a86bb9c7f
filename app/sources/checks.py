"""Problems a set of sources is refused for, found across sources: each names the table at fault."""

from __future__ import annotations

from app.config import Settings
from app.credentials import MIN_SECRET_CHARS
from app.schemas.carecycle import MAX_CUSTOM_FIELDS
from app.schemas.customfields import custom_field_key
from app.sources.source import LeadSource, SourceKind

# Google copies a form's key into every body, and nothing else authenticates a lead (reference §4); its FAQ
# tells advertisers whose system has no key to enter a dummy such as `123`, which anyone could guess.
_PLACEHOLDER_HINT = {SourceKind.GOOGLE: ", not a placeholder such as 123"}


def windows_past_retention(sources: list[LeadSource], settings: Settings) -> list[str]:
    """A problem for each window longer than leads are kept."""
    # A repeat is recognized by the earlier lead it names: once that lead is purged, the same phone would
    # be delivered (and billed) again inside the window.
    # The same goes for a double submission, which is answered with the earlier lead: once that is purged,
    # the new submission would be answered for a lead no longer held, and not taken in. Only form posts are
    # answered so (no other kind takes the key, whose default they must not be held to).
    days = settings.leadrelay_retention_days
    # Each key's bound in its own unit: "30" beside a double_submit_seconds of 3000000 would read as no bound at all.
    expected = {
        "duplicate_window_days": f"expected at most {days:g} (days)",
        "double_submit_seconds": f"expected at most {settings.retention_seconds()} (seconds)",
    }
    return [
        f"sources.{source.slug}.{name}: must not exceed LEADRELAY_RETENTION_DAYS={days:g}: {expected[name]}"
        for source in sources
        for name, seconds in _windows(source)
        if seconds > settings.retention_seconds()
    ]


def _windows(source: LeadSource) -> list[tuple[str, int]]:
    """The key of each window a source's leads are held to, with its length in seconds."""
    windows = [("duplicate_window_days", source.duplicate_window_seconds)]
    if source.kind is SourceKind.FORM:
        windows.append(("double_submit_seconds", source.double_submit_seconds))
    return windows


def short_keys(sources: list[LeadSource]) -> list[str]:
    """A problem for each api or google source holding a key (any of its comma-separated ones) too short to be
    secret; the key itself is never shown."""
    return [
        f"sources.{source.slug}.secret_env: {source.secret_env} holds a key of fewer than {MIN_SECRET_CHARS}"
        f" characters; expected a long random key, at least {MIN_SECRET_CHARS} characters"
        + _PLACEHOLDER_HINT.get(source.kind, "")
        for source in sources
        if source.kind in (SourceKind.API, SourceKind.GOOGLE)
        and any(len(key) < MIN_SECRET_CHARS for key in source.secrets)
    ]


def custom_fields_without_room(sources: list[LeadSource]) -> list[str]:
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


def routing_clashes(sources: list[LeadSource]) -> list[str]:
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
