"""A record careCycle fails on: leads careCycle failed with a 5xx are sent only with leads that met one too, so
that the others, taken, tell a record's fault from careCycle's. A batch careCycle answers with a 5xx again after it
has read other uploads since the batch's last 5xx fails on something of its own, not on careCycle being down. Its
leads are then sent apart from every other lead, in halves, each half its own fault group, halved again at each such
failure, until the record careCycle fails on is alone and its batch-mates are delivered.

While careCycle reads no upload (an outage) nothing is split, so that the backlog leaves in full batches once it
answers again; each split costs one request more, after the backoff, never a burst.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from app.models import LeadStatus
from app.store.batches import ClaimedLead, Outcome
from workers.carecycle import CareCycleError, CareCycleTransientError

# What the event of a lead retried apart adds to careCycle's answer.
APART = "(careCycle took other uploads meanwhile: retried apart from other leads)"


def is_server_error(error: CareCycleError) -> bool:
    """True when careCycle answered the upload with a 5xx (not a timeout, no connection, not a 429)."""
    return type(error) is CareCycleTransientError and error.status is not None and error.status >= 500


def fails_on_its_own(leads: Sequence[ClaimedLead], answered_at: float | None) -> bool:
    """True when careCycle has read an upload since it last failed one of `leads` with a 5xx."""
    if answered_at is None:
        return False
    return any(lead.failed_at is not None and lead.failed_at < answered_at for lead in leads)


def in_halves(leads: Sequence[ClaimedLead], outcomes: list[Outcome]) -> list[Outcome]:
    """`outcomes` of `leads` with the retried ones of each half of the batch (in its order) in a new fault group of
    its own; a lone lead's in one of its own."""
    middle = max(1, len(leads) // 2)
    groups = {}
    for half in (leads[:middle], leads[middle:]):
        group = uuid.uuid4().hex
        groups.update({lead.id: group for lead in half})
    return [
        dataclasses.replace(outcome, fault_group=groups[outcome.lead_id], detail=f"{outcome.detail} {APART}")
        if outcome.status is LeadStatus.RETRYING
        else outcome
        for outcome in outcomes
    ]
