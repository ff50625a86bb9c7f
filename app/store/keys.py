"""Every Redis key the relay uses, the lead hash fields that hold sealed data, and what a lead id may look like."""

from __future__ import annotations

import re

PREFIX = "leadrelay:"


def lead_key(lead_id: str) -> str:
    """Hash of one lead's metadata and its encrypted record."""
    return f"{PREFIX}lead:{lead_id}"


def lead_events_key(lead_id: str) -> str:
    """List of a lead's last events, newest first."""
    return f"{PREFIX}lead:{lead_id}:events"


def lead_events_suffix() -> str:
    """What `lead_events_key` adds to `lead_key`: scripts touching many leads build events keys with it."""
    return lead_events_key("")[len(lead_key("")) :]


# What a lead id can look like: the relay makes 32 hex digits; anything else, such as an id carrying a
# key separator, names no lead (and must never reach a key name).
_LEAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_lead_id(text: str) -> bool:
    """True when `text` can be a lead id at all."""
    return _LEAD_ID.fullmatch(text) is not None


# Scripts that touch many leads build their keys from these (passed in ARGV).
LEAD_KEY_PREFIX = lead_key("")
LEAD_EVENTS_SUFFIX = lead_events_suffix()

# Lead hash fields holding sealed personal data: the careCycle record that delivery sends (and an operator
# may retry), or the submission as received when normalization refused it (kept for follow-up, never sent).
RECORD_FIELD = "record"
SUBMISSION_FIELD = "submission"
# Lead hash field of a Meta lead's leadgen id: what its record is retrieved by from the Graph API.
LEADGEN_ID_FIELD = "meta_leadgen_id"
# Lead hash field of the keyed hash of the submission an Idempotency-Key was first sent with (never the submission).
REQUEST_DIGEST_FIELD = "request_digest"
# Lead hash fields of a lead careCycle failed with a 5xx: when it last did (until then it is sent only with leads that
# met a 5xx too), and the fault group the lead is sent in (apart from every other lead) once careCycle failed its
# batch again while answering other uploads.
FAILED_AT_FIELD = "failed_at"
# Lead hash field marking a lead counted in its source's status counts (`source_status_counts_key`): every lead taken
# in by a release that keeps those counts. One without it (taken in by an earlier release; none is backfilled) is left
# out of them.
SOURCE_COUNTED_FIELD = "source_counted"
# Lead hash field of when an operator last re-queued the lead: its maximum age of retries counts from then.
RETRIED_AT_FIELD = "retried_at"
FAULT_GROUP_FIELD = "fault_group"


def ready_key() -> str:
    """Sorted set of lead ids waiting for delivery, scored by the time they may be sent."""
    return f"{PREFIX}ready"


def inflight_key() -> str:
    """Sorted set of batch ids being uploaded, scored by their visibility deadline."""
    return f"{PREFIX}inflight"


def batch_key(batch_id: str) -> str:
    """List of the lead ids in one claimed batch."""
    return f"{PREFIX}batch:{batch_id}"


def status_counts_key() -> str:
    """Hash of lead counts by status, kept by the transition scripts."""
    return f"{PREFIX}counts"


def source_status_counts_key(source: str) -> str:
    """Hash of one source's lead counts by status, kept by the transition scripts alongside `status_counts_key` for
    the leads marked `SOURCE_COUNTED_FIELD`."""
    return f"{PREFIX}counts:source:{source}"


def source_counts_since_key() -> str:
    """String: from when every lead taken in is counted by its source (epoch seconds): when a release keeping those
    counts first started a worker over leads it already held, which stay uncounted; 0 when it started over none."""
    return f"{PREFIX}counts:source-since"


def leads_index_key() -> str:
    """Sorted set of every lead id by receipt time, for newest-first listing."""
    return f"{PREFIX}leads"


def idempotency_key(scope: str, key: str) -> str:
    """String holding the lead id first accepted under an idempotency key within a scope."""
    return f"{PREFIX}idem:{scope}:{key}"


def person_key(phone: str) -> str:
    """String: when a phone number was last seen at intake (for the per-source duplicate window)."""
    return f"{PREFIX}person:{phone}"


def limiter_key() -> str:
    """String: the theoretical arrival time of the next allowed upload (GCRA), shared by all workers."""
    return f"{PREFIX}limiter:tat"


def rate_limit_in_use_key() -> str:
    """String: the requests per minute the running workers pace uploads by, kept alive by their tickers (for stats)."""
    return f"{PREFIX}limiter:limit_per_min"


def request_log_key() -> str:
    """Sorted set of recent upload request times, for the rate budget shown in stats."""
    return f"{PREFIX}limiter:log"


def pause_key() -> str:
    """Hash describing a delivery pause (reason, since, next probe time); absent when running."""
    return f"{PREFIX}pause"


def lane_key(lane: int) -> str:
    """String held while a delivery job for a lane is queued or running."""
    return f"{PREFIX}delivery:lane:{lane}"


def delivered_bucket_key(minute: int) -> str:
    """Counter of leads delivered during one minute (epoch minute)."""
    return f"{PREFIX}stats:delivered:{minute}"


def failed_bucket_key(minute: int) -> str:
    """Counter of leads rejected or dead during one minute (epoch minute)."""
    return f"{PREFIX}stats:failed:{minute}"


def delivered_second_key(second: int) -> str:
    """Counter of leads delivered during one second (epoch second): a stats window's part-minute edge."""
    return f"{PREFIX}stats:delivered:second:{second}"


def failed_second_key(second: int) -> str:
    """Counter of leads rejected or dead during one second (epoch second): a stats window's part-minute edge."""
    return f"{PREFIX}stats:failed:second:{second}"


def latency_samples_key() -> str:
    """List of the latest 1,000 deliveries' "<delivered at> <intake-to-delivery latency>" (epoch seconds, seconds),
    newest first."""
    return f"{PREFIX}stats:latency"


# The fields of the delivered total (see delivered_total_key).
DELIVERED_TOTAL_COUNT_FIELD = "count"
DELIVERED_TOTAL_SINCE_FIELD = "since"


def delivered_total_key() -> str:
    """Hash of the leads careCycle took since the relay began counting them: how many (DELIVERED_TOTAL_COUNT_FIELD)
    and since when (DELIVERED_TOTAL_SINCE_FIELD, the first counted delivery's epoch seconds). It only grows: a
    delivered lead purged after the retention leaves it as it was, unlike the count of delivered leads held."""
    return f"{PREFIX}stats:delivered_total"


def last_delivery_key() -> str:
    """String: time of the last successful upload."""
    return f"{PREFIX}stats:last_delivery"


def schema_version_key() -> str:
    """String: version of the stored data layout, checked by readiness."""
    return f"{PREFIX}schema_version"


def fingerprint_secret_key() -> str:
    """String: the secret of fingerprints (keyed hashes of phones, IPs, idempotency keys in key names), sealed
    with the record cipher. Created once; only its sealing changes after."""
    return f"{PREFIX}fingerprint_secret"


def readiness_probe_key() -> str:
    """String: the time of the last readiness probe, written so that a Redis refusing writes is not ready."""
    return f"{PREFIX}readiness_probe"


def metrics_key(name: str) -> str:
    """Hash of a delivery metric kept in Redis so every worker adds to one count (by label or bucket)."""
    return f"{PREFIX}metrics:{name}"


def intake_handover_key() -> str:
    """Hash of `<outcome>:<source>` -> intake counts made by workers (the Meta backfill), not yet taken into the
    intake counter of a web process serving `/metrics`."""
    return f"{PREFIX}metrics:intake_handover"


def intake_handover_receipt_key(token: str) -> str:
    """Hash of the intake counts one take moved out of `intake_handover_key()`, kept a few minutes under the
    take's token: the take asked again after its answer was lost gets the same counts, not none."""
    return f"{PREFIX}metrics:intake_handover:{token}"


def fetching_key() -> str:
    """Sorted set of Meta lead ids awaiting Graph retrieval (status `fetching`), scored by their next try."""
    return f"{PREFIX}meta:fetching"


def carecycle_failing_key() -> str:
    """Hash describing careCycle failing uploads (since, last_at, reason): set by a 5xx, timeout or connection
    error, removed once an upload careCycle reads again has made every retrying lead due; absent while it answers."""
    return f"{PREFIX}carecycle_failing"


def carecycle_answered_key() -> str:
    """String: when careCycle last read an upload (a 2xx, a 422 or another answer past authentication); a batch it
    fails again after that is failing on something of its own."""
    return f"{PREFIX}carecycle_answered_at"


def fetch_pause_key() -> str:
    """Hash describing a pause of Graph retrieval (reason, since, next probe time); absent when running."""
    return f"{PREFIX}meta:pause"


def page_fetch_pause_key(page_id: str) -> str:
    """Hash describing a pause of Graph retrieval for one Page's leads (its lead access withdrawn), as above, and the
    lead forms whose leads met it (a field `form:<form id>` each)."""
    return f"{PREFIX}meta:pause:page:{page_id}"


def page_held_fetches_key(page_id: str) -> str:
    """Set of the `fetching` leads held back while one Page's retrieval is paused: made due at once when it resumes."""
    return f"{PREFIX}meta:pause:page:{page_id}:held"


def paused_pages_until_key() -> str:
    """Sorted set: page id -> when its retrieval pause lapses unless a lead of the Page probes it again (the Pages
    listed in `paused_pages_key` whose pause has not lapsed are the ones paused)."""
    return f"{PREFIX}meta:paused-pages:until"


def paused_pages_key() -> str:
    """Hash: page id -> the reason its retrieval is paused, for every Page paused alone (what stats list)."""
    return f"{PREFIX}meta:paused-pages"


def unrouted_changes_key() -> str:
    """Sorted set: Meta leadgen changes no facebook source routed (their ids as a JSON array: leadgen, page, form,
    ad) -> when they first came; taken in once a source lists their Page or form."""
    return f"{PREFIX}meta:unrouted"


def backfill_turn_key() -> str:
    """String held for one backfill interval by the worker that queued the Meta backfill."""
    return f"{PREFIX}meta:backfill:turn"


def refused_form_listings_key() -> str:
    """Hash: Meta form id -> why the backfill's last listing of its leads was refused (a permission error, no Page
    paused alone known for the form); gone once a listing works."""
    return f"{PREFIX}meta:backfill:refused"


def backfill_since_key() -> str:
    """Hash: Meta form id -> when its leads are still to be listed from: the start time of the last backfill that listed
    them completely, or, for a form never listed so, one interval before the backfill first had it to list."""
    return f"{PREFIX}meta:backfill:since"


def backfill_listed_key() -> str:
    """Hash: Meta form id -> how far the listing of its owed leads has come since it was last listed completely: every
    lead created up to that time is taken in; gone once the form is listed completely again."""
    return f"{PREFIX}meta:backfill:listed"


def form_ip_throttle_key(slug: str, client: str, window: int) -> str:
    """Counter of posts to one form source from one client (IP or IPv6 /64) during one window."""
    return f"{PREFIX}throttle:form:{slug}:ip:{client}:{window}"


def form_throttle_key(slug: str, window: int) -> str:
    """Counter of posts to one form source from anyone during one window."""
    return f"{PREFIX}throttle:form:{slug}:{window}"


def status_index_key(status: str) -> str:
    """Sorted set of the ids of leads in one status, by receipt time (kept by the transition scripts)."""
    return f"{PREFIX}leads:status:{status}"


def source_index_key(source: str) -> str:
    """Sorted set of the ids of one source's leads, by receipt time."""
    return f"{PREFIX}leads:source:{source}"


def sources_seen_key() -> str:
    """Set of every source slug that has had a lead (to clean source indexes of a lead that expired unseen)."""
    return f"{PREFIX}sources"


def retained_records_key() -> str:
    """Sorted set of leads in a final status whose record retention runs, by when they reached it."""
    return f"{PREFIX}retention:records"


def retained_leads_key() -> str:
    """Sorted set of leads in a final status, by when they reached it: their metadata expires from then."""
    return f"{PREFIX}retention:leads"


def purge_lock_key() -> str:
    """String held by the worker that ran the last purge pass; its expiry spaces the passes."""
    return f"{PREFIX}retention:lock"


def worker_alive_key(name: str) -> str:
    """String held while the worker of that `--name` runs: its ticker sets it every tick with a short expiry."""
    return f"{PREFIX}worker-alive:{name}"


def worker_named_key(name: str) -> str:
    """String: the last worker of that `--name` kept a liveness key (it outlives that key, as RQ's registration of
    the name does), so a registration without one is known to be that worker's, not a live older version's."""
    return f"{PREFIX}worker-named:{name}"


def audit_key() -> str:
    """List of operator actions (JSON entries), newest first, capped."""
    return f"{PREFIX}audit"
