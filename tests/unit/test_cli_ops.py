"""`leadrelay retry` and `leadrelay stats`: the same operations as the ops API, from a shell, audited."""

from __future__ import annotations

import json

import pytest

from app import cli
from app.crypto import FingerprintSecretError
from app.models import LeadStatus
from app.store.retries import MAX_REQUEUE_BATCH
from tests.storecheck import assert_indexes_consistent, leads_in
from tests.support import fail_second_requeue
from workers.context import build_context
from workers.runner import DeliveryTicker


@pytest.fixture(autouse=True)
def shell(monkeypatch, redis):
    """The CLI on the test's Redis, run by OS user `dana`, with no relay settings in the environment."""
    monkeypatch.setattr(cli, "_connect", lambda settings: redis)
    monkeypatch.setattr("getpass.getuser", lambda: "dana")
    for variable in ("CARECYCLE_RATE_LIMIT_PER_MIN", "LEADRELAY_RETENTION_DAYS", "LEADRELAY_RECORD_RETENTION_HOURS"):
        monkeypatch.delenv(variable, raising=False)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_cli_retry_requeues_failed_leads_by_filter_and_audits_the_os_user(store, cipher, clock, capsys):
    dead = leads_in(store, cipher, clock, LeadStatus.DEAD, count=2, source="web")
    [other] = leads_in(store, cipher, clock, LeadStatus.DEAD, source="partner")

    code, out, _ = run(capsys, "retry", "--status", "dead", "--source", "web")

    assert (code, out) == (0, {"requeued": 2, "skipped": 0, "skippedReasons": {}})
    assert [lead.status for lead in store.leads.get_many(lead.id for lead in dead)] == [LeadStatus.QUEUED] * 2
    assert store.leads.get(other.id).status is LeadStatus.DEAD
    [entry] = store.audit.recent(10)
    assert (entry.action, entry.actor, entry.count) == ("retry_leads", "cli:dana", 2)
    assert store.leads.get(dead[0].id).events[0].detail == "retried by cli:dana"
    assert_indexes_consistent(store)


def test_cli_retry_interrupted_part_way_says_and_audits_the_leads_it_requeued(
    store, cipher, clock, capsys, monkeypatch
):
    leads_in(store, cipher, clock, LeadStatus.DEAD, count=MAX_REQUEUE_BATCH + 1)
    fail_second_requeue(monkeypatch, KeyboardInterrupt())

    code, out, err = run(capsys, "retry", "--status", "dead")

    assert (code, out) == (130, None)
    assert f"matching leads re-queued before it stopped: {MAX_REQUEUE_BATCH} (audited)" in err
    [entry] = store.audit.recent(10)
    assert (entry.action, entry.actor, entry.count) == ("retry_leads", "cli:dana", MAX_REQUEUE_BATCH)


def test_cli_retry_takes_since_as_iso_or_epoch(store, cipher, clock, capsys):
    leads_in(store, cipher, clock, LeadStatus.REJECTED)
    clock.advance(3600)
    [recent] = leads_in(store, cipher, clock, LeadStatus.REJECTED)

    code, out, _ = run(capsys, "retry", "--status", "rejected", "--since", str(int(clock.now())))

    assert (code, out) == (0, {"requeued": 1, "skipped": 0, "skippedReasons": {}})
    assert store.leads.get(recent.id).status is LeadStatus.QUEUED


def test_cli_retry_one_lead_by_id(store, cipher, clock, capsys):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)

    code, out, _ = run(capsys, "retry", "--id", lead.id)

    assert (code, out) == (0, {"requeued": 1})
    assert store.leads.get(lead.id).status is LeadStatus.QUEUED
    assert [(e.action, e.lead_id, e.actor) for e in store.audit.recent(10)] == [("retry_lead", lead.id, "cli:dana")]


def test_cli_retry_by_id_queues_a_duplicate_lead(store, cipher, clock, capsys):
    [duplicate] = leads_in(store, cipher, clock, LeadStatus.DUPLICATE)

    code, out, _ = run(capsys, "retry", "--id", duplicate.id)

    assert (code, out) == (0, {"requeued": 1})
    assert store.leads.get(duplicate.id).status is LeadStatus.QUEUED
    assert store.leads.get(duplicate.id).events[0].detail == "retried by cli:dana"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param(LeadStatus.DELIVERED, "delivered lead cannot be retried", id="delivered"),
        pytest.param(None, "no lead nope: none was taken in under this id, or it was deleted", id="unknown"),
    ],
)
def test_cli_retry_of_a_lead_it_cannot_retry_exits_1_saying_why(store, cipher, clock, capsys, status, message):
    lead_id = leads_in(store, cipher, clock, status)[0].id if status else "nope"

    code, out, err = run(capsys, "retry", "--id", lead_id)

    assert code == 1 and out is None and message in err
    assert store.audit.recent(10) == []


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        pytest.param(["retry"], "--status", id="no-filter"),
        pytest.param(["retry", "--status", "dead", "--since", "last tuesday"], "--since", id="bad-since"),
        pytest.param(["retry", "--id", "x", "--status", "dead"], "--id", id="id-and-filter"),
        # A byte that is no UTF-8 in a shell argument reaches Python as a lone surrogate, which no Redis command takes.
        pytest.param(["retry", "--status", "dead", "--source", "web\udcff"], "--source", id="source-not-utf8"),
    ],
)
def test_cli_retry_refuses_bad_flags_naming_them(store, cipher, clock, capsys, argv, named):
    [lead] = leads_in(store, cipher, clock, LeadStatus.DEAD)

    code, out, err = run(capsys, *argv)

    assert code == 2 and out is None and named in err
    assert store.leads.get(lead.id).status is LeadStatus.DEAD


@pytest.mark.parametrize("lead_id", ["", "  "])
def test_cli_retry_refuses_a_blank_id_naming_the_flag(capsys, lead_id):
    with pytest.raises(SystemExit) as raised:
        cli.main(["retry", "--id", lead_id])

    assert raised.value.code == 2
    assert "argument --id: expected a lead's id" in capsys.readouterr().err


def test_cli_retry_refusal_of_a_flag_says_what_was_expected(capsys):
    code, out, err = run(capsys, "retry", "--status", "dead", "--source", "")

    assert code == 2 and out is None
    assert "--source: expected a source slug: 1 to 63 lowercase letters, digits, - and _" in err


def test_cli_retry_refuses_a_status_other_than_dead_or_rejected(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["retry", "--status", "delivered"])

    assert raised.value.code == 2 and "--status" in capsys.readouterr().err


def test_cli_stats_prints_the_stats_as_json(store, cipher, clock, capsys):
    leads_in(store, cipher, clock, LeadStatus.QUEUED, count=2)
    leads_in(store, cipher, clock, LeadStatus.DEAD)

    code, out, _ = run(capsys, "stats")

    assert code == 0
    assert out["counts"]["queued"] == 2 and out["counts"]["dead"] == 1 and out["queueDepth"] == 2


def test_cli_help_says_check_config_checks_the_sources_file_too(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])

    listing = " ".join(capsys.readouterr().out.split())
    assert "check-config validate the environment and the sources file" in listing


def test_cli_retry_stops_with_a_configuration_error_when_no_configured_key_opens_the_fingerprint_secret(
    monkeypatch, capsys
):
    def unopenable(settings):  # as normalizing a kept submission again finds it
        raise FingerprintSecretError("no configured LEADRELAY_ENCRYPTION_KEY key opens it")

    monkeypatch.setattr(cli, "_connect", unopenable)

    code, out, err = run(capsys, "retry", "--status", "rejected")

    assert code == 2 and out is None
    assert "configuration error" in err and "LEADRELAY_ENCRYPTION_KEY" in err


def test_cli_stats_shows_the_rate_limit_the_workers_pace_by_not_the_shells(
    settings, redis, store, cipher, clock, capsys
):
    # The operator's shell has no CARECYCLE_RATE_LIMIT_PER_MIN (60 by default); the workers run with 6.
    DeliveryTicker(build_context(settings.replace(carecycle_rate_limit_per_min=6), redis=redis)).announce_rate_limit()

    code, out, _ = run(capsys, "stats")

    assert code == 0
    assert out["rateBudget"] == {"limitPerMinute": 6, "limitFrom": "workers", "usedLastMinute": 0}
