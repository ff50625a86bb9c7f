"""Meta retrieval's pauses as a worker's Graph calls find them: of every Page, or of one Page alone, recorded in Redis
and said once per change.

A token error, a Graph API failing every call (5xx, no connection, no answer in time) or a rate limit pauses
retrieval for every lead. A permission error for a lead whose Page is known pauses that Page's leads alone: one token
serves every client's Page, and one client withdrawing its Page's lead access must not hold the others. While paused,
one lead per probe interval (of every Page, or of the Page) is let through as the probe, and an answer resumes; a
rate limit whose end Graph's usage headers estimate is probed then instead (`MAX_RATE_LIMIT_PAUSE_SECONDS` at most).
The other leads of a paused Page are held back, each tried again after as long as the Page has been paused (at
least a probe interval, at most `MAX_PAGE_HOLD_SECONDS`), and made due at once when it resumes: a Page whose owner
withdrew the lead access may stay paused for weeks, and a fetch job per held lead and interval would be thousands.

Each pause is said when it starts or its reason changes, recalled at most once a minute while its probes fail alike,
and its end once (`app.logs.PauseLog`, one pause per Page): a lead's every failed probe is said at debug.

A backfill listing of a form refused for a permission, no Page paused alone known for the form (Graph's refusal names
none, and a source routes Pages and forms each on their own), pauses no Page on a guess: the refusal is kept in Redis,
so that every worker says it once per change, and the form is listed again at each backfill.
"""

from __future__ import annotations

import logging

from app.clock import Clock
from app.logs import PauseLog
from app.store import Store
from app.store.fetches import FETCH_LEASE_SECONDS, FetchTicket
from app.store.pauses import ProbeTurn
from workers.graph import without_trace_id

MAX_PAGE_HOLD_SECONDS = 900.0
# A Page's pause lapses this long after its last failed probe: while any of its leads waits, one is its probe at
# least every `MAX_PAGE_HOLD_SECONDS` (plus a lost job's lease); once none is left, nothing else would end it.
PAGE_PAUSE_LAPSE_SECONDS = 2 * (MAX_PAGE_HOLD_SECONDS + FETCH_LEASE_SECONDS)
# A rate limit whose end Graph estimates (`workers.graph_usage`) pauses retrieval until then, but at most this long:
# the probe then costs one call against the limit, and an estimate misread or overstated holds no lead longer.
MAX_RATE_LIMIT_PAUSE_SECONDS = 3600.0


class RetrievalPauses:
    """Pauses Graph retrieval (of every Page, or of one), lets its probes through, resumes it; says so to `logger`."""

    def __init__(self, store: Store, clock: Clock, probe_interval_seconds: float, logger: logging.Logger) -> None:
        self._store = store
        self._clock = clock
        self._probe_interval = probe_interval_seconds
        self._logger = logger
        # Probes failing alike but for Graph's trace id of each call are said as the pause going on.
        self._paused = PauseLog(logger, clock.now, "meta lead retrieval", alike=without_trace_id)
        self._pages_paused = PauseLog(  # a Page's id its key
            logger, clock.now, "meta lead retrieval", " for a page", alike=without_trace_id
        )

    def paused(self, reason: str, regain_after_seconds: float | None = None) -> float:
        """Retrieval pauses for every Page, or stays paused when a probe failed, until the next probe: in a probe
        interval, or when Graph estimates that a rate limit ends (`regain_after_seconds`, at least an interval and at
        most `MAX_RATE_LIMIT_PAUSE_SECONDS` on), or later when the pause's probe is set later already (a rate limit
        Graph expects to last, met by another call: `reason` is then said as met since). Returns the time of the next
        probe."""
        now = self._clock.now()
        wait = self._probe_interval
        if regain_after_seconds is not None:
            wait = max(wait, min(regain_after_seconds, MAX_RATE_LIMIT_PAUSE_SECONDS))
        change = self._store.fetch_pause.pause(reason, now, now + wait)
        self._paused.paused(change.reason, started=change.started)
        return change.next_probe_at

    def page_paused(self, page_id: str, reason: str, form_id: str | None = None) -> None:
        """Retrieval pauses for `page_id`'s leads alone, or stays paused when its probe failed, until its next probe;
        `form_id` (the form of the lead, or the listing, refused) is kept with it for the backfill."""
        now = self._clock.now()
        lapse = max(PAGE_PAUSE_LAPSE_SECONDS, 2 * self._probe_interval)
        change = self._store.page_pauses.pause(page_id, reason, now, now + self._probe_interval, lapse, form_id)
        self._pages_paused.paused(change.reason, started=change.started, ids={"page_id": page_id}, key=page_id)

    def listing_refused(self, form_id: str, reason: str, page_id: str | None) -> None:
        """The backfill's listing of `form_id` was refused for a permission (`reason`): its Page, paused alone, stays
        paused (said as its leads' failed probes are); with no such Page known (Graph's refusal names none), the
        refusal is said as an error when it starts or its reason changes (Graph's trace id of each call aside), then
        at info at each backfill that lists the form again."""
        if page_id is not None:
            self.page_paused(page_id, reason, form_id)
            return
        before = self._store.refused_forms.refused(form_id, reason)
        extra = {"form_id": form_id}
        if before is not None and without_trace_id(before) == without_trace_id(reason):  # each call has its own
            self._logger.info("meta backfill of a form still refused, listed again next time: %s", reason, extra=extra)
            return
        self._logger.error(
            "meta backfill of a form refused: %s; its leads are not listed until the token may read them, and it is "
            "listed again at each backfill",
            reason,
            extra=extra,
        )

    def form_listed(self, form_id: str) -> None:
        """The backfill listed `form_id`'s leads: a refusal of its listing, if any, is over."""
        if self._store.refused_forms.listed(form_id):
            self._logger.info("meta backfill of a form lists its leads again", extra={"form_id": form_id})

    def forms_configured(self, form_ids: set[str]) -> None:
        """The backfill lists `form_ids`: the refusals of any other form (no longer configured) are forgotten."""
        self._store.refused_forms.forget_all_but(form_ids)

    def forms_of_paused_pages(self) -> dict[str, str]:
        """Form id -> its Page, for each form a lead of which met the pause of a Page still paused alone."""
        return self._store.page_pauses.forms_of_paused_pages(self._clock.now())

    def take_page_probe(self, page_id: str) -> bool:
        """True when the caller (the backfill listing one of the Page's forms) is the probe of `page_id`'s pause."""
        return self._store.page_pauses.switch(page_id).take_probe(self._clock.now(), self._probe_interval)

    def waits(self, ticket: FetchTicket, now: float) -> bool:
        """True when the lead, taken up while retrieval was paused (for every Page, or its Page alone), is not the
        probe of each pause it waits behind: it is held for its Page, or deferred to every Page's next probe, without
        a call. A lead held for its Page spends no probe of every Page's pause, nor the reverse."""
        page_id = ticket.page_id if ticket.page_paused else None
        turn = self._store.page_pauses.take_fetch_probe(page_id, now, self._probe_interval)
        if turn is ProbeTurn.PAGE_WAITS and page_id:
            page_pause = self._store.page_pauses.switch(page_id).get()
            if page_pause is None:  # resumed just now: its held leads are due, this one with them
                return False
            held_until = now + min(max(now - page_pause.since, self._probe_interval), MAX_PAGE_HOLD_SECONDS)
            reason = f"retrieval paused for page {page_id}: {page_pause.reason}"
            self._store.fetches.hold(ticket.lead_id, page_id, now, held_until, reason)
            return True
        if turn is ProbeTurn.ALL_WAIT:
            pause = self._store.fetch_pause.get() or ticket.retrieval_pause
            next_try = pause.next_probe_at if pause and pause.next_probe_at > now else now + self._probe_interval
            reason = f"retrieval paused: {pause.reason}" if pause else "retrieval paused"
            self._store.fetches.defer(ticket.lead_id, now, next_try, reason, count_attempt=False)
            return True
        return False

    def answered(self, page_id: str | None = None) -> None:
        """The Graph API answered and took the token (for `page_id`'s leads, that Page paused alone when the lead was
        taken up): the pause of every Page, if any, is over, and so is `page_id`'s."""
        self._paused.ended()
        if self._store.fetch_pause.resume():
            self._logger.info("meta lead retrieval resumed: the Graph API answers and accepts the token again")
        if page_id is None:
            return
        self._pages_paused.ended(page_id)
        if self._store.page_pauses.resume(page_id, self._clock.now()):
            self._logger.info(
                "meta lead retrieval resumed for a page: its leads are readable again", extra={"page_id": page_id}
            )
