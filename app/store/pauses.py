"""Pauses and their single probe: delivery's (careCycle refusing the configuration), Meta retrieval's for every Page,
and Meta retrieval's for single Pages (listed together for stats); and the Meta forms whose listing is refused."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from redis import Redis
from redis.client import Pipeline

from app.store import keys
from app.store.codec import text
from app.store.scripts import Scripts

# What a pause shows beside its cause for a failure met since whose probe time would have come sooner (the cause's
# later probe time kept): a call in flight as a rate limit paused retrieval until Graph's estimate, say.
MET_SINCE = "met since: "
# A Page's pause hash names each lead form its refused leads came from in a field of its own: `form:<form id>`.
PAUSED_FORM_FIELD_PREFIX = "form:"


@dataclass(frozen=True)
class Pause:
    """A pause (of delivery, or of Meta retrieval): why, since when, and when the next probe may go."""

    reason: str  # its cause, and beside it what was met since when that did not replace it (`MET_SINCE`, a probe's)
    since: float
    next_probe_at: float


def pause_from_hash(raw: Mapping[bytes | str, bytes | str]) -> Pause | None:
    """A pause hash as read with HGETALL, None when empty (no pause)."""
    if not raw:
        return None
    return Pause(
        reason=text(raw.get(b"reason")) or "",
        since=float(raw.get(b"since") or 0),
        next_probe_at=float(raw.get(b"next_probe_at") or 0),
    )


@dataclass(frozen=True)
class PauseChange:
    """What pausing did: whether it started the pause, the reason the pause shows now, and when its next probe goes."""

    started: bool
    reason: str
    next_probe_at: float

    @classmethod
    def from_reply(cls, reply: list[bytes | int]) -> PauseChange:
        """The pause script's reply: {started, the reason shown, the next probe time}."""
        started, reason, next_probe_at = reply
        return cls(bool(started), text(reason) or "", float(next_probe_at))


class PauseSwitch:
    """A pause and its single probe: delivery's (careCycle 401/403/404) by default, or another one under its own
    `key` (Meta retrieval's, for every Page: token errors, rate limits, a Graph API failing; or one Page's)."""

    def __init__(self, redis: Redis, scripts: Scripts, key: str | None = None) -> None:
        self._redis = redis
        self._scripts = scripts
        self._key = key or keys.pause_key()

    def get(self) -> Pause | None:
        """The current pause, or None while running."""
        return pause_from_hash(self._redis.hgetall(self._key))

    def pause(self, reason: str, now: float, next_probe_at: float) -> PauseChange:
        """Pause (or keep paused) for `reason` until `next_probe_at`, keeping the original start time and a later probe
        time already set (`reason` is then shown beside the cause of that time, as met since)."""
        return PauseChange.from_reply(
            self._scripts.pause(keys=[self._key], args=self._pause_args(reason, now, next_probe_at))
        )

    def queue_pause(
        self, pipe: Pipeline, reason: str, now: float, next_probe_at: float, listing: tuple[str, str] | None = None
    ) -> None:
        """Queue `pause` on `pipe` (a transaction), its reply a `PauseChange`'s; `listing` (a hash key and a field in
        it) is set to the reason the pause shows, in the same step."""
        listing_keys, listing_args = ([listing[0]], [listing[1]]) if listing else ([], [])
        args = [*self._pause_args(reason, now, next_probe_at), *listing_args]
        self._scripts.pause(keys=[self._key, *listing_keys], args=args, client=pipe)

    def note(self, note: str) -> str | None:
        """Show `note` beside the pause's cause (what its last probe met, say), its probe time unmoved; returns the
        reason shown, None when there is no pause."""
        return text(self._scripts.note_pause(keys=[self._key], args=[note]))

    @staticmethod
    def _pause_args(reason: str, now: float, next_probe_at: float) -> list[str]:
        return [repr(now), reason, repr(next_probe_at), f"{MET_SINCE}{reason}"]

    def resume(self) -> bool:
        """End the pause; True when there was one."""
        return bool(self._redis.delete(self._key))

    def take_probe(self, now: float, interval_seconds: float) -> bool:
        """True for exactly one caller once the probe time has come: that caller sends the probe."""
        return bool(self._scripts.take_probe(keys=[self._key], args=[repr(now), repr(now + interval_seconds)]))


def paused_pages_from_replies(reasons: Mapping[bytes, bytes], unlapsed: list[bytes]) -> dict[str, str]:
    """Page id -> why its retrieval is paused, from the listing's HGETALL and its unlapsed Pages (ZRANGEBYSCORE
    from now): a Page whose pause lapsed is not paused, though not forgotten yet."""
    live = {text(page) or "" for page in unlapsed}
    return {page: text(reason) or "" for raw, reason in reasons.items() if (page := text(raw) or "") in live}


def refused_forms_from_reply(reasons: Mapping[bytes, bytes]) -> dict[str, str]:
    """Form id -> why the backfill's last listing of its leads was refused, from the refusals' HGETALL."""
    return {text(form) or "": text(reason) or "" for form, reason in reasons.items()}


class ProbeTurn(Enum):
    """What a Meta lead waiting behind a retrieval pause may do now."""

    TAKEN = 0  # it is the probe of every pause it waits behind: try it
    ALL_WAIT = 1  # every Page's retrieval is paused, and its probe is not due
    PAGE_WAITS = 2  # its Page's retrieval is paused alone, and its probe is not due


class PagePauses:
    """Retrieval pauses of single Meta Pages (the token lacks a permission for one Page's leads), each with its own
    probe, and listed together for stats."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def switch(self, page_id: str) -> PauseSwitch:
        """The pause of one Page's retrieval and its probe."""
        return PauseSwitch(self._redis, self._scripts, keys.page_fetch_pause_key(page_id))

    def pause(
        self,
        page_id: str,
        reason: str,
        now: float,
        next_probe_at: float,
        lapse_seconds: float,
        form_id: str | None = None,
    ) -> PauseChange:
        """Pause one Page's retrieval (or keep it paused), as `PauseSwitch.pause` does. Listed (with the reason shown)
        in the same transaction, so that a probe resuming the Page meanwhile leaves no Page listed as paused that is
        not (nor one paused that is not listed: a retrieval reads the list to know). `form_id`, the lead form whose
        lead (or listing) met the pause's error, is kept with the pause: the backfill lists the form as the Page's
        probe (`forms_of_paused_pages`).

        The pause lapses `lapse_seconds` on unless a probe of the Page fails again meanwhile: once none of its leads
        is left to probe it (given up, or retrieved by the backfill), nothing else would end it. Pages whose pause
        lapsed are forgotten here, in the same transaction; until then the listing's readers skip them."""
        pipe = self._redis.pipeline(transaction=True)
        self.switch(page_id).queue_pause(pipe, reason, now, next_probe_at, (keys.paused_pages_key(), page_id))
        if form_id:
            pipe.hset(keys.page_fetch_pause_key(page_id), f"{PAUSED_FORM_FIELD_PREFIX}{form_id}", "1")
        pipe.pexpire(keys.page_fetch_pause_key(page_id), max(1, int(lapse_seconds * 1000)))
        pipe.zadd(keys.paused_pages_until_key(), {page_id: now + lapse_seconds})
        self._scripts.forget_lapsed_pages(
            keys=[keys.paused_pages_key(), keys.paused_pages_until_key()], args=[repr(now)], client=pipe
        )
        change, *_ = pipe.execute()
        return PauseChange.from_reply(change)

    def forms_of_paused_pages(self, now: float) -> dict[str, str]:
        """Form id -> the Page paused alone that a lead of the form met the pause's error for, for every Page whose
        pause has not lapsed."""
        pages = [text(page) or "" for page in self._redis.zrangebyscore(keys.paused_pages_until_key(), now, "+inf")]
        if not pages:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for page in pages:
            pipe.hkeys(keys.page_fetch_pause_key(page))
        forms: dict[str, str] = {}
        for page, fields in zip(pages, pipe.execute(), strict=True):
            for field in (text(f) or "" for f in fields):
                if field.startswith(PAUSED_FORM_FIELD_PREFIX):
                    forms[field.removeprefix(PAUSED_FORM_FIELD_PREFIX)] = page
        return forms

    def take_fetch_probe(self, page_id: str | None, now: float, interval_seconds: float) -> ProbeTurn:
        """Take the probe of every Page's retrieval pause and, with `page_id`, of that Page's, both or neither: one
        caller per interval has `TAKEN`; the others learn which pause holds them (the Page's first)."""
        pause_keys = [keys.fetch_pause_key()] + ([keys.page_fetch_pause_key(page_id)] if page_id else [])
        turn = self._scripts.take_fetch_probes(keys=pause_keys, args=[repr(now), repr(now + interval_seconds)])
        return ProbeTurn(int(turn))

    def resume(self, page_id: str, now: float) -> bool:
        """End one Page's pause, its leads held back (`FetchStore.hold`) due at once; True when there was one."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(keys.page_fetch_pause_key(page_id))
        pipe.hdel(keys.paused_pages_key(), page_id)
        pipe.zrem(keys.paused_pages_until_key(), page_id)
        self._scripts.release_held_fetches(
            keys=[keys.page_held_fetches_key(page_id), keys.fetching_key()], args=[repr(now)], client=pipe
        )
        ended, *_ = pipe.execute()
        return bool(ended)


class RefusedFormListings:
    """Meta lead forms whose leads the backfill's listing was refused for a permission while no Page paused alone is
    known for them (Graph's refusal names no Page, and a source routes Pages and forms each on their own), each with
    the reason: kept in Redis so that every worker says a refusal once per change, and for `/v1/stats`, `/metrics`
    and the dashboard to show."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def refused(self, form_id: str, reason: str) -> str | None:
        """Listing `form_id` was refused for `reason`; returns the reason its last listing was refused for, None when
        that one worked."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hget(keys.refused_form_listings_key(), form_id)
        pipe.hset(keys.refused_form_listings_key(), form_id, reason)
        before, _ = pipe.execute()
        return text(before)

    def listed(self, form_id: str) -> bool:
        """`form_id`'s leads were listed; True when its last listing was refused."""
        return bool(self._redis.hdel(keys.refused_form_listings_key(), form_id))

    def forget_all_but(self, form_ids: Collection[str]) -> None:
        """Forget the refusals of forms other than `form_ids` (those still configured)."""
        gone = [
            form
            for raw in self._redis.hkeys(keys.refused_form_listings_key())
            if (form := text(raw) or "") not in form_ids
        ]
        if gone:
            self._redis.hdel(keys.refused_form_listings_key(), *gone)
