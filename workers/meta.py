"""Graph retrieval of Meta leads: fetching one `fetching` lead, and finding those due a try (the backfill, which
lists each form's leads, is `workers.meta_backfill`'s).

The store is the truth: every `fetching` lead sits in the fetching set, scored by when it is due a try.
A fetch job pushes that time out by a lease when it starts and either ends the lead (`queued`,
`rejected`, `dead`, `test`, `duplicate`) or sets the time of its next try. The worker's ticker queues a
job for every lead that comes due, so a retry needs no scheduled job, and a job lost with its worker
is simply due again when its lease runs out. A job carries the lease its lead was queued under and
starts only while the lead still holds it: a job that waited in the queue past its lease (the sweep has
queued another meanwhile) ends without a Graph call, so jobs for one lead do not pile up calls.

A token or permission error pauses retrieval for every lead (they stay `fetching`): while paused, only
one lead at a time is let through as the probe, once per probe interval, and its success resumes all.
A permission error for a lead whose Page is known pauses that Page's leads alone, probed the same way
(`workers.retrieval_pauses` keeps both kinds of pause, and says them once per change).
A Graph API that does not answer within the timeouts pauses retrieval the same way: each fetch job waiting
them out would hold its worker, and workers take fetch jobs first, so delivery of every source would wait
behind the queued fetches; paused, one probe per interval waits on the Graph API instead.
So do a Graph API answering 5xx (or not reachable) and a rate limit reached (every call counts against it): a
retry per waiting lead (Meta batches up to 1000 leads a notification) would storm a service that is down, or keep
the limit reached; paused, one probe per interval finds their end (a rate limit's at the time Graph's usage headers
estimate, up to an hour on).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from marshmallow import ValidationError

from app.clock import Clock
from app.crypto import RecordCipher
from app.intake import Intake
from app.logs import RepeatedTrouble
from app.meta import META_LEAD_RETENTION_SECONDS, MetaIntake
from app.models import LeadStatus
from app.schemas.fields import field_reason
from app.schemas.meta import is_test_lead, meta_submission, without_answered_external_id
from app.sources import LeadSource, SourceKind, SourceRegistry, UnknownSourceError
from app.store import Store
from app.store.fetches import Completion, FetchTicket
from workers import backoff
from workers.graph import (
    GraphConfigurationError,
    GraphError,
    GraphLead,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRateLimitedError,
    GraphUnavailableError,
    without_trace_id,
)
from workers.meta_backfill import MetaBackfill
from workers.retrieval_pauses import RetrievalPauses

logger = logging.getLogger(__name__)

MAX_FETCHES_PER_SWEEP = 100


class GraphReader(Protocol):
    """What retrieval needs of the Graph API (`GraphClient`, or a test double)."""

    def get_lead(self, leadgen_id: str) -> GraphLead: ...

    def list_form_leads(self, form_id: str, since: float, until: float | None = None) -> Iterable[GraphLead]: ...


@dataclass(frozen=True)
class RetrievalSettings:
    """The settings retrieval follows, in seconds."""

    max_age_seconds: float
    retry_base_seconds: float
    retry_max_delay_seconds: float
    probe_interval_seconds: float
    backfill_interval_seconds: float
    has_access_token: bool


class MetaRetrieval:
    """Fetches Meta leads from the Graph API and completes them in the store."""

    def __init__(
        self,
        store: Store,
        graph: GraphReader,
        intake: Intake,
        admission: MetaIntake,
        sources: SourceRegistry,
        cipher: RecordCipher,
        settings: RetrievalSettings,
        clock: Clock,
        wake_delivery: Callable[[], object],
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._graph = graph
        self._intake = intake
        self._admission = admission
        self._sources = sources
        self._cipher = cipher
        self._settings = settings
        self._clock = clock
        self._wake = wake_delivery
        self._rng = rng or random.Random()
        self._failures = RepeatedTrouble(
            logger,
            clock.now,
            "meta lead retrieval failed, will retry: %s",
            "meta lead retrievals still failing, retried with backoff: %s (%d more failed alike in %.0f s)",
            level=logging.WARNING,
            quiet_at_debug=True,  # each failed call at debug, with its ids
            new_after_quiet=False,  # an answer from the service ends the spell
            alike=without_trace_id,  # Graph gives each call a trace id of its own
        )
        self._pauses = RetrievalPauses(store, clock, settings.probe_interval_seconds, logger)
        self._backfill = MetaBackfill(
            store,
            graph,
            admission,
            sources,
            self,
            self._pauses,
            clock,
            wake_delivery,
            logger,
            interval_seconds=settings.backfill_interval_seconds,
            probe_interval_seconds=settings.probe_interval_seconds,
        )

    def fetch(self, lead_id: str, lease_deadline: float | None = None) -> LeadStatus | None:
        """Try to retrieve one lead; returns its status afterwards (None when it was no longer `fetching`, or when
        its job was queued under `lease_deadline` and another job took the lead up since: no Graph call).

        A lead is given up (`dead`) when a try past its maximum age fails for a reason of its own (not a token or
        permission error, which pauses retrieval for all, or for its Page): time spent waiting out a pause never
        ends a lead without one more try. Past Meta's own retention of about 90 days, a lead is given up whatever
        the reason.
        """
        now = self._clock.now()
        ticket = self._store.fetches.begin(lead_id, now, lease_deadline)
        if ticket is None:
            return None
        # A lead Meta no longer keeps is given up whatever holds it (a retrieval pause no token fix ends, a
        # permission its page lost), without another try.
        if backoff.is_past_max_age(ticket.received_at, now, META_LEAD_RETENTION_SECONDS):
            reason = "gave up retrieving: Meta keeps a lead retrievable for about 90 days"
            return self._end(ticket, Completion(LeadStatus.DEAD, reason, error=reason))
        if (ticket.retrieval_pause is not None or ticket.page_paused) and self._pauses.waits(ticket, now):
            return LeadStatus.FETCHING
        try:
            lead = self._graph.get_lead(ticket.leadgen_id)
        except GraphError as exc:
            past_max_age = backoff.is_past_max_age(ticket.retries_since, now, self._settings.max_age_seconds)
            if past_max_age and not isinstance(exc, GraphConfigurationError | GraphNotFoundError):
                reason = f"gave up retrieving after the maximum age: {exc.message}"
                return self._end(ticket, Completion(LeadStatus.DEAD, reason, error=reason))
            return self._failed(ticket, exc)
        self._resume(ticket.page_id if ticket.page_paused else None)
        return self._complete(ticket, lead)

    def due_fetches(self) -> dict[str, float]:
        """Take the leads due a retrieval try (only one, the probe, while retrieval is paused): lead id -> the
        lease deadline it was taken under."""
        now = self._clock.now()
        limit = MAX_FETCHES_PER_SWEEP
        pause = self._store.fetch_pause.get()
        if pause is not None:
            if now < pause.next_probe_at:
                return {}
            limit = 1
        return self._store.fetches.claim_due(now, limit)

    def is_backfill_configured(self) -> bool:
        """True when there is a token and a facebook source (to list the forms it names, and to take in the leads Meta
        announced before a source listed their Page or form)."""
        return self._settings.has_access_token and bool(self._backfill.facebook_sources())

    def take_backfill_turn(self) -> bool:
        """True for exactly one caller per backfill interval, across every worker."""
        return self._backfill.take_turn()

    def forget_forms_unconfigured(self) -> None:
        """Forget what the backfill noted of forms no source names any longer (`MetaBackfill`)."""
        self._backfill.forget_forms_unconfigured()

    def backfill(self, stop_requested: Callable[[], bool] = lambda: False) -> int:
        """Run the backfill (`workers.meta_backfill`), ended early once `stop_requested`; returns how many leads it
        took in."""
        return self._backfill.run(stop_requested)

    def complete_listed(self, ticket: FetchTicket, lead: GraphLead) -> LeadStatus | None:
        """Complete a lead the backfill listed (delivery is woken once per form, by the backfill)."""
        return self._complete(ticket, lead, wake=False)

    def graph_answered(self, page_id: str | None) -> None:
        """The backfill's listing worked (as `page_id`'s probe, when given): see `_resume`."""
        self._resume(page_id)

    def graph_failed_every_call(self, exc: GraphError) -> None:
        """The backfill's listing failed as every call would: retrieval pauses (see `_pause`)."""
        self._pause(exc)

    def _failed(self, ticket: FetchTicket, exc: GraphError) -> LeadStatus | None:
        now = self._clock.now()
        extra = {"lead_id": ticket.lead_id, "leadgen_id": ticket.leadgen_id}
        if isinstance(exc, GraphPermissionError) and ticket.page_id:
            # One token serves every client's Page, and a client may withdraw its Page's lead access: that Page's
            # leads wait alone, or each of them would pause the others again at every try.
            self._pauses.page_paused(ticket.page_id, exc.message, ticket.form_id)
            next_try = now + self._settings.probe_interval_seconds
            reason = f"retrieval paused for page {ticket.page_id}: {exc.message}"
            self._store.fetches.defer(ticket.lead_id, now, next_try, reason, count_attempt=False)
            return LeadStatus.FETCHING
        if isinstance(exc, GraphConfigurationError):
            self._pause(exc)
            next_try = now + self._settings.probe_interval_seconds
            self._store.fetches.defer(
                ticket.lead_id, now, next_try, f"retrieval paused: {exc.message}", count_attempt=False
            )
            return LeadStatus.FETCHING
        if isinstance(exc, GraphNotFoundError):
            self._failures.ended()  # the Graph API answered, for this lead: a spell of failures is over
            logger.warning("meta lead not found in the Graph API: %s", exc.message, extra=extra)
            reason = f"the Graph API has no such lead: {exc.message}"
            return self._end(ticket, Completion(LeadStatus.REJECTED, reason, error=reason))
        delay = backoff.retry_delay_seconds(
            ticket.fetch_attempts + 1,
            self._settings.retry_base_seconds,
            self._settings.retry_max_delay_seconds,
            backoff.jitter_factor(self._rng),
        )
        self._failures.met(exc.message, extra)
        if isinstance(exc, GraphUnavailableError | GraphRateLimitedError):
            # The Graph API fails every call alike: one per waiting lead (Meta batches 1000 leads a notification)
            # would storm a service that is down, or keep a rate limit reached, since each call counts against it.
            # The lead keeps its own backoff too: one that alone fails so (the Graph API answering every other)
            # is tried less and less often, instead of pausing retrieval once per probe interval.
            delay = max(delay, self._pause(exc) - now)
        self._store.fetches.defer(ticket.lead_id, now, now + delay, exc.message, count_attempt=True)
        return LeadStatus.FETCHING

    def _complete(self, ticket: FetchTicket, lead: GraphLead, *, wake: bool = True) -> LeadStatus | None:
        """Normalize a retrieved lead under its source and end its retrieval; with `wake`, wake delivery
        when it is queued."""
        try:
            source = self._sources.by_slug(ticket.source, SourceKind.FACEBOOK)
        except UnknownSourceError:
            reason = f"source {ticket.source!r} is no longer configured as a facebook source"
            return self._end(ticket, Completion(LeadStatus.REJECTED, reason, error=reason))
        if is_test_lead(lead.field_data) and not source.deliver_test_leads:
            return self._end(ticket, Completion(LeadStatus.TEST, "Meta test lead (placeholder answers): not delivered"))
        submission, held_back = without_answered_external_id(
            meta_submission(lead.field_data, _provenance(source, ticket, lead), lead.custom_disclaimer_responses),
            source.field_map,
        )
        try:
            normalized = self._intake.normalize(source, submission)
        except ValidationError as exc:
            return self._end(ticket, self._rejected(ticket, submission, exc))
        warnings = (*held_back, *normalized.warnings)
        new = self._intake.new_lead(source, normalized.record, warnings, lead_id=ticket.lead_id)
        completion = Completion(
            LeadStatus.QUEUED,
            "retrieved from the Graph API",
            sealed_record=self._cipher.seal(new.record),
            external_id=new.external_id,
            phone_masked=new.phone_masked,
            warnings=new.kept_warnings,
            person=new.person,
            person_memory_seconds=new.person_memory_seconds,
            duplicate_window_seconds=new.duplicate_window_seconds,
        )
        status = self._end(ticket, completion)
        if wake and status is LeadStatus.QUEUED:
            self._wake()
        return status

    def _rejected(self, ticket: FetchTicket, submission: dict[str, Any], exc: ValidationError) -> Completion:
        """A lead normalization refuses: kept (sealed) as submitted, for a person to follow up."""
        reason = field_reason(exc.normalized_messages())  # type: ignore[no-untyped-call]
        return Completion(
            LeadStatus.REJECTED,
            f"rejected at retrieval: {reason}",
            error=reason,
            sealed_submission=self._cipher.seal(submission),
        )

    def _end(self, ticket: FetchTicket, completion: Completion) -> LeadStatus | None:
        status = self._store.fetches.complete(ticket.lead_id, completion, self._clock.now())
        logger.info("meta lead retrieval ended: %s", status, extra={"lead_id": ticket.lead_id})
        return status

    def _pause(self, exc: GraphError) -> float:
        """Retrieval pauses for every Page, or stays paused when a probe failed, for a rate limit until Graph's
        estimate of its end (when given); returns the time of the next probe."""
        regain = exc.regain_after_seconds if isinstance(exc, GraphRateLimitedError) else None
        return self._pauses.paused(exc.message, regain)

    def _resume(self, page_id: str | None = None) -> None:
        """The Graph API answered and took the token (for `page_id`'s leads, when that Page was paused alone): a
        pause, if any, is over, and so is a spell of failures."""
        self._failures.ended()
        self._pauses.answered(page_id)


def _provenance(source: LeadSource, ticket: FetchTicket, lead: GraphLead) -> dict[str, Any]:
    """Where the lead came from, as customFields: Meta's ids and the form's submission time (consent)."""
    return {
        "leadgen_id": lead.id,
        "form_id": lead.form_id or ticket.form_id,
        "page_id": ticket.page_id,
        "ad_id": lead.ad_id or ticket.ad_id,
        "adset_id": lead.adset_id,
        "campaign_id": lead.campaign_id,
        "platform": lead.platform,
        "is_organic": lead.is_organic,
        source.consent_keys.consent_at: _iso_utc(lead.created_time),
    }


def _iso_utc(value: str | None) -> str | None:
    """Graph's `2026-01-01T00:00:00+0000` as `2026-01-01T00:00:00Z`; anything unreadable as given."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return value
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):  # unreadable, or out of range in UTC (year 1 at +05:00)
        return value
