"""Graph's usage headers beside a rate limit, as the Graph client reads them over loopback HTTP: how long until access
returns, how much of a limit is used, and a malformed header read as none."""

from __future__ import annotations

import json

import pytest

from tests.graphstub import GraphStub, serve_graph
from workers.graph import GraphClient, GraphRateLimitedError, GraphUnavailableError

LEAD_ID = "900000000000001"
BUSINESS_ID = "123456789012345"


@pytest.fixture
def stub():
    return GraphStub()


@pytest.fixture
def graph(stub):
    with serve_graph(stub) as url:
        client = GraphClient(url, "v21.0", stub.token, connect_timeout=1, read_timeout=2)
        yield client
        client.close()


def business_use_case_usage(*use_cases, business_id=BUSINESS_ID):
    return {"X-Business-Use-Case-Usage": json.dumps({business_id: list(use_cases)})}


def rate_limited(stub, graph, code=80001, status=400, **headers):
    stub.fail_next(status, code, headers=headers)
    with pytest.raises(GraphRateLimitedError) as caught:
        graph.get_lead(LEAD_ID)
    return caught.value


def test_a_business_use_case_limit_says_when_graph_expects_access_again_without_the_business_id(stub, graph):
    usage = {"type": "pages", "call_count": 100, "total_cputime": 12, "total_time": 30}
    headers = business_use_case_usage({**usage, "estimated_time_to_regain_access": 19})
    stub.fail_next(400, 80001, headers=headers)

    with pytest.raises(GraphRateLimitedError) as caught:
        graph.get_lead(LEAD_ID)

    assert caught.value.regain_after_seconds == 19 * 60
    assert caught.value.message.endswith(
        "; Graph estimates access again in 19 min"
        " (business use case pages at call_count 100%, total_cputime 12%, total_time 30%)"
    )
    assert BUSINESS_ID not in caught.value.message


def test_the_longest_estimate_of_every_business_id_and_use_case_is_the_one_followed(stub, graph):
    headers = {
        "X-Business-Use-Case-Usage": json.dumps(
            {
                "111": [{"type": "pages", "estimated_time_to_regain_access": 3}],
                "222": [
                    {"type": "leadgen", "call_count": 100, "estimated_time_to_regain_access": 42},
                    {"type": "pages", "estimated_time_to_regain_access": 0},
                ],
            }
        )
    }

    error = rate_limited(stub, graph, 80005, **headers)

    assert error.regain_after_seconds == 42 * 60
    assert "access again in 42 min (business use case leadgen at call_count 100%)" in error.message


def test_app_usage_percentages_are_said_beside_an_app_rate_limit_that_gives_no_time(stub, graph):
    headers = {"X-App-Usage": json.dumps({"call_count": 100, "total_time": 8.5, "total_cputime": 4})}

    error = rate_limited(stub, graph, 4, **headers)

    assert error.regain_after_seconds is None
    assert error.message.endswith("; app usage call_count 100%, total_cputime 4%, total_time 8.5%")


def test_a_429_without_a_graph_error_still_reads_the_usage_headers(stub, graph):
    stub.fail_next(429, headers=business_use_case_usage({"type": "pages", "estimated_time_to_regain_access": 5}))

    with pytest.raises(GraphRateLimitedError) as caught:
        graph.get_lead(LEAD_ID)

    assert caught.value.regain_after_seconds == 300 and "access again in 5 min" in caught.value.message


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Business-Use-Case-Usage": "not json {"}, id="not-json"),
        pytest.param({"X-Business-Use-Case-Usage": "[1, 2]"}, id="a-list"),
        pytest.param({"X-Business-Use-Case-Usage": json.dumps({BUSINESS_ID: "pages"})}, id="use-cases-not-a-list"),
        pytest.param({"X-Business-Use-Case-Usage": json.dumps({BUSINESS_ID: [7, None]})}, id="use-case-not-an-object"),
        pytest.param(
            business_use_case_usage({"type": "pages", "estimated_time_to_regain_access": "19"}), id="minutes-as-text"
        ),
        pytest.param(
            business_use_case_usage({"type": "pages", "estimated_time_to_regain_access": -5}), id="negative-minutes"
        ),
        pytest.param(
            business_use_case_usage({"type": "pages", "estimated_time_to_regain_access": True}), id="minutes-a-boolean"
        ),
        pytest.param(
            {"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": NaN}]}'}, id="not-a-number"
        ),
        pytest.param(
            {"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": 1' + "0" * 400 + "}]}"},
            id="past-a-float",
        ),
        pytest.param({"X-Business-Use-Case-Usage": "[" * 5000 + "]" * 5000}, id="nested-deep"),
        pytest.param(
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {"1": [{"estimated_time_to_regain_access": 19, "x": "y" * 20_000}]}
                )
            },
            id="too-long",
        ),
        pytest.param({"X-App-Usage": json.dumps({"call_count": "lots"})}, id="app-usage-as-text"),
    ],
)
def test_a_malformed_usage_header_is_read_as_none_and_the_rate_limit_raised_as_ever(stub, graph, headers):
    without_headers = rate_limited(stub, graph)

    error = rate_limited(stub, graph, **headers)

    assert type(error) is GraphRateLimitedError and error.regain_after_seconds is None
    assert error.message == without_headers.message


def test_a_use_case_type_that_is_not_a_plain_word_is_left_out_of_the_message(stub, graph):
    headers = business_use_case_usage({"type": "<jane@example.com>", "estimated_time_to_regain_access": 2})

    error = rate_limited(stub, graph, **headers)

    assert error.regain_after_seconds == 120
    assert error.message.endswith("; Graph estimates access again in 2 min")


def test_usage_headers_beside_another_failure_change_nothing(stub, graph):
    headers = business_use_case_usage({"type": "pages", "estimated_time_to_regain_access": 19})
    stub.fail_next(500, 2, headers=headers)

    with pytest.raises(GraphUnavailableError) as caught:
        graph.get_lead(LEAD_ID)

    assert "estimates" not in caught.value.message and not hasattr(caught.value, "regain_after_seconds")
