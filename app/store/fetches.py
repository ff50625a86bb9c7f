"""Meta leads awaiting Graph retrieval: the fetching set, their completion, and the backfill's bookkeeping."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis

from app.models import LeadStatus
from app.store import keys
from app.store.codec import text
from app.store.pauses import Pause, pause_from_hash
from app.store.scripts import Scripts

logger = logging.getLogger(__name__)

# How long a `fetching` lead's queued or running retrieval job is trusted before the sweep starts another.
FETCH_LEASE_SECONDS = 120.0


def fetch_lease_deadline(now: float) -> float:
    """The score a lead holds in the fetching set while a retrieval job taken up at `now` is trusted: the job
    carries it, so that of several jobs for one lead only the one queued under its current lease fetches."""
    return now + FETCH_LEASE_SECONDS


_TICKET_FIELDS = (
    "status",
    "source",
    "received_at",
    "fetch_attempts",
    keys.LEADGEN_ID_FIELD,
    keys.RETRIED_AT_FIELD,
) + tuple(f"meta_{name}" for name in ("form_id", "page_id", "ad_id"))


@dataclass(frozen=True)
class FetchTicket:
    """A `fetching` lead taken up by a retrieval job: what the job needs to fetch and judge it."""

    lead_id: str
    source: str
    received_at: float
    leadgen_id: str
    form_id: str | None = None
    page_id: str | None = None
    ad_id: str | None = None
    fetch_attempts: int = 0
    retrieval_pause: Pause | None = None  # as it stood when the lead was taken up (same round trip)
    page_paused: bool = False  # its Page's retrieval was paused alone when the lead was taken up (same round trip)
    retried_at: float | None = None  # an operator's last re-queue of it

    @property
    def retries_since(self) -> float:
        """Since when its tries count towards the maximum age: its receipt, or an operator's later retry."""
        return max(self.received_at, self.retried_at or 0.0)


@dataclass(frozen=True)
class Completion:
    """How a retrieval ends: the new status and, for a queued lead, its sealed record and what status shows;
    for a lead normalization refused, the sealed submission (kept for follow-up, never sent)."""

    status: LeadStatus
    detail: str
    error: str = ""
    sealed_record: str = ""
    sealed_submission: str = ""
    external_id: str = ""
    phone_masked: str = ""
    warnings: tuple[str, ...] = ()
    person: str | None = None
    person_memory_seconds: int = 0
    duplicate_window_seconds: int = 0


class FetchStore:
    """The fetching set (scored by each lead's next try) and the transitions out of `fetching`."""

    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    def begin(self, lead_id: str, now: float, lease_deadline: float | None = None) -> FetchTicket | None:
        """Take up a lead's retrieval for one lease, reading the retrieval pause and the Pages paused alone with it;
        None when the lead is no longer `fetching`.

        A job queued under a lease (`lease_deadline`: the lead's score when it was queued) takes the lead up
        only while that is still its score; otherwise another job took it up since, and None is returned too.
        Without one (a job queued before jobs carried their lease), the lead is taken up whatever its lease.
        """
        pipe = self._redis.pipeline(transaction=False)
        self._scripts.renew_fetch_lease(
            keys=[keys.fetching_key()],
            args=[lead_id, "" if lease_deadline is None else repr(lease_deadline), repr(fetch_lease_deadline(now))],
            client=pipe,
        )
        pipe.hmget(keys.lead_key(lead_id), list(_TICKET_FIELDS))
        pipe.hgetall(keys.fetch_pause_key())
        pipe.zrangebyscore(keys.paused_pages_until_key(), now, "+inf")  # the Pages whose pause has not lapsed
        taken_up, raw, pause, paused_pages = pipe.execute()
        if not taken_up:
            logger.debug("fetch job not taken up: another job took its lead up since", extra={"lead_id": lead_id})
            return None
        values = dict(zip(_TICKET_FIELDS, (text(v) for v in raw), strict=True))
        if values["status"] != LeadStatus.FETCHING.value or not values[keys.LEADGEN_ID_FIELD]:
            self._redis.zrem(keys.fetching_key(), lead_id)
            return None
        return FetchTicket(
            lead_id=lead_id,
            source=values["source"] or "",
            received_at=float(values["received_at"] or 0),
            leadgen_id=values[keys.LEADGEN_ID_FIELD] or "",
            form_id=values["meta_form_id"] or None,
            page_id=values["meta_page_id"] or None,
            ad_id=values["meta_ad_id"] or None,
            fetch_attempts=int(values["fetch_attempts"] or 0),
            retried_at=float(values[keys.RETRIED_AT_FIELD] or 0) or None,
            retrieval_pause=pause_from_hash(pause),
            page_paused=bool(values["meta_page_id"]) and values["meta_page_id"] in {text(p) for p in paused_pages},
        )

    def complete(self, lead_id: str, completion: Completion, now: float) -> LeadStatus | None:
        """Apply the end of a retrieval; returns the lead's new status, None if it was no longer `fetching`."""
        pairs: list[Any] = []
        if completion.sealed_record:
            fields: Mapping[str, str] = {
                keys.RECORD_FIELD: completion.sealed_record,
                "external_id": completion.external_id,
                "phone": completion.phone_masked,
                "warnings": json.dumps(list(completion.warnings)),
            }
            for name, value in fields.items():
                pairs.extend((name, value))
        if completion.sealed_submission:
            pairs.extend((keys.SUBMISSION_FIELD, completion.sealed_submission))
        status = self._scripts.complete_fetch(
            keys=[
                keys.lead_key(lead_id),
                keys.lead_events_key(lead_id),
                keys.status_counts_key(),
                keys.ready_key(),
                keys.fetching_key(),
                keys.person_key(completion.person or ""),
                keys.failed_bucket_key(int(now // 60)),
                keys.failed_second_key(int(now)),
            ],
            args=[
                lead_id,
                repr(now),
                completion.status.value,
                completion.detail,
                completion.error,
                completion.person_memory_seconds if completion.person else 0,
                completion.duplicate_window_seconds,
                *pairs,
            ],
        )
        new_status = text(status)
        return LeadStatus(new_status) if new_status else None

    def defer(self, lead_id: str, now: float, next_try_at: float, reason: str, *, count_attempt: bool) -> bool:
        """Keep a lead `fetching` until `next_try_at`, showing `reason`; False if it was no longer `fetching`."""
        deferred = self._scripts.defer_fetch(
            keys=[keys.lead_key(lead_id), keys.lead_events_key(lead_id), keys.fetching_key()],
            args=[lead_id, repr(now), repr(next_try_at), reason, "1" if count_attempt else "0"],
        )
        return bool(deferred)

    def hold(self, lead_id: str, page_id: str, now: float, next_try_at: float, reason: str) -> bool:
        """Keep a lead `fetching` behind its Page's retrieval pause until `next_try_at` at the latest: it is made due
        at once when the Page resumes (`PagePauses.resume`). False if it was no longer `fetching`. A lead held just
        as its Page resumed waits until `next_try_at`; the Page's held set expires then, should no resume take it."""
        pipe = self._redis.pipeline(transaction=True)
        self._scripts.defer_fetch(
            keys=[keys.lead_key(lead_id), keys.lead_events_key(lead_id), keys.fetching_key()],
            args=[lead_id, repr(now), repr(next_try_at), reason, "0"],
            client=pipe,
        )
        pipe.sadd(keys.page_held_fetches_key(page_id), lead_id)
        held_for = max(1, math.ceil(next_try_at - now))
        pipe.expire(keys.page_held_fetches_key(page_id), held_for, nx=True)  # a new set
        pipe.expire(keys.page_held_fetches_key(page_id), held_for, gt=True)  # or one whose leads are held less long
        deferred, *_ = pipe.execute()
        return bool(deferred)

    def claim_due(self, now: float, limit: int) -> dict[str, float]:
        """The leads whose retrieval is due, each pushed out by a lease so no other sweep takes it too: lead id ->
        the lease deadline it was taken under (what its fetch job carries)."""
        deadline = fetch_lease_deadline(now)
        ids = self._scripts.claim_due_fetches(keys=[keys.fetching_key()], args=[repr(now), repr(deadline), limit])
        return {text(i) or "": deadline for i in ids}

    def waiting(self) -> int:
        """Leads in `fetching`, whether due or not."""
        return int(self._redis.zcard(keys.fetching_key()))

    def take_backfill_turn(self, interval_seconds: float) -> bool:
        """True for exactly one caller per backfill interval, across every worker."""
        return bool(self._redis.set(keys.backfill_turn_key(), "1", nx=True, px=max(1000, int(interval_seconds * 1000))))

    def backfill_since(self, form_id: str) -> float | None:
        """When this form's leads are still to be listed from: the start of the last backfill that listed it completely,
        or for a form never listed so, the time `owe_backfill` noted; None for a form of neither."""
        value = self._redis.hget(keys.backfill_since_key(), form_id)
        return float(value) if value is not None else None

    def owe_backfill(self, form_ids: Collection[str], since: float) -> None:
        """Note that each of `form_ids` never listed completely (nor noted before) is to be listed from `since`: its
        first listing refused, failed or skipped leaves its span owed, instead of starting anew at the next backfill.
        One round trip."""
        if not form_ids:
            return
        pipe = self._redis.pipeline(transaction=False)
        for form_id in form_ids:
            pipe.hsetnx(keys.backfill_since_key(), form_id, repr(since))
        pipe.execute()

    def backfill_listed_to(self, form_id: str) -> float | None:
        """How far the listing of this form's owed leads has come (`note_backfill_listed`); None when no listing cut
        short is to be resumed."""
        value = self._redis.hget(keys.backfill_listed_key(), form_id)
        return float(value) if value is not None else None

    def note_backfill_listed(self, form_id: str, listed_to: float) -> None:
        """Record that every lead of this form created up to `listed_to` has been taken in, so that a backfill cut
        short (a timeout, a worker gone, a rate limit, Redis away) is resumed from there. Whichever run writes it,
        every lead created up to the value was listed: one left by a run that overlapped another still holds."""
        self._redis.hset(keys.backfill_listed_key(), form_id, repr(listed_to))

    def forget_backfill_listed_but(self, form_ids: Collection[str]) -> None:
        """Forget how far the listing of forms other than `form_ids` (those still configured) had come: none is listed
        on, and none is shown catching up. A form configured again is listed from its last complete listing."""
        gone = [
            form for raw in self._redis.hkeys(keys.backfill_listed_key()) if (form := text(raw) or "") not in form_ids
        ]
        if gone:
            self._redis.hdel(keys.backfill_listed_key(), *gone)

    def mark_backfilled(self, form_id: str, started_at: float) -> None:
        """Record that this form's leads up to `started_at` have been listed: no listing cut short is left to resume."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(keys.backfill_since_key(), form_id, repr(started_at))
        pipe.hdel(keys.backfill_listed_key(), form_id)
        pipe.execute()
