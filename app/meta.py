"""Meta Lead Ads intake: the webhook's credentials, and each announced lead admitted as `fetching`.

Nothing here calls the Graph API. A lead is stored without a record, once per `leadgen_id`, and its
retrieval is queued; a worker fetches, normalizes and queues it (workers/meta.py). The backfill
admits the leads it finds through the same door, so a lead is never taken in twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.clock import Clock
from app.logs import OncePerChange
from app.models import LeadStatus, NewLead
from app.schemas.meta import LeadgenChange
from app.sources import LeadSource, SourceRegistry, UnknownSourceError
from app.store import Store
from app.store.fetches import fetch_lease_deadline

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
# Meta keeps a lead retrievable for about 90 days.
META_LEAD_RETENTION_SECONDS = 90 * 24 * 3600
# The backfill can find a lead that long: every leadgen_id is remembered as long.
LEADGEN_IDEMPOTENCY_TTL_SECONDS = META_LEAD_RETENTION_SECONDS
LEADGEN_IDEMPOTENCY_SCOPE = "@meta"  # no source slug holds "@"
# While a webhook setting is missing, the error naming it is said again at most this often.
UNSET_SETTING_REMIND_SECONDS = 60.0


def is_signature_valid(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """True when `X-Hub-Signature-256` is the HMAC-SHA256 of the exact body bytes under the app secret."""
    if not app_secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header[len(SIGNATURE_PREFIX) :].strip().lower().encode())


SUBSCRIPTION_EXPECTED = {
    "hub.mode": "expected subscribe",
    "hub.verify_token": "expected the verify token given when subscribing the webhook at Meta (FACEBOOK_VERIFY_TOKEN)",
    "hub.challenge": "expected the value Meta generates for the handshake, which is echoed back",
}


def subscription_faults(mode: str | None, verify_token: str | None, expected_token: str) -> dict[str, list[str]]:
    """What is wrong with Meta's handshake, by parameter (none for mode `subscribe` and our verify token, compared
    in constant time): what each expects, never the value it held."""
    faults = {}
    if mode != "subscribe":
        faults["hub.mode"] = [SUBSCRIPTION_EXPECTED["hub.mode"]]
    if not (expected_token and verify_token and hmac.compare_digest(verify_token.encode(), expected_token.encode())):
        faults["hub.verify_token"] = [SUBSCRIPTION_EXPECTED["hub.verify_token"]]
    return faults


class UnsetSettingAlarm:
    """What on-call reads while the webhook refuses requests for want of a setting (FACEBOOK_APP_SECRET,
    FACEBOOK_VERIFY_TOKEN): an error at the first refusal, then one at most once a minute while refusals go on,
    saying how many there were. Every request is refused alike, so one error per request would let a scanner
    hitting the URL flood the error log. Per process, as settings are: each web process says it for itself."""

    def __init__(self, now: Callable[[], float], remind_every_seconds: float = UNSET_SETTING_REMIND_SECONDS) -> None:
        self._when = OncePerChange(now, remind_every_seconds)

    def refused(self, variable: str, consequence: str) -> None:
        """A request was refused because `variable` is not set: log it if due."""
        say = self._when.met(variable, key=variable)
        if say is None:
            return
        if say.new:
            logger.error("Meta webhook refused: %s is not set: %s", variable, consequence)
        else:
            logger.error(
                "Meta webhook refused: %s is still not set: %s (%d more requests refused since the last line)",
                variable,
                consequence,
                say.repeats,
            )


@dataclass(frozen=True)
class AdmittedLeadgen:
    """The lead standing for one `leadgen_id`; `repeated` when it was admitted before. `status` is None for a lead
    taken in before and since deleted, its retention over (a leadgen id is remembered as long as Meta keeps the lead,
    longer than the relay keeps it)."""

    leadgen_id: str
    lead_id: str
    status: LeadStatus | None
    repeated: bool
    source: str


class MetaIntake:
    """Admits Meta leads as `fetching` and queues their retrieval."""

    def __init__(
        self,
        store: Store,
        sources: SourceRegistry,
        clock: Clock,
        enqueue_fetches: Callable[[Mapping[str, float]], object],
        *,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._sources = sources
        self._clock = clock
        self._enqueue_fetches = enqueue_fetches
        self._new_id = new_id

    def admit(
        self,
        changes: Sequence[LeadgenChange],
        detail: str = "announced by Meta's leadgen webhook",
        *,
        fetch: bool = True,
    ) -> list[AdmittedLeadgen]:
        """Store each routable change as a `fetching` lead, once per leadgen_id; with `fetch`, queue new ones.

        A change no facebook source claims (by form id, then page id) is skipped and logged by its ids, and its ids
        are remembered for as long as Meta keeps the lead: `admit_unrouted` takes it in once a source lists them.
        """
        routed: list[tuple[LeadgenChange, NewLead]] = []
        unrouted: list[str] = []
        for change in changes:
            source = self._source_of(change)
            if source is None:
                logger.warning(
                    "leadgen change for no configured source skipped: no facebook source lists its page_id or form_id",
                    extra=_ids(change),
                )
                unrouted.append(_unrouted_entry(change))
                continue
            routed.append((change, self._fetching_lead(source, change, detail)))
        now = self._clock.now()
        self._store.unrouted.remember(unrouted, now, META_LEAD_RETENTION_SECONDS)
        if not routed:
            return []
        stored = self._store.leads.admit([lead for _, lead in routed], [""] * len(routed), now)
        admitted = [
            AdmittedLeadgen(change.leadgen_id, a.id, None if a.purged else a.status, a.repeated, lead.source)
            for (change, lead), a in zip(routed, stored, strict=True)
        ]
        fresh = [a for a in admitted if not a.repeated]
        if fetch:  # each job carries the lease its lead was admitted under (its score in the fetching set)
            self._enqueue_fetches({lead.lead_id: fetch_lease_deadline(now) for lead in fresh})
        logger.info("admitted %d new meta leads", len(fresh), extra={"lead_ids": [a.lead_id for a in fresh]})
        return admitted

    def admit_unrouted(self) -> list[AdmittedLeadgen]:
        """Take in, as `admit` does (their retrieval queued), the changes skipped for want of a source that one lists
        now (its Page or form added since); returns the leads new to the relay."""
        entries = self._store.unrouted.pending(self._clock.now() - META_LEAD_RETENTION_SECONDS)
        changes = {entry: _change_of(entry) for entry in entries}
        routable = {entry: c for entry, c in changes.items() if c is not None and self._source_of(c) is not None}
        admitted = self.admit(list(routable.values()), "announced by Meta's leadgen webhook before a source listed it")
        # Forgotten once taken in (or found taken in already), and forgotten when unreadable.
        self._store.unrouted.forget([entry for entry, change in changes.items() if change is None or entry in routable])
        return [a for a in admitted if not a.repeated]

    def _source_of(self, change: LeadgenChange) -> LeadSource | None:
        try:
            return self._sources.by_meta_ids(change.page_id, change.form_id)
        except UnknownSourceError:
            return None

    def _fetching_lead(self, source: LeadSource, change: LeadgenChange, detail: str) -> NewLead:
        lead_id = self._new_id()
        ids = {
            "leadgen_id": change.leadgen_id,
            "form_id": change.form_id,
            "page_id": change.page_id,
            "ad_id": change.ad_id,
        }
        return NewLead(
            id=lead_id,
            source=source.slug,
            record={},
            external_id=lead_id,
            phone_masked="",
            status=LeadStatus.FETCHING,
            idempotency_key=f"leadgen:{change.leadgen_id}",
            idempotency_ttl_seconds=LEADGEN_IDEMPOTENCY_TTL_SECONDS,
            # A leadgen id names one Meta lead whichever source routing gives it (routing can change between
            # a webhook and the backfill): taken in once across sources.
            idempotency_scope=LEADGEN_IDEMPOTENCY_SCOPE,
            idempotency_outlives_lead=True,
            detail=detail,
            extra_fields={f"meta_{name}": value for name, value in ids.items() if value},
        )


def _unrouted_entry(change: LeadgenChange) -> str:
    """A change's ids as `UnroutedChanges` keeps them (a JSON array: leadgen, page, form, ad)."""
    return json.dumps([change.leadgen_id, change.page_id, change.form_id, change.ad_id], separators=(",", ":"))


def _change_of(entry: str) -> LeadgenChange | None:
    """The change an `_unrouted_entry` keeps, None when it cannot be read."""
    try:
        leadgen_id, page_id, form_id, ad_id = json.loads(entry)
    except (ValueError, TypeError):  # not JSON, or not four values
        return None
    if not isinstance(leadgen_id, str) or not all(i is None or isinstance(i, str) for i in (page_id, form_id, ad_id)):
        return None
    return LeadgenChange(leadgen_id, page_id, form_id, ad_id)


def _ids(change: LeadgenChange) -> dict[str, str | None]:
    return {"leadgen_id": change.leadgen_id, "page_id": change.page_id, "form_id": change.form_id}
