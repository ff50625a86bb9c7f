"""Opening a claimed batch: each lead's sealed record decrypted and given its externalId, a lead repeating an earlier
one's externalId held back, a record no configured key opens set aside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.crypto import RecordCipher, RecordDecryptionError
from app.store.batches import Batch, ClaimedLead


@dataclass(frozen=True)
class Entry:
    """A claimed lead with its opened record, ready to upload."""

    lead: ClaimedLead
    record: dict[str, Any]


@dataclass
class OpenedBatch:
    """A batch's leads sorted for upload: `entries` to send, `deferred` (their externalId repeats an earlier lead's
    in the batch), `unreadable` (no configured key opens their record)."""

    entries: list[Entry] = field(default_factory=list)
    deferred: list[ClaimedLead] = field(default_factory=list)
    unreadable: list[ClaimedLead] = field(default_factory=list)


def open_batch(batch: Batch, cipher: RecordCipher) -> OpenedBatch:
    """Decrypt the batch's records, in order, sorting its leads as `OpenedBatch` says."""
    opened = OpenedBatch()
    seen: set[str] = set()
    for lead in batch.leads:
        if lead.external_id in seen:
            opened.deferred.append(lead)
            continue
        try:
            record = cipher.open(lead.sealed_record)
        except RecordDecryptionError:
            opened.unreadable.append(lead)
            continue
        seen.add(lead.external_id)
        record["externalId"] = lead.external_id
        opened.entries.append(Entry(lead, record))
    return opened
