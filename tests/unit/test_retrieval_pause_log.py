"""A Meta retrieval pause is said once per change, though Graph gives each call (each failed probe) a trace id of its
own: probes refused alike but for their `fbtrace_id` are said as the pause going on, at most once a minute."""

from __future__ import annotations

import logging

import pytest

from workers.retrieval_pauses import RetrievalPauses

PROBE_SECONDS = 10.0
PAGE_ID = "100000000000002"
TOKEN_EXPIRED = "Graph API 400 OAuthException code 190/463: Session has expired. (fbtrace_id {trace})"


@pytest.fixture
def pauses(store, clock):
    return RetrievalPauses(store, clock, PROBE_SECONDS, logging.getLogger("workers.meta"))


def said(caplog):
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]


def test_probes_refused_alike_but_for_their_trace_ids_are_said_as_the_pause_going_on(pauses, clock, caplog):
    with caplog.at_level(logging.INFO, logger="workers.meta"):
        for probe in range(7):  # a probe every 10 s for a minute, each call with its own trace id
            pauses.paused(TOKEN_EXPIRED.format(trace=f"AbCdEfGh{probe:03d}"))
            clock.advance(PROBE_SECONDS)

    assert said(caplog) == [
        f"meta lead retrieval paused: {TOKEN_EXPIRED.format(trace='AbCdEfGh000')}",
        f"meta lead retrieval still paused: {TOKEN_EXPIRED.format(trace='AbCdEfGh006')} "
        "(6 more probes failed alike in 60 s)",
    ]


def test_a_pages_probes_refused_alike_but_for_their_trace_ids_are_said_as_its_pause_going_on(pauses, clock, caplog):
    refused = "Graph API 403 OAuthException code 10: (#10) no lead access (fbtrace_id {trace})"
    with caplog.at_level(logging.INFO, logger="workers.meta"):
        for probe in range(3):
            pauses.page_paused(PAGE_ID, refused.format(trace=f"AbCdEfGh{probe:03d}"))
            clock.advance(PROBE_SECONDS)

    assert said(caplog) == [f"meta lead retrieval paused for a page: {refused.format(trace='AbCdEfGh000')}"]


def test_a_probe_refused_otherwise_is_said_anew(pauses, clock, caplog):
    with caplog.at_level(logging.INFO, logger="workers.meta"):
        pauses.paused(TOKEN_EXPIRED.format(trace="AbCdEfGh000"))
        clock.advance(PROBE_SECONDS)
        pauses.paused("Graph API 400 OAuthException code 190/460: password changed (fbtrace_id AbCdEfGh001)")

    assert len(said(caplog)) == 2
