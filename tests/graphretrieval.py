"""Meta retrieval wired to the Graph stand-in over loopback HTTP, for tests on a real Redis: one facebook source of
one Page, its forms, and leads announced by webhook as Meta would."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from app.clock import Clock
from app.crypto import RecordCipher
from app.intake import Intake
from app.meta import MetaIntake
from app.schemas.meta import LeadgenChange
from app.sources import LeadSource, SourceKind, SourceRegistry
from app.store import Store
from tests.graphstub import GraphStub, serve_graph
from workers.graph import GraphClient
from workers.meta import GraphReader, MetaRetrieval, RetrievalSettings

PAGE_ID, FORM_ID = "100000000000001", "200000000000001"
PROBE_SECONDS = 10.0
BACKFILL_SECONDS = 900.0
# How Meta retrieval runs in tests: a quick backoff, a probe every 10 s, a backfill every 15 minutes.
RETRIEVAL_SETTINGS = RetrievalSettings(
    max_age_seconds=72 * 3600,
    retry_base_seconds=1.0,
    retry_max_delay_seconds=60.0,
    probe_interval_seconds=PROBE_SECONDS,
    backfill_interval_seconds=BACKFILL_SECONDS,
    has_access_token=True,
)
ANSWERS = [{"name": "full_name", "values": ["Jane Example"]}, {"name": "zip_code", "values": ["10001"]}]


def facebook_source(form_ids: Sequence[str] = (FORM_ID,), page_ids: Sequence[str] = (PAGE_ID,)) -> LeadSource:
    return LeadSource(slug="fb-acme", kind=SourceKind.FACEBOOK, page_ids=tuple(page_ids), form_ids=tuple(form_ids))


@contextmanager
def retrieval_over_http(
    store: Store,
    stub: GraphStub,
    sources: SourceRegistry,
    cipher: RecordCipher,
    clock: Clock,
    around: Callable[[GraphClient], GraphReader] | None = None,
) -> Iterator[MetaRetrieval]:
    """Retrieval of `sources`' leads through a Graph client talking to `stub`, served for as long as it is used;
    `around` wraps the client (to run another call while one is in flight, say)."""
    admission = MetaIntake(store, sources, clock, lambda jobs: None)
    with serve_graph(stub) as url:
        graph = GraphClient(url, "v21.0", stub.token, connect_timeout=1, read_timeout=2)
        try:
            yield meta_retrieval(store, around(graph) if around else graph, admission, sources, cipher, clock)
        finally:
            graph.close()


def meta_retrieval(
    store: Store,
    graph: GraphReader,
    admission: MetaIntake,
    sources: SourceRegistry,
    cipher: RecordCipher,
    clock: Clock,
    wake: Callable[[], None] = lambda: None,
) -> MetaRetrieval:
    """Retrieval of `sources`' leads through `graph`, with the test settings (`RETRIEVAL_SETTINGS`), waking delivery
    through `wake`."""
    intake = Intake(store, cipher, clock, lambda: None, person_memory_seconds=sources.person_memory_seconds)
    return MetaRetrieval(
        store, graph, intake, admission, sources, cipher, RETRIEVAL_SETTINGS, clock, wake, random.Random(7)
    )


def add_leads(stub: GraphStub, clock: Clock, leadgen_ids: Sequence[str], form_id: str = FORM_ID) -> None:
    """Leads Graph holds for `form_id`, each with its own phone, submitted a minute ago."""
    for n, leadgen_id in enumerate(leadgen_ids):
        phone = {"name": "phone_number", "values": [f"+121255501{n % 100:02d}"]}
        stub.add_lead(leadgen_id, form_id, [*ANSWERS, phone], clock.now() - 60)


def announce(
    store: Store, sources: SourceRegistry, clock: Clock, leadgen_ids: Sequence[str], form_id: str = FORM_ID
) -> list[str]:
    """The leads' webhook notification admitted (page and form ids, as Meta sends them): their lead ids."""
    admission = MetaIntake(store, sources, clock, lambda jobs: None)
    changes = [LeadgenChange(i, page_id=PAGE_ID, form_id=form_id) for i in leadgen_ids]
    return [a.lead_id for a in admission.admit(changes)]
