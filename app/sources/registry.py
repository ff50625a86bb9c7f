"""The configured sources, looked up by slug, by API key, and by Meta page or form id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.sources.source import LeadSource, SourceKind


class UnknownSourceError(LookupError):
    """No configured source matches a slug or credential; `kind`: the kind a slug was looked up as, when one was."""

    def __init__(self, message: str, kind: SourceKind | None = None) -> None:
        super().__init__(message)
        self.kind = kind


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
            raise UnknownSourceError(f"no {kind or ''} source named {slug!r}".replace("  ", " "), kind)
        return source

    def by_meta_ids(self, page_id: str | None, form_id: str | None) -> LeadSource:
        """The facebook source for a lead form (preferred) or page; raises `UnknownSourceError`."""
        source = self._by_form.get(form_id or "") or self._by_page.get(page_id or "")
        if source is None:
            raise UnknownSourceError("no facebook source for this page or form")
        return source
