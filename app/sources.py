"""Lead sources: who may send leads, and the careCycle settings their leads carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class UnknownSourceError(LookupError):
    """No configured source matches a slug or credential."""


@dataclass(frozen=True)
class LeadSource:
    """One configured source of leads."""

    slug: str
    kind: str = "api"
    source_id: str | None = None
    lead_cost: float | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    static_custom_fields: Mapping[str, Any] = field(default_factory=dict)


class SourceRegistry:
    """Looks sources up by slug and by API key."""

    def __init__(self, sources: Mapping[str, LeadSource], api_keys: Mapping[str, str]) -> None:
        self._sources = dict(sources)
        self._api_keys = dict(api_keys)

    @classmethod
    def from_api_keys(cls, api_keys: Mapping[str, str]) -> SourceRegistry:
        """API sources named by `LEADRELAY_SOURCE_KEYS` (secret -> slug), with no other settings."""
        sources = {slug: LeadSource(slug=slug) for slug in api_keys.values()}
        return cls(sources, api_keys)

    def by_api_key(self, secret: str) -> LeadSource:
        """The source whose API key is `secret`; raises `UnknownSourceError`."""
        slug = self._api_keys.get(secret)
        if slug is None:
            raise UnknownSourceError("unknown API key")
        return self._sources[slug]

    def by_slug(self, slug: str) -> LeadSource:
        """The source named `slug`; raises `UnknownSourceError`."""
        try:
            return self._sources[slug]
        except KeyError:
            raise UnknownSourceError(f"no source named {slug!r}") from None
