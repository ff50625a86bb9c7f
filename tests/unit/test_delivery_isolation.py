"""A record careCycle fails on with a 5xx every time: its batch-mates are delivered, the record ends alone, and an
outage (careCycle failing every upload) still leaves in full batches once careCycle is back."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from app.models import LeadStatus
from tests.unit.test_delivery import ScriptedCareCycle, admit, status_of
from workers.carecycle import CareCycleAmbiguousError, CareCycleTransientError, UploadResult
from workers.delivery import Deliverer

SERVER_ERROR = "careCycle 500 INTERNAL_ERROR: Internal server error"


class ChokingCareCycle(ScriptedCareCycle):
    """careCycle answering 500 to every upload that holds one of the `poison` externalIds (its server chokes on
    that record), and to every upload while `down`; its script first, as `ScriptedCareCycle`'s."""

    def __init__(self) -> None:
        super().__init__()
        self.poison: set[str] = set()
        self.down = False

    def upload(self, records: Sequence[dict[str, Any]]) -> UploadResult:
        if self.script:
            return super().upload(records)
        batch = [dict(r) for r in records]
        self.batches.append(batch)
        if self.down or any(r["externalId"] in self.poison for r in batch):
            raise CareCycleTransientError(SERVER_ERROR, 500)
        return UploadResult(succeeded=len(batch))

    def uploads_holding(self, external_id: str) -> list[list[str]]:
        return [ids for ids in self.external_ids() if external_id in ids]


@pytest.fixture
def carecycle() -> ChokingCareCycle:
    return ChokingCareCycle()


@pytest.fixture
def deliverer(store, carecycle, cipher, settings, clock) -> Deliverer:
    return Deliverer(store, carecycle, cipher, settings, clock, random.Random(7))  # type: ignore[arg-type]


def run_with_traffic(store, cipher, clock, deliverer, seconds: float, every: int | None = 5) -> list[str]:
    """Deliver for `seconds`, one request slot at a time, a new lead coming in every `every` slots (None: none);
    returns the new leads' ids."""
    newcomers: list[str] = []
    until, slot = clock.now() + seconds, 0
    while clock.now() < until:
        if every is not None and slot % every == 0:
            newcomers += admit(store, cipher, clock)
        deliverer.step()
        clock.advance(store.budget.interval_seconds)
        slot += 1
    return newcomers


def test_a_record_carecycle_fails_on_every_time_ends_alone_and_its_batch_mates_are_delivered(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=200)
    poison = ids[117]
    carecycle.poison.add(poison)

    newcomers = run_with_traffic(store, cipher, clock, deliverer, seconds=600)

    mates = [i for i in ids if i != poison]
    assert {status_of(store, i) for i in mates} == {LeadStatus.DELIVERED}
    assert status_of(store, poison) is LeadStatus.RETRYING  # still tried, within its maximum age
    # The leads that came in meanwhile never went with it: each was delivered at its first try.
    assert {(status_of(store, i), store.leads.get(i).attempts) for i in newcomers} == {(LeadStatus.DELIVERED, 1)}
    sizes = [len(upload) for upload in carecycle.uploads_holding(poison)]
    # Sent with its batch again once careCycle had taken another upload, then in the half holding it at each
    # failure (the 118th of 200 is in the second half of 100, then the first of 50, ...), then alone.
    assert sizes[:9] == [200, 200, 100, 50, 25, 13, 6, 3, 2]
    assert set(sizes[9:]) == {1}


def test_a_record_carecycle_fails_on_alone_waits_out_its_backoff_while_carecycle_takes_the_others(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=200)
    carecycle.poison.add(ids[0])
    run_with_traffic(store, cipher, clock, deliverer, seconds=600)
    tried = len(carecycle.uploads_holding(ids[0]))

    run_with_traffic(store, cipher, clock, deliverer, seconds=600)

    # Not sent again at each upload careCycle takes (about 120 in these 10 minutes), but after each backoff.
    retried = len(carecycle.uploads_holding(ids[0])) - tried
    assert 1 <= retried <= 600 / (settings.leadrelay_retry_max_delay_seconds / 2)
    # Its failures are its own: careCycle is not shown failing for them.
    assert store.outage.get() is None
    lead = store.leads.get(ids[0])
    assert (lead.status, lead.error) == (LeadStatus.RETRYING, SERVER_ERROR)
    assert (
        lead.events[0].detail
        == f"{SERVER_ERROR} (careCycle took other uploads meanwhile: retried apart from other leads)"
    )


def test_an_outage_splits_no_batch_and_its_backlog_leaves_in_full_batches_once_carecycle_is_back(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=600)
    carecycle.down = True
    run_with_traffic(store, cipher, clock, deliverer, seconds=300, every=None)  # nothing else comes in
    failed = len(carecycle.batches)
    assert store.outage.get() is not None

    carecycle.down = False
    run_with_traffic(store, cipher, clock, deliverer, seconds=10, every=None)

    assert {status_of(store, i) for i in ids} == {LeadStatus.DELIVERED}
    # The first answer makes the backlog due: the first upload after the outage is the one careCycle answered.
    assert [len(upload) for upload in carecycle.batches[failed:]] == [200, 200, 200]


def test_a_batch_failing_again_with_no_upload_read_meanwhile_is_not_split(store, cipher, clock, deliverer, carecycle):
    ids = admit(store, cipher, clock, count=4)
    carecycle.poison.add(ids[2])
    store.outage.recovered(clock.now())  # careCycle read an upload before this batch's first failure

    run_with_traffic(store, cipher, clock, deliverer, seconds=120, every=None)

    assert len(carecycle.batches) > 2
    assert carecycle.external_ids() == [ids] * len(carecycle.batches)
    assert {status_of(store, i) for i in ids} == {LeadStatus.RETRYING}


def test_a_record_carecycle_fails_on_that_an_operator_retries_after_the_maximum_age_is_still_sent_alone(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=20)
    poison = ids[5]
    carecycle.poison.add(poison)
    run_with_traffic(store, cipher, clock, deliverer, seconds=600)
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    run_with_traffic(store, cipher, clock, deliverer, seconds=120, every=None)
    assert status_of(store, poison) is LeadStatus.DEAD
    tried = len(carecycle.uploads_holding(poison))

    store.retries.requeue([poison], clock.now(), "retried by alice")
    newcomers = admit(store, cipher, clock, count=3)
    run_with_traffic(store, cipher, clock, deliverer, seconds=5, every=None)

    assert carecycle.uploads_holding(poison)[tried:] == [[poison]]
    assert {status_of(store, i) for i in newcomers} == {LeadStatus.DELIVERED}
    assert status_of(store, poison) is LeadStatus.RETRYING  # a fresh maximum age from the retry


def test_leads_an_operator_retries_after_an_outage_are_not_split_by_their_first_failure_since(
    store, cipher, clock, deliverer, carecycle, settings
):
    ids = admit(store, cipher, clock, count=200)
    carecycle.down = True
    deliverer.step()
    clock.advance(settings.leadrelay_max_age_hours * 3600)
    run_with_traffic(store, cipher, clock, deliverer, seconds=120, every=None)
    assert {status_of(store, i) for i in ids} == {LeadStatus.DEAD}
    carecycle.down = False
    run_with_traffic(store, cipher, clock, deliverer, seconds=5)  # careCycle takes uploads again

    store.retries.requeue(ids, clock.now(), "retried by alice")
    sent = len(carecycle.batches)
    carecycle.script.append(CareCycleTransientError(SERVER_ERROR, 500))  # one failure after the retry
    run_with_traffic(store, cipher, clock, deliverer, seconds=120, every=None)

    # The 5xx careCycle answered during the outage is not held against them: retried whole, not in halves.
    assert [len(upload) for upload in carecycle.batches[sent:]] == [200, 200]
    assert {status_of(store, i) for i in ids} == {LeadStatus.DELIVERED}


def test_records_carecycle_fails_on_in_several_batches_each_end_alone_and_all_their_batch_mates_are_delivered(
    store, cipher, clock, deliverer, carecycle
):
    ids = admit(store, cipher, clock, count=800)
    poison = {ids[i] for i in range(37, 800, 200)}  # one in each batch of 200
    carecycle.poison.update(poison)

    run_with_traffic(store, cipher, clock, deliverer, seconds=600)

    # The batches' failures are not taken for careCycle failing at large: each is halved down to its record.
    assert {status_of(store, i) for i in ids if i not in poison} == {LeadStatus.DELIVERED}
    assert {status_of(store, i) for i in poison} == {LeadStatus.RETRYING}
    assert all([i] in carecycle.external_ids() for i in poison)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            CareCycleTransientError(SERVER_ERROR, 500),
            CareCycleAmbiguousError("careCycle timed out"),  # no answer: nothing of its own
            id="a-5xx-then-a-timeout",
        ),
        pytest.param(
            CareCycleAmbiguousError("careCycle timed out"),
            CareCycleTransientError(SERVER_ERROR, 500),  # its first 5xx: careCycle may be down
            id="a-timeout-then-its-first-5xx",
        ),
    ],
)
def test_a_batch_is_not_split_when_a_timeout_is_one_of_two_failures_while_carecycle_reads_others(
    store, cipher, clock, deliverer, carecycle, first, second
):
    ids = admit(store, cipher, clock, count=4)
    carecycle.script.append(first)
    deliverer.step()
    clock.advance(store.budget.interval_seconds)
    store.outage.recovered(clock.now())  # careCycle read another upload since: the batch is due again
    carecycle.script.append(second)

    run_with_traffic(store, cipher, clock, deliverer, seconds=120, every=None)

    assert carecycle.external_ids() == [ids] * 3  # failed, failed again, taken: whole each time
    assert {status_of(store, i) for i in ids} == {LeadStatus.DELIVERED}
