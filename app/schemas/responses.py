"""Response bodies shared across the HTTP interface, as marshmallow schemas (for dumping and OpenAPI)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from app.schemas.status import lead_status_field


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True,
        metadata={
            "example": "VALIDATION_ERROR",
            "description": "What went wrong, by what the client does about it: VALIDATION_ERROR (422: fix the named"
            " fields), BAD_REQUEST (400: the body or a header cannot be read), UNAUTHORIZED (401), FORBIDDEN (403),"
            " NOT_FOUND (404), CONFLICT (409: the lead's state forbids it), PAYLOAD_TOO_LARGE (413),"
            " UNSUPPORTED_MEDIA_TYPE (415), RATE_LIMITED (429: wait Retry-After seconds), UNAVAILABLE (503: send"
            " again after Retry-After seconds), INTERNAL_ERROR (500); any other HTTP error by its name, such as"
            " METHOD_NOT_ALLOWED.",
        },
    )
    message = fields.String(required=True)
    field_errors = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        required=True,
        metadata={"description": "Per field (or per item index), what was expected."},
    )


class ErrorSchema(Schema):
    """Every error: `{"error": {"code", "message", "fields"}}`."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class LeadAcceptedSchema(Schema):
    """A lead the relay now holds."""

    id = fields.String(required=True)
    status = lead_status_field(required=True, metadata={"example": "queued"})
    statusUrl = fields.String(required=True)
    warnings = fields.List(
        fields.String(), required=True, metadata={"description": "Optional values dropped, and why."}
    )


class BulkItemResultSchema(Schema):
    """One item of a bulk submission: accepted (id, status, ...) or refused (error)."""

    index = fields.Integer(required=True)
    id = fields.String()
    status = lead_status_field()
    statusUrl = fields.String()
    warnings = fields.List(fields.String())
    error = fields.Nested(ErrorDetailSchema)


class BulkAcceptedSchema(Schema):
    results = fields.List(fields.Nested(BulkItemResultSchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    redis = fields.Boolean(required=True, metadata={"description": "Redis answers."})
    redisWrites = fields.Boolean(metadata={"description": "False when Redis answers but refuses writes."})
    redisProblem = fields.String(
        metadata={
            "description": "Why Redis is not usable, in a word: read-only, out of memory, writes stopped,"
            " too few replicas, loading, authentication refused, timed out, unreachable or error.",
            "example": "read-only",
        }
    )
    schemaCurrent = fields.Boolean()


class WindowCountsSchema(Schema):
    last5m = fields.Integer(required=True)
    last1h = fields.Integer(required=True)


class RateBudgetSchema(Schema):
    limitPerMinute = fields.Integer(
        required=True,
        metadata={"description": "careCycle upload requests a minute the workers pace by (see `limitFrom`)"},
    )
    limitFrom = fields.String(
        required=True,
        validate=validate.OneOf(["workers", "settings"]),
        metadata={
            "description": "workers: the limit the running workers noted within their last ten ticks (about 10 s); "
            "settings: none did (no worker runs), so CARECYCLE_RATE_LIMIT_PER_MIN of the process answering"
        },
    )
    usedLastMinute = fields.Integer(required=True)


class PauseSchema(Schema):
    reason = fields.String(
        required=True,
        metadata={
            "description": "what paused it, with what was met since when that did not end the pause: `<cause>; the "
            "last upload met: <failure>` (delivery's probe meeting a 5xx, timeout or 429) or `<cause>; met since: "
            "<failure>` (a failure while a later probe time was kept); never a key, token or personal data"
        },
    )
    since = fields.Float(required=True, metadata={"description": "when the pause began, in epoch seconds (UTC)"})
    nextProbeAt = fields.Float(
        required=True, metadata={"description": "when the next probe request is due, in epoch seconds (UTC)"}
    )


class CareCycleFailingSchema(Schema):
    since = fields.Float(required=True, metadata={"description": "when uploads began to fail, in epoch seconds (UTC)"})
    lastAt = fields.Float(
        required=True, metadata={"description": "when the last upload failed, in epoch seconds (UTC)"}
    )
    reason = fields.String(
        required=True, metadata={"description": "the last failure: careCycle's 5xx answer, a timeout or no connection"}
    )


class LatencySchema(Schema):
    p50 = fields.Float(required=True, allow_none=True)
    p95 = fields.Float(required=True, allow_none=True)


class StatsSchema(Schema):
    """`GET /v1/stats`."""

    counts = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "leads held by status: of every source, or with `?source=` of that source alone (without"
            " the leads taken in before the relay counted by source, while `countsSourceSince` is given); the only"
            " numbers `source` narrows"
        },
    )
    countsSource = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the source `counts` are of; null: every source. Every other number is relay-wide (all "
            "sources), whichever source is asked for"
        },
    )
    countsSourceSince = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "with `source`, while leads taken in before the relay began counting by source are still"
            " held: when it began (epoch seconds). Those leads are left out of their source's `counts` (they are in"
            " the relay-wide counts and the lead list). Null once none is held, and without `source`"
        },
    )
    queueDepth = fields.Integer(
        required=True,
        metadata={"description": "leads waiting for delivery: queued, and retrying ones until their next attempt"},
    )
    inFlightBatches = fields.Integer(required=True)
    oldestQueuedAgeSeconds = fields.Float(
        required=True,
        metadata={"description": "seconds since the oldest lead not delivered yet (queued, sending, retrying) came in"},
    )
    delivered = fields.Nested(
        WindowCountsSchema,
        required=True,
        metadata={"description": "leads careCycle took in the last 5 minutes and in the last hour"},
    )
    deliveredTotal = fields.Integer(
        required=True,
        metadata={
            "description": "leads careCycle took since `deliveredTotalSince`, relay-wide: it only grows, a delivered "
            "lead purged after the retention counted still (unlike `counts.delivered`, the delivered leads held)"
        },
    )
    deliveredTotalSince = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "when the relay began counting `deliveredTotal`: its first delivery counted, in epoch"
            " seconds (UTC); null while none is"
        },
    )
    failed = fields.Nested(
        WindowCountsSchema,
        required=True,
        metadata={
            "description": "leads that became `rejected` (refused by normalization or by careCycle) or `dead` (given"
            " up after the maximum age) in the last 5 minutes and in the last hour; a lead retried and refused again"
            " counts again"
        },
    )
    rateBudget = fields.Nested(RateBudgetSchema, required=True)
    estimatedDrainSeconds = fields.Integer(
        required=True,
        allow_none=True,
        metadata={
            "description": "queue depth at the rate-limit ceiling from the next free request slot (once careCycle's "
            "retryAfter has passed), and at least until the last waiting lead is due (a retry's backoff); null while "
            "no lead leaves: `estimatedDrainBlockedBy` says why"
        },
    )
    estimatedDrainBlockedBy = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(["noWorker", "paused", "careCycleFailing"]),
        metadata={
            "description": "why `estimatedDrainSeconds` is null, the first that holds: noWorker (no worker noted its"
            " rate limit within about 10 s: nothing is delivered, nor probed, until one runs; `rateBudget.limitFrom`"
            " is then `settings`), paused (delivery is paused: `pause`), careCycleFailing (`careCycleFailing`); null"
            " while leads leave and the estimate is given"
        },
    )
    paused = fields.Boolean(required=True)
    pause = fields.Nested(PauseSchema, required=True, allow_none=True)
    careCycleFailing = fields.Nested(
        CareCycleFailingSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": "careCycle failing uploads (5xx, timeouts, no connection): leads retry with backoff, and "
            "once careCycle takes an upload again every retrying lead is due at once, oldest first; null while it "
            "answers"
        },
    )
    retrievalPaused = fields.Boolean(required=True, metadata={"description": "Meta Graph retrieval paused"})
    retrievalPause = fields.Nested(PauseSchema, required=True, allow_none=True)
    retrievalPausedPages = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "Meta Pages whose retrieval alone is paused (the token lacks a permission for their leads),"
            " each with the reason; every other Page's leads are retrieved. A Page leaves it when a probe of its"
            " leads works, or 34 minutes after its last failed probe (none of its leads left to probe it)"
        },
    )
    retrievalRefusedForms = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "Meta lead forms whose backfill listing Graph refuses for a permission (codes 10, 200-299)"
            " while no Page of theirs is paused alone, each with the reason: their leads are taken in only as their"
            " webhooks come, and each is listed again at every backfill. A form leaves it once a listing works"
            " (taking in what was missed since its last listing, or since the refusal began, up to Meta's 90 days)"
            " or it is no longer configured"
        },
    )
    backfillCatchingUp = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={
            "description": "Meta lead forms whose backfill is catching up on a long span of leads owed (their listing"
            " refused or failing for a while; at most Meta's 90 days), listed six hours at a time over several"
            " backfills: each with the time up to which its leads are taken in so far, in epoch seconds (UTC). A form"
            " leaves it once listed up to now, or once no longer configured"
        },
    )
    lastDeliveryAt = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "when careCycle last took a lead, in epoch seconds (UTC); null: never"},
    )
    latencySeconds = fields.Nested(
        LatencySchema,
        required=True,
        metadata={
            "description": "intake-to-delivery latency p50/p95 of the deliveries in the last hour (at most the latest"
            " 1,000); each null when there was none"
        },
    )
    readAt = fields.Float(
        required=True,
        metadata={
            "description": "the relay's time these numbers were read at, in epoch seconds (UTC): what"
            " `oldestQueuedAgeSeconds` is measured to, and what a client measures `lastDeliveryAt`, a pause's times and"
            " the leads' times against (its own clock may be off)"
        },
    )


class SourceSummarySchema(Schema):
    slug = fields.String(required=True, metadata={"description": "the source's slug, as leads name it"})
    kind = fields.String(
        required=True, validate=validate.OneOf(["api", "form", "facebook", "google"]), metadata={"example": "api"}
    )


class SourceListSchema(Schema):
    """`GET /v1/sources`."""

    sources = fields.List(
        fields.Nested(SourceSummarySchema),
        required=True,
        metadata={
            "description": "the configured sources by slug, each with its kind; never a secret, an id or a mapping."
            " A source no longer configured is not listed, though its leads stay listed and retried by its slug"
        },
    )


class LeadgenLeadSchema(Schema):
    leadgenId = fields.String(required=True)
    id = fields.String(required=True)
    status = lead_status_field(
        required=True,
        allow_none=True,
        metadata={
            "description": "the lead's status; null for a leadgen id taken in before whose lead was since deleted, its"
            " retention over (its status URL answers 404)"
        },
    )
    repeated = fields.Boolean(required=True)


class LeadgenReceiptSchema(Schema):
    """`POST /v1/webhooks/facebook`: what became of each leadgen change."""

    leads = fields.List(fields.Nested(LeadgenLeadSchema), required=True)
    skipped = fields.Integer(required=True)


class BulkSubmissionSchema(Schema):
    """`{"leads": [...]}`: 1 to 200 leads in one request, and no other field."""

    class Meta:
        unknown = RAISE

    leads = fields.List(fields.Dict(), required=True, validate=validate.Length(1, 200))
