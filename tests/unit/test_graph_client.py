"""The Graph client against the Graph stand-in over loopback HTTP: answers, paging, and every error's class."""

from __future__ import annotations

import traceback
from contextlib import closing

import pytest
import requests

from app.ports import free_port
from tests.graphstub import Answer, GraphStub, serve_graph
from workers.graph import (
    GraphClient,
    GraphConfigurationError,
    GraphLead,
    GraphNotFoundError,
    GraphPermissionError,
    GraphRateLimitedError,
    GraphRequestError,
    GraphTimeoutError,
    GraphTokenError,
    GraphTransientError,
    GraphUnavailableError,
)

APP_SECRET = "app_secret_example"
FORM_ID = "200000000000001"
LEAD_ID = "900000000000001"
ANSWERS = [{"name": "full_name", "values": ["Jane Example"]}, {"name": "phone_number", "values": ["+12125550142"]}]


@pytest.fixture
def stub():
    return GraphStub(app_secret=APP_SECRET)


@pytest.fixture
def graph_url(stub):
    with serve_graph(stub) as url:
        yield url


@pytest.fixture
def graph(stub, graph_url):
    # Timeouts a busy machine never reaches: a test that expects an answer gets one (the timeout test has its own).
    client = GraphClient(graph_url, "v21.0", stub.token, app_secret=APP_SECRET, connect_timeout=5, read_timeout=10)
    yield client
    client.close()


def test_graph_client_returns_the_lead_with_its_answers_and_ids(stub, graph):
    stub.add_lead(LEAD_ID, FORM_ID, ANSWERS, 1_767_225_600, ad_id="300000000000001", platform="fb", is_organic=False)

    lead = graph.get_lead(LEAD_ID)

    assert lead == GraphLead(
        id=LEAD_ID,
        created_time="2026-01-01T00:00:00+0000",
        form_id=FORM_ID,
        field_data=tuple(ANSWERS),
        ad_id="300000000000001",
        platform="fb",
        is_organic=False,
    )
    [seen] = stub.requests
    assert seen.path == f"/v21.0/{LEAD_ID}" and seen.token_ok and seen.authorization_scheme == "Bearer"
    assert "field_data" in seen.query["fields"] and "access_token" not in seen.query


def test_graph_client_lists_a_forms_leads_since_a_time_across_pages(stub, graph):
    for n in range(230):
        stub.add_lead(f"9{n:05d}", FORM_ID, ANSWERS, 1_767_225_600 + n)
    stub.add_lead("800000", "200000000000002", ANSWERS, 1_767_225_700)

    listed = list(graph.list_form_leads(FORM_ID, since=1_767_225_600 + 9))

    assert sorted(lead.id for lead in listed) == [f"9{n:05d}" for n in range(10, 230)]
    calls = stub.requests_to("/leads")
    assert [c.query.get("after") for c in calls] == [None, "100", "200"]
    assert '"GREATER_THAN"' in calls[0].query["filtering"] and '"value": 1767225609' in calls[0].query["filtering"]


def _graph_error(status, code, **more):
    return Answer(status, {"error": {"message": "(stand-in)", "type": "OAuthException", "code": code, **more}})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(Answer(500, text=""), GraphUnavailableError, id="500-no-body"),
        pytest.param(Answer(502, text="<html>bad gateway</html>"), GraphUnavailableError, id="502-html"),
        pytest.param(_graph_error(500, 2), GraphUnavailableError, id="code-2-service"),
        pytest.param(_graph_error(400, 1), GraphTransientError, id="code-1-unknown"),
        pytest.param(_graph_error(400, 2), GraphUnavailableError, id="code-2-service-as-400"),
        pytest.param(_graph_error(503, 1), GraphUnavailableError, id="503-code-1"),
        pytest.param(_graph_error(400, 4), GraphRateLimitedError, id="code-4-app-rate-limit"),
        pytest.param(_graph_error(400, 17), GraphRateLimitedError, id="code-17-user-rate-limit"),
        pytest.param(_graph_error(400, 32), GraphRateLimitedError, id="code-32-page-rate-limit"),
        pytest.param(_graph_error(400, 341), GraphRateLimitedError, id="code-341-app-limit"),
        pytest.param(_graph_error(400, 613), GraphRateLimitedError, id="code-613-custom-rate-limit"),
        pytest.param(_graph_error(400, 80001), GraphRateLimitedError, id="code-80001-pages-buc"),
        pytest.param(_graph_error(400, 80005), GraphRateLimitedError, id="code-80005-leadgen-buc"),
        pytest.param(Answer(429, text=""), GraphRateLimitedError, id="429-no-body"),
        pytest.param(_graph_error(400, 999, is_transient=True), GraphTransientError, id="is-transient-flag"),
        pytest.param(Answer(200, text="not json"), GraphTransientError, id="200-not-json"),
        pytest.param(Answer(502, text="[" * 100_000 + "]" * 100_000), GraphUnavailableError, id="502-nested-too-deep"),
        pytest.param(Answer(200, {"name": "no id"}), GraphTransientError, id="200-lead-without-id"),
        pytest.param(_graph_error(400, 190, error_subcode=463), GraphTokenError, id="code-190-expired-token"),
        pytest.param(_graph_error(400, 102), GraphTokenError, id="code-102-session"),
        pytest.param(_graph_error(403, 10), GraphPermissionError, id="code-10-permission"),
        pytest.param(_graph_error(400, 200), GraphPermissionError, id="code-200-permission"),
        pytest.param(_graph_error(400, 299), GraphPermissionError, id="code-299-permission"),
        pytest.param(Answer(404, text="<html>not found</html>"), GraphConfigurationError, id="404-wrong-url"),
        pytest.param(_graph_error(400, 100, error_subcode=33), GraphNotFoundError, id="code-100-no-such-lead"),
        pytest.param(
            _graph_error(400, 100, message="(#100) Tried accessing nonexisting field (platform) on node type (Lead)"),
            GraphConfigurationError,
            id="code-100-a-field-this-version-lacks",
        ),
        pytest.param(_graph_error(400, 803), GraphRequestError, id="code-803-other"),
    ],
)
def test_graph_client_classifies_each_answer_by_what_retrieval_does_about_it(stub, graph, answer, expected):
    stub.answer_next(answer)

    with pytest.raises(expected) as caught:
        graph.get_lead(LEAD_ID)

    assert type(caught.value) is expected
    assert caught.value.message.startswith("Graph API")


def test_graph_client_names_code_subcode_and_trace_id_in_the_message(stub, graph):
    stub.refuse_token()

    with pytest.raises(GraphTokenError) as caught:
        graph.get_lead(LEAD_ID)

    assert caught.value.message == (
        "Graph API 400 OAuthException code 190/463: Error validating access token: Session has expired. "
        "(fbtrace_id AbCdEfGhIjK)"
    )


def test_graph_client_keeps_graphs_words_without_the_shapes_of_personal_data(stub, graph):
    error = {"message": "lead of jane.doe@example.com (312) 555-0177 refused", "type": "<b>Jane</b>", "code": 803}
    stub.answer_next(Answer(400, {"error": {**error, "fbtrace_id": "Jane Doe"}}))

    with pytest.raises(GraphRequestError) as caught:
        graph.get_lead(LEAD_ID)

    assert caught.value.message == "Graph API 400 code 803: lead of … … refused"


def test_graph_client_lists_up_to_a_time_so_that_spans_meeting_there_list_each_lead_once(stub, graph):
    meeting = 1_767_225_650
    for n in range(100):
        stub.add_lead(f"9{n:05d}", FORM_ID, ANSWERS, 1_767_225_600 + n)

    older = list(graph.list_form_leads(FORM_ID, since=1_767_225_600, until=meeting))
    newer = list(graph.list_form_leads(FORM_ID, since=meeting))

    assert sorted(lead.id for lead in older) == [f"9{n:05d}" for n in range(1, 51)]  # the lead created then, too
    assert sorted(lead.id for lead in newer) == [f"9{n:05d}" for n in range(51, 100)]
    filtering = stub.requests_to("/leads")[0].query["filtering"]
    assert '"LESS_THAN", "value": 1767225651' in filtering  # Graph has no LESS_THAN_OR_EQUAL


def test_graph_client_keeps_only_numeric_ids_and_skips_a_listed_lead_without_one(stub, graph):
    stub.add_lead("900001", FORM_ID, ANSWERS, 1_767_225_700, ad_id="jane.doe@example.com", campaign_id=42)
    stub.add_lead("jane.doe@example.com", FORM_ID, ANSWERS, 1_767_225_701)

    listed = list(graph.list_form_leads(FORM_ID, since=1_767_225_600))

    assert [(lead.id, lead.form_id, lead.ad_id, lead.campaign_id) for lead in listed] == [
        ("900001", FORM_ID, None, "42")
    ]


def test_graph_client_treats_a_read_timeout_as_a_timeout(stub, graph_url):
    stub.answer_next(Answer(200, {"id": LEAD_ID, "field_data": []}, stall_seconds=5))
    graph = GraphClient(graph_url, "v21.0", stub.token, app_secret=APP_SECRET, connect_timeout=1, read_timeout=0.3)

    with closing(graph), pytest.raises(GraphTimeoutError, match="did not answer in time"):
        graph.get_lead(LEAD_ID)


def test_graph_client_treats_a_connection_not_accepted_in_time_as_a_timeout(graph, monkeypatch):
    def connect_times_out(*args, **kwargs):
        raise requests.ConnectTimeout("connect timed out")

    monkeypatch.setattr(requests.Session, "get", connect_times_out)

    with pytest.raises(GraphTimeoutError, match="did not accept the connection in time"):
        graph.get_lead(LEAD_ID)


def test_graph_client_treats_a_refused_connection_as_unavailable_and_never_shows_the_token():
    token = "EAAG-secret-token-value"
    client = GraphClient(f"http://127.0.0.1:{free_port()}", "v21.0", token, connect_timeout=1, read_timeout=1)

    with pytest.raises(GraphUnavailableError) as caught:
        client.get_lead(LEAD_ID)

    assert caught.value.message == "Graph API could not be reached: the connection was refused"
    assert token not in "".join(traceback.format_exception(caught.value))


def unreached(url: str) -> GraphUnavailableError:
    with closing(GraphClient(url, "v21.0", "EAAG-secret-token-value", connect_timeout=1, read_timeout=1)) as client:
        with pytest.raises(GraphUnavailableError) as raised:
            client.get_lead(LEAD_ID)
    return raised.value


def test_graph_client_says_the_graph_api_host_name_does_not_resolve_without_naming_it(unresolvable_hosts):
    error = unreached("https://graph.example")

    assert error.message == "Graph API could not be reached: its host name does not resolve (check FACEBOOK_GRAPH_URL)"


def test_graph_client_names_a_failed_tls_handshake_as_one(bare_server):
    port, replies = bare_server
    replies.append(b"HTTP/1.1 200 OK\r\n\r\n")  # plain HTTP where TLS was expected

    error = unreached(f"https://127.0.0.1:{port}")

    assert error.message == (
        "Graph API could not be reached: the TLS handshake failed "
        "(check FACEBOOK_GRAPH_URL and the CA certificates the workers trust)"
    )


def test_graph_client_says_the_graph_api_closed_the_connection_before_answering(bare_server):
    port, _ = bare_server

    error = unreached(f"http://127.0.0.1:{port}")

    assert error.message == "Graph API closed the connection before answering"


def test_graph_client_refused_without_a_valid_appsecret_proof_is_a_token_error(stub, graph_url):
    client = GraphClient(graph_url, "v21.0", stub.token, app_secret="another-secret")
    stub.add_lead(LEAD_ID, FORM_ID, ANSWERS, 1_767_225_600)

    with pytest.raises(GraphTokenError):
        client.get_lead(LEAD_ID)


def test_graph_client_without_an_access_token_is_a_token_error_naming_the_setting_and_calls_nothing(stub, graph_url):
    client = GraphClient(graph_url, "v21.0", "", app_secret=APP_SECRET)
    stub.add_lead(LEAD_ID, FORM_ID, ANSWERS, 1_767_225_600)

    with pytest.raises(GraphTokenError, match="FACEBOOK_ACCESS_TOKEN"):
        client.get_lead(LEAD_ID)
    with pytest.raises(GraphTokenError, match="FACEBOOK_ACCESS_TOKEN"):
        list(client.list_form_leads(FORM_ID, since=1_767_225_500))

    assert stub.requests == []
