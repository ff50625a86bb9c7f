"""The Meta backfill: Meta does not guarantee its webhooks, so every configured lead form's recent leads are listed
from the Graph API, once per backfill interval across workers, and those never seen are taken in.

It also takes in the leads Meta announced before a source listed their Page or form. Listing a form starts a little
before its last complete listing (`BACKFILL_OVERLAP_SECONDS`); a form listed completely is marked so, and a form not
listed completely (refused, failed, skipped) is listed from the same time at the next backfill. A span owed for long
(up to Meta's 90 days) is listed in windows of time, oldest first, each remembered once its leads are taken in, so that
a backfill cut short (its job's timeout, its worker asked to stop or gone, a rate limit, Redis away) is resumed where it
stopped, and a span longer than one job completes over several backfills. Its listed leads are completed as retrieval
completes a fetched one (`workers.meta.MetaRetrieval`), and a listing that works or fails for every call tells
retrieval's pauses so, as a fetch does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from app.clock import Clock
from app.meta import META_LEAD_RETENTION_SECONDS, MetaIntake
from app.metrics import hand_over_admitted
from app.models import LeadStatus
from app.queues import BACKFILL_JOB_TIMEOUT_SECONDS
from app.schemas.meta import LeadgenChange
from app.sources import LeadSource, SourceKind, SourceRegistry
from app.store import Store
from app.store.fetches import FetchTicket
from workers.graph import (
    GraphConfigurationError,
    GraphError,
    GraphLead,
    GraphPermissionError,
    GraphRateLimitedError,
    GraphUnavailableError,
)
from workers.retrieval_pauses import RetrievalPauses

if TYPE_CHECKING:
    from workers.meta import GraphReader

# Listing starts this long before the last backfill began: Meta's clock, ours and the time a lead takes
# to become listable differ by seconds to minutes.
BACKFILL_OVERLAP_SECONDS = 600.0
# A form's owed span longer than this (and the overlap) is listed a window of this long at a time, oldest first: a few
# pages of leads each for a busy form, however long the span, and one call each for a quiet one.
BACKFILL_WINDOW_SECONDS = 6 * 3600.0
# Past this long into its run, a backfill starts no further window of a form's long owed span (each form's first listing
# aside): the run ends well within its job's timeout, and the next backfill lists on from where it got.
BACKFILL_RUN_BUDGET_SECONDS = BACKFILL_JOB_TIMEOUT_SECONDS / 2
# Failures that stand for every call, not one lead: retrieval pauses and one probe per interval finds their end.
PAUSING_ERRORS = (GraphConfigurationError, GraphUnavailableError, GraphRateLimitedError)


def window_end(listed_to: float, started: float) -> float | None:
    """Where the next window of a form's owed span listed up to `listed_to` ends, or None when the rest of it is listed
    at once, up to now: a window ends at least `BACKFILL_OVERLAP_SECONDS` before the backfill started, so every lead
    created in it is listable (and listed) by then, and a backfill resuming after it need not list it again."""
    end = listed_to + BACKFILL_WINDOW_SECONDS
    return end if end <= started - BACKFILL_OVERLAP_SECONDS else None


def pauses_every_page(exc: GraphError) -> bool:
    """True for a failure that stands for every call, whichever Page: not a permission error, which may be one Page's
    alone (its owner withdrew the lead access; one token serves every client's Page)."""
    return isinstance(exc, PAUSING_ERRORS) and not isinstance(exc, GraphPermissionError)


@dataclass
class FormListing:
    """One backfill's listing of a form: from where (`listed_to`) it lists on, and what it has listed so far;
    `paused_page_id`: the form's Page, paused alone, whose probe this is."""

    form_id: str
    paused_page_id: str | None
    started: float
    listed_to: float
    listings: int = 0
    listed: int = 0
    taken: int = 0
    ended: bool = False  # listed up to now, refused or failed


class ListedLeads(Protocol):
    """What the backfill needs of retrieval (`MetaRetrieval`): to complete a listed lead, and to hear of the Graph
    API answering, or failing every call."""

    def complete_listed(self, ticket: FetchTicket, lead: GraphLead) -> LeadStatus | None: ...

    def graph_answered(self, page_id: str | None) -> None: ...

    def graph_failed_every_call(self, exc: GraphError) -> None: ...


class MetaBackfill:
    """Lists every configured form's recent leads and takes in the unseen ones; says so to `logger`."""

    def __init__(
        self,
        store: Store,
        graph: GraphReader,
        admission: MetaIntake,
        sources: SourceRegistry,
        retrieval: ListedLeads,
        pauses: RetrievalPauses,
        clock: Clock,
        wake_delivery: Callable[[], object],
        logger: logging.Logger,
        *,
        interval_seconds: float,
        probe_interval_seconds: float,
    ) -> None:
        self._store = store
        self._graph = graph
        self._admission = admission
        self._sources = sources
        self._retrieval = retrieval
        self._pauses = pauses
        self._clock = clock
        self._wake = wake_delivery
        self._logger = logger
        self._interval = interval_seconds
        self._probe_interval = probe_interval_seconds

    def facebook_sources(self) -> list[LeadSource]:
        """The configured facebook sources, whose forms the backfill lists."""
        return [s for s in self._sources if s.kind is SourceKind.FACEBOOK]

    def configured_form_ids(self) -> set[str]:
        """The form ids the facebook sources name, whose leads the backfill lists."""
        return {form_id for source in self.facebook_sources() for form_id in source.form_ids}

    def forget_forms_unconfigured(self) -> None:
        """Forget what the backfill noted of forms no facebook source names any longer: how far their listing had
        come, and their refusal. None is listed on, and `/v1/stats` shows none of them catching up or refused, also
        once no facebook source is left, when no backfill runs to forget them."""
        form_ids = self.configured_form_ids()
        self._store.fetches.forget_backfill_listed_but(form_ids)
        self._pauses.forms_configured(form_ids)

    def take_turn(self) -> bool:
        """True for exactly one caller per backfill interval, across every worker."""
        return self._store.fetches.take_backfill_turn(self._interval)

    def run(self, stop_requested: Callable[[], bool] = lambda: False) -> int:
        """Take in the leads Meta announced before a source listed their Page or form (their retrieval queued), and
        list every configured form's leads since its last backfill to take in the unseen ones. Returns how many.

        While retrieval is paused, the backfill runs only as the pause's probe (so a pause ends even when no
        lead waits in `fetching`), and a listing that works resumes retrieval. A form that fails (deleted on
        Meta, a lead-level fault) does not keep the others from being listed, then its error is raised; a token or
        configuration error, a rate limit, or a Graph API that fails (5xx, no connection, no answer in time), pauses
        retrieval and ends the run, raised. A form of a Page paused alone (a lead of the form met a permission error)
        is listed only as the Page's probe, skipped otherwise: a listing that works resumes the Page. A permission
        error fails no run: it keeps such a Page paused, said as its leads' failed probes are, or is said once per
        change for a form of no known Page (Graph's refusal names none: no Page is paused on a guess). A form is
        marked backfilled only once listed completely, so the next run covers what this one missed; a span owed for
        long is listed in windows, oldest first, each remembered once its leads are taken in, so the next run lists on
        from where this one got (ended by a failure, its job's timeout or its budget of time): every form's first
        listing comes before any form's further windows, so that none waits on another's span; a form never
        listed completely is listed from one interval before its first listing was tried, so that a refusal (or a
        pause) from its very first listing on misses none of the leads its webhooks did not bring. No listing goes
        back further than Meta keeps leads (about 90 days). A worker asked to stop (`stop_requested`: a SIGTERM's
        warm shutdown) ends the run once the listing under way is taken in and noted, starting no other: the next run
        lists on from there.
        """
        rerouted = self._admission.admit_unrouted()  # counted as the webhook would have, had a source listed them
        hand_over_admitted(self._store, [(a.source, a.status) for a in rerouted if a.status is not None])
        form_ids = self.configured_form_ids()
        # A form never listed is owed one interval back from now on, whatever keeps its first listing from working.
        self._store.fetches.owe_backfill(form_ids, self._clock.now() - self._interval)
        self._store.fetches.forget_backfill_listed_but(form_ids)
        if self._store.fetch_pause.get() is not None and not self._store.fetch_pause.take_probe(
            self._clock.now(), self._probe_interval
        ):
            self._logger.info("meta backfill skipped: retrieval is paused")
            return len(rerouted)
        taken = len(rerouted)
        failed: list[GraphError] = []
        deadline = self._clock.now() + BACKFILL_RUN_BUDGET_SECONDS
        paused_pages = self._pauses.forms_of_paused_pages()
        self._pauses.forms_configured(form_ids)
        forms = []
        for source in self.facebook_sources():
            for form_id in source.form_ids:
                if stop_requested():  # its span stays owed (`owe_backfill`), listed at the next run
                    break
                page_id = paused_pages.get(form_id)
                if page_id is not None and not self._pauses.take_page_probe(page_id):
                    self._logger.info(
                        "meta backfill of a form skipped: its page's retrieval is paused",
                        extra={"form_id": form_id, "page_id": page_id},
                    )
                    continue
                started = self._clock.now()
                form = FormListing(form_id, page_id, started, self._owed_from(form_id, started))
                taken += self._list_on(form, None, failed, stop_requested)
                forms.append(form)
        # Every form listed once first, those owed for long list on: none takes another's turn, and the run's budget
        # holds whatever the number of forms.
        for form in forms:
            taken += self._list_on(form, deadline, failed, stop_requested)
        if failed:  # the job fails, loudly, once every other form is listed
            raise failed[0]
        return taken

    def _list_on(
        self, form: FormListing, deadline: float | None, failed: list[GraphError], stop_requested: Callable[[], bool]
    ) -> int:
        """List on a form (`_backfill_form`); returns how many leads were new. A failure that pauses retrieval is
        raised; any other ends the form's listing, noted in `failed`."""
        taken = form.taken
        try:
            self._backfill_form(form, deadline, stop_requested)
        except GraphError as exc:
            form.ended = True
            if pauses_every_page(exc):
                raise
            self._logger.warning("meta backfill of a form failed: %s", exc.message, extra={"form_id": form.form_id})
            failed.append(exc)
        return form.taken - taken

    def _backfill_form(self, form: FormListing, deadline: float | None, stop_requested: Callable[[], bool]) -> None:
        """List and take in a form's leads, window by window: only its next listing without a `deadline`, or else
        until the rest of it is listed, `deadline` passes or a stop is asked for (then it is said catching up, unless
        a stop kept its first listing from starting, and the next backfill lists on from there)."""
        while not form.ended:
            until = window_end(form.listed_to, form.started)
            if form.listings and deadline is None:
                return
            stopping = stop_requested()
            # A form whose first listing a stop kept from starting listed nothing: it is not said catching up.
            if stopping and (deadline is None or until is None or not form.listings):
                return
            if until is not None and deadline is not None and (stopping or self._clock.now() >= deadline):
                self._logger.info(
                    "meta backfill of a form is catching up: listed %d leads, %d new, up to %s; listed on from there "
                    "at the next backfill",
                    form.listed,
                    form.taken,
                    datetime.fromtimestamp(form.listed_to, UTC).isoformat(timespec="seconds"),
                    extra={"form_id": form.form_id},
                )
                return
            leads = self._list(form.form_id, form.listed_to, until, form.paused_page_id, first=not form.listings)
            if leads is None:  # refused: listed again, from where it got, at the next backfill
                form.ended = True
                return
            form.listings, form.listed = form.listings + 1, form.listed + len(leads)
            form.taken += self._take_in(form.form_id, leads)
            if until is None:
                form.ended = True
                self._store.fetches.mark_backfilled(form.form_id, form.started)
                self._logger.info(
                    "meta backfill listed %d leads, %d new", form.listed, form.taken, extra={"form_id": form.form_id}
                )
                return
            self._store.fetches.note_backfill_listed(form.form_id, until)
            form.listed_to = until

    def _owed_from(self, form_id: str, started: float) -> float:
        """When a form's leads are to be listed from: a little before its last complete listing (or one interval
        before the backfill first had it, `owe_backfill`), or where a listing cut short since got to; never before
        Meta's retention."""
        last = self._store.fetches.backfill_since(form_id)
        if last is None:  # that note lost with Redis's data meanwhile: one interval back
            last = started - self._interval
        # Not further back than Meta keeps leads: a refusal, a pause or a form left unconfigured for months.
        since = max(last - BACKFILL_OVERLAP_SECONDS, started - META_LEAD_RETENTION_SECONDS)
        listed_to = self._store.fetches.backfill_listed_to(form_id)
        return since if listed_to is None else max(since, listed_to)

    def _list(
        self, form_id: str, since: float, until: float | None, paused_page_id: str | None, *, first: bool
    ) -> list[GraphLead] | None:
        """The form's leads created after `since`, up to `until` (None: up to now); None when Graph refused them for a
        permission. The `first` listing of a form that works tells retrieval's pauses so."""
        try:
            leads: list[GraphLead] = list(self._graph.list_form_leads(form_id, since, until))
        except GraphError as exc:
            if isinstance(exc, GraphPermissionError):  # said once per change; listed again at the next backfill
                self._pauses.listing_refused(form_id, exc.message, paused_page_id)
                return None
            if pauses_every_page(exc):
                self._retrieval.graph_failed_every_call(exc)
            raise
        if first:  # the Graph API listed the form: it answers, takes the token, reads the Page
            self._retrieval.graph_answered(paused_page_id)
            self._pauses.form_listed(form_id)
        return leads

    def _take_in(self, form_id: str, listed: list[GraphLead]) -> int:
        """Admit the listed leads never seen and complete them as retrieval would; returns how many were new."""
        changes = [LeadgenChange(leadgen_id=g.id, form_id=g.form_id or form_id, ad_id=g.ad_id) for g in listed]
        admitted = self._admission.admit(changes, "found by the Meta backfill: no webhook for it", fetch=False)
        by_leadgen = {g.id: g for g in listed}
        fresh = [a for a in admitted if not a.repeated]
        # Counted as the webhook counts the leads it announces; a lead seen before (announced, or listed by an
        # earlier run) is no new submission, and is not counted again.
        hand_over_admitted(self._store, [(a.source, a.status) for a in fresh if a.status is not None])
        queued = False
        try:
            for lead in fresh:
                ticket = self._store.fetches.begin(lead.lead_id, self._clock.now())
                if ticket is not None:
                    queued |= self._retrieval.complete_listed(ticket, by_leadgen[lead.leadgen_id]) is LeadStatus.QUEUED
        finally:
            if queued:
                self._wake()  # once for the listing's leads, not once per lead; also when a later one failed
        return len(fresh)
