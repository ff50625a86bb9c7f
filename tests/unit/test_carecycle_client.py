"""The careCycle client over real HTTP: every answer, however odd, becomes a result or a `CareCycleError`."""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app.ports import free_port
from workers.carecycle import (
    CareCycleAmbiguousError,
    CareCycleAuthError,
    CareCycleClient,
    CareCycleConfigurationError,
    CareCycleError,
    CareCycleNotFoundError,
    CareCycleRateLimitedError,
    CareCycleRedirectError,
    CareCycleRequestError,
    CareCycleTransientError,
    CareCycleUnreadableError,
    CareCycleUnrecognizedError,
    CareCycleValidationError,
    UploadResult,
    outcome_label,
)
from workers.carecycle.answers import header_wait
from workers.carecycle.client import MAX_ANSWER_BYTES

RECORDS = [{"phoneNumber": "+12125550142", "postalCode": "10001", "externalId": "lead-1"}]
API_KEY = "cc_test_key"


@dataclass
class Answer:
    """What the stand-in answers next: a status, headers and a body sent in chunks, a pause between them."""

    status: int = 200
    body: bytes | list[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    pause_seconds: float = 0.0


@dataclass
class StandIn:
    answer: Answer = field(default_factory=Answer)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], headers))
        answer = self.answer
        chunks = answer.body if isinstance(answer.body, list) else [answer.body]
        start_response(f"{answer.status} X", [("Content-Type", "application/json"), *answer.headers.items()])
        for chunk in chunks:
            time.sleep(answer.pause_seconds)
            yield chunk


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:
        pass


@pytest.fixture
def carecycle() -> Iterator[tuple[StandIn, str]]:
    stand_in = StandIn()
    server = make_server("127.0.0.1", 0, stand_in, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield stand_in, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def upload(carecycle: tuple[StandIn, str], answer: Answer, read_timeout: float = 5.0) -> UploadResult:
    stand_in, url = carecycle
    stand_in.answer = answer
    client = CareCycleClient(url, API_KEY, connect_timeout=1.0, read_timeout=read_timeout)
    try:
        return client.upload(RECORDS)
    finally:
        client.close()


def json_answer(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body).encode())


def test_a_compressed_answer_is_read_like_a_plain_one(carecycle):
    body = {"succeeded": 0, "failed": 1, "errors": [{"id": "u1", "externalId": "lead-1", "error": "bad phone"}]}
    answer = Answer(200, gzip.compress(json.dumps(body).encode()), headers={"Content-Encoding": "gzip"})

    assert upload(carecycle, answer) == UploadResult(succeeded=0, failures={"lead-1": "bad phone"}, failed=1)


def test_a_processed_batch_names_its_refused_records_by_external_id(carecycle):
    body = {"succeeded": 0, "failed": 1, "errors": [{"id": "u1", "externalId": "lead-1", "error": "bad phone"}]}

    result = upload(carecycle, json_answer(200, body))

    assert result == UploadResult(succeeded=0, failures={"lead-1": "bad phone"}, failed=1)
    method, path, headers = carecycle[0].seen[0]
    assert (method, path, headers["x-api-key"]) == ("POST", "/v2/leads/upload", API_KEY)


def test_a_processed_batch_that_lists_its_customers_says_which_records_it_holds(carecycle):
    body = {
        "succeeded": 1,
        "failed": 1,
        "errors": [],
        "results": [{"id": "u1", "externalId": "lead-1", "phoneNumber": "+12125550142"}, {"id": "u2"}, "odd"],
    }

    result = upload(carecycle, json_answer(200, body))

    assert result == UploadResult(succeeded=1, failures={}, failed=1, confirmed=frozenset({"lead-1"}))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"succeeded": 1, "failed": 0, "errors": 3}, id="errors-a-number"),
        pytest.param({"succeeded": 1, "failed": 0, "errors": True}, id="errors-true"),
        pytest.param({"succeeded": 1, "failed": False}, id="failed-as-a-boolean"),
        pytest.param({"code": "OK", "succeeded": 1, "failed": 0}, id="an-unknown-code-on-a-processed-batch"),
    ],
)
def test_a_200_with_odd_parts_is_still_a_processed_batch(carecycle, body):
    result = upload(carecycle, json_answer(200, body))

    assert result.failures == {} and result.failed == 0


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(200, b"<!doctype html><title>careCycle</title>"), id="a-web-page"),
        pytest.param(Answer(200, b""), id="empty"),
        pytest.param(Answer(204, b""), id="no-content"),
        pytest.param(json_answer(200, {"code": "BAD_REQUEST", "message": "try again"}), id="an-unknown-code"),
        pytest.param(json_answer(200, {"succeeded": True}), id="succeeded-as-a-boolean"),
        pytest.param(Answer(200, b"[" * 100_000 + b"]" * 100_000), id="nested-too-deep-to-parse"),
    ],
)
def test_a_2xx_that_is_not_a_processed_batch_pauses_delivery_and_is_never_taken_for_one(carecycle, answer):
    with pytest.raises(CareCycleUnrecognizedError) as raised:
        upload(carecycle, answer)

    assert isinstance(raised.value, CareCycleConfigurationError)
    assert raised.value.message.endswith(
        "not careCycle's answer to an upload (no succeeded count): check CARECYCLE_BASE_URL"
    )
    assert outcome_label(raised.value) == "unrecognized"


def test_an_answer_cut_short_inside_its_json_is_retried_as_one_that_may_have_been_careCycles(carecycle):
    with pytest.raises(CareCycleUnreadableError) as raised:
        upload(carecycle, Answer(200, b'{"succeeded": 2, "failed": 0, "err'))

    assert raised.value.message == "careCycle 200: the answer's JSON could not be read (cut short?)"


def test_a_4xx_body_that_cannot_be_read_is_read_by_its_status(carecycle):
    with pytest.raises(CareCycleAuthError):
        upload(carecycle, Answer(401, b'{"message": "unauthorized"}\n{"extra": 1}'))


@pytest.mark.parametrize(
    ("body", "header", "waited"),
    [
        pytest.param({"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}, "5", 5.0, id="header-alone"),
        pytest.param({"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 30}, "5", 30.0, id="body-before-header"),
    ],
)
def test_a_429_waits_the_retry_after_header_when_the_body_names_no_wait(carecycle, body, header, waited):
    answer = Answer(429, json.dumps(body).encode(), headers={"Retry-After": header})

    with pytest.raises(CareCycleRateLimitedError) as raised:
        upload(carecycle, answer)

    assert raised.value.retry_after == waited


@pytest.mark.parametrize(("seconds_on", "waited"), [(20, 20.0), (600, 600.0), (-60, 1.0)])
def test_a_429_waits_until_the_http_date_a_retry_after_header_names(carecycle, seconds_on, waited):
    body = {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}
    until = email.utils.formatdate(time.time() + seconds_on, usegmt=True)  # the stand-in's Date is its clock's

    with pytest.raises(CareCycleRateLimitedError) as raised:
        upload(carecycle, Answer(429, json.dumps(body).encode(), headers={"Retry-After": until}))

    assert raised.value.retry_after == pytest.approx(waited, abs=2)


def test_a_retry_after_http_date_is_counted_from_the_answer_date_not_the_relay_clock():
    answered = email.utils.formatdate(1_700_000_000, usegmt=True)
    until = email.utils.formatdate(1_700_000_020, usegmt=True)

    assert header_wait(until, answered, now=1_700_000_015) == 20.0


def test_a_retry_after_http_date_is_counted_from_now_when_the_answer_has_no_readable_date():
    in_ninety_seconds = email.utils.formatdate(1_700_000_090, usegmt=True)

    assert header_wait(in_ninety_seconds, None, now=1_700_000_000) == 90.0
    assert header_wait(in_ninety_seconds, "yesterday", now=1_700_000_000) == 90.0
    assert header_wait("soon", None, now=1_700_000_000) is None


@pytest.mark.parametrize("given", ["soon", None, "NaN", True])
def test_a_429_whose_body_names_no_usable_wait_waits_the_retry_after_header(carecycle, given):
    body = {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down", "retryAfter": given}

    with pytest.raises(CareCycleRateLimitedError) as raised:
        upload(carecycle, Answer(429, json.dumps(body).encode(), headers={"Retry-After": "7"}))

    assert raised.value.retry_after == 7.0


def test_an_answer_nested_too_deep_to_parse_is_read_as_an_empty_body(carecycle):
    deep = b"[" * 100_000 + b"]" * 100_000

    with pytest.raises(CareCycleTransientError) as raised:
        upload(carecycle, Answer(502, deep))

    assert raised.value.status == 502


@pytest.mark.parametrize(("retry_after", "waited"), [(0, 1.0), (-30, 1.0), (0.2, 1.0), (7200, 3600.0)])
def test_a_429_waits_at_least_a_second_and_at_most_an_hour(carecycle, retry_after, waited):
    body = {"message": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED", "retryAfter": retry_after}

    with pytest.raises(CareCycleRateLimitedError) as raised:
        upload(carecycle, json_answer(429, body))

    assert raised.value.retry_after == waited


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [("NaN", 60.0), ("inf", 60.0), ("-inf", 60.0), (None, 60.0), ("soon", 60.0), (1e308, 3600.0)],
)
def test_a_429_whose_retry_after_is_no_usable_number_waits_a_minute_or_at_most_an_hour(carecycle, retry_after, waited):
    body = {"message": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED", "retryAfter": retry_after}

    with pytest.raises(CareCycleRateLimitedError) as raised:
        upload(carecycle, json_answer(429, body))

    assert raised.value.retry_after == waited


def test_the_reasons_careCycle_writes_are_kept_without_the_values_they_quote(carecycle):
    errors = [
        {
            "path": ["records", 0, "gender"],
            "message": "Invalid enum value. Expected 'Male' | 'Female', received 'femal'",
        },
        {"path": ["records", 1, "email"], "message": "jane.doe@example.com is not a valid e-mail"},
        {"path": ["records", 2, "dateOfBirth"], "message": "Invalid date 03/04/1951, expected MM-DD-YYYY"},
        {"path": ["records", 3, "phoneNumber"], "message": "Expected string, received null"},
    ]
    body = {"code": "VALIDATION_ERROR", "message": "Phone +12125550142 failed", "errors": errors}

    with pytest.raises(CareCycleValidationError) as raised:
        upload(carecycle, json_answer(422, body))

    reasons = dict(raised.value.record_messages)
    assert reasons == {
        0: "gender: Invalid enum value. Expected 'Male' | 'Female', received …",
        1: "email: … is not a valid e-mail",
        2: "dateOfBirth: Invalid date …, expected MM-DD-YYYY",
        3: "phoneNumber: Expected string, received null",  # a type name, not a value
    }
    assert raised.value.message == "careCycle 422 VALIDATION_ERROR: Phone … failed"


def test_careCycle_words_are_kept_without_any_value_the_upload_sent_nor_its_key(carecycle):
    stand_in, url = carecycle
    record = {
        "phoneNumber": "+13125550177",
        "firstName": "Zelda",
        "lastName": "Quixote",
        "address": "12 Elm Street",
        "city": "Springfield",
        "externalId": "lead-7",
        "customFields": [{"fieldKey": "best_time", "value": "after Lunch"}],
    }
    stand_in.answer = json_answer(
        500, {"code": "INTERNAL_ERROR", "message": f"saving ZELDA quixote of 12 elm street, Springfield with {API_KEY}"}
    )
    client = CareCycleClient(url, API_KEY, connect_timeout=1.0, read_timeout=5.0)
    try:
        with pytest.raises(CareCycleTransientError) as raised:
            client.upload([record])
        stand_in.answer = json_answer(200, {"succeeded": 0, "failed": 1, "errors": [
            {"externalId": "lead-7", "error": "phone 312 555 0177 is on the DNC list; best time after lunch"}
        ]})  # fmt: skip
        result = client.upload([record])
    finally:
        client.close()

    assert raised.value.message == "careCycle 500 INTERNAL_ERROR: saving … … of …, … with …"
    assert result.failures == {"lead-7": "phone … is on the DNC list; best time …"}


def test_a_code_careCycle_does_not_spell_as_one_is_left_out(carecycle):
    with pytest.raises(CareCycleTransientError) as raised:
        upload(carecycle, json_answer(500, {"code": "jane.doe@example.com", "message": "Internal error"}))

    assert raised.value.message == "careCycle 500: Internal error"


def test_a_per_record_error_of_a_processed_batch_is_kept_without_the_values_it_quotes(carecycle):
    body = {
        "succeeded": 0,
        "failed": 1,
        "errors": [{"externalId": "lead-1", "error": "+12125550142 is on the DNC list"}],
    }

    result = upload(carecycle, json_answer(200, body))

    assert result.failures == {"lead-1": "… is on the DNC list"}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(["records", True, "x"], id="index-a-boolean"),
        pytest.param(["customFields", 0, "fieldKey"], id="not-into-the-records"),
    ],
)
def test_a_422_path_that_is_no_record_index_names_no_record(carecycle, path):
    body = {"code": "VALIDATION_ERROR", "message": "bad", "errors": [{"path": path, "message": "m"}]}

    with pytest.raises(CareCycleRequestError) as raised:
        upload(carecycle, json_answer(422, body))

    assert raised.value.status == 422  # halved until the record is found, not pinned on record 1


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_pauses_delivery_as_a_configuration_fault(carecycle, status):
    stand_in, url = carecycle
    answer = Answer(status, b"", headers={"Location": f"{url}/elsewhere"})

    with pytest.raises(CareCycleRedirectError) as raised:
        upload(carecycle, answer)

    assert isinstance(raised.value, CareCycleConfigurationError)
    assert "CARECYCLE_BASE_URL" in raised.value.message
    assert outcome_label(raised.value) == "redirect"
    assert [path for _, path, _ in stand_in.seen] == ["/v2/leads/upload"]  # the key went nowhere else


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_an_answer_trickling_in_past_the_read_timeout_is_given_up_as_ambiguous(carecycle, framing):
    trickle = Answer(200, [b"{"] + [b" "] * 40 + [b"}"], pause_seconds=0.25)
    if framing == "content-length":
        trickle.headers["Content-Length"] = "42"

    started = time.monotonic()
    with pytest.raises(CareCycleAmbiguousError) as raised:
        upload(carecycle, trickle, read_timeout=0.5)

    assert outcome_label(raised.value) == "timeout"

    # About connect + read timeout (1.5 s), not the 10.5 s the whole answer takes; the margin is for a busy machine.
    assert time.monotonic() - started < 7.0


def test_an_answer_whose_headers_trickle_in_is_given_up_at_the_deadline_too():
    # One header byte per 0.3 s: every read of the headers is within the read timeout, their sum is not.
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle_headers() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 100:
                if stop.wait(0.3):
                    return
                conn.sendall(bytes([byte]))

    threading.Thread(target=trickle_headers, daemon=True).start()
    client = CareCycleClient(
        f"http://127.0.0.1:{listener.getsockname()[1]}", API_KEY, connect_timeout=0.5, read_timeout=1
    )
    started = time.monotonic()
    try:
        with pytest.raises(CareCycleAmbiguousError) as raised:
            client.upload(RECORDS)
    finally:
        stop.set()
        client.close()
        listener.close()

    assert outcome_label(raised.value) == "timeout"
    assert time.monotonic() - started < 10.0  # connect + read timeout (1.5 s), not 30 s of headers; margin for load


def test_an_answer_larger_than_any_careCycle_answer_is_given_up_as_ambiguous(carecycle):
    chunk = b" " * (1024 * 1024)

    with pytest.raises(CareCycleUnreadableError) as raised:
        upload(carecycle, Answer(200, [b"{"] + [chunk] * (MAX_ANSWER_BYTES // len(chunk) + 1) + [b"}"]))

    assert "answer over" in raised.value.message and outcome_label(raised.value) == "unreadable"


@pytest.mark.parametrize(
    ("answer", "coded"),
    [
        pytest.param(json_answer(404, {"message": "Source not found", "code": "NOT_FOUND"}), True, id="carecycles-own"),
        pytest.param(Answer(404, b"<html>404 Not Found</html>"), False, id="another-servers"),
    ],
)
def test_a_404_says_whether_careCycle_itself_gave_it(carecycle, answer, coded):
    with pytest.raises(CareCycleNotFoundError) as raised:
        upload(carecycle, answer)

    assert raised.value.coded is coded


def test_a_carecycle_that_cannot_be_reached_is_retried_and_counted_apart_from_its_server_errors():
    # A connection refused (a wrong host or port, the way out blocked) is not careCycle answering 5xx: the
    # metric's outcome tells on-call which of the two to chase.
    client = CareCycleClient(f"http://127.0.0.1:{free_port()}", API_KEY, connect_timeout=1.0, read_timeout=1.0)

    with pytest.raises(CareCycleTransientError) as raised:
        client.upload(RECORDS)

    assert not isinstance(raised.value, CareCycleAmbiguousError)  # nothing was sent: no doubt about a delivery
    assert outcome_label(raised.value) == "connection_error"


def unreached(url: str) -> CareCycleError:
    with closing(CareCycleClient(url, API_KEY, connect_timeout=1.0, read_timeout=1.0)) as client:
        with pytest.raises(CareCycleError) as raised:
            client.upload(RECORDS)
    return raised.value


def test_a_connection_careCycle_closes_before_answering_says_so_not_that_it_could_not_be_reached(bare_server):
    port, _ = bare_server

    error = unreached(f"http://127.0.0.1:{port}")

    assert error.message == "careCycle closed the connection before answering"
    assert outcome_label(error) == "connection_error"


def test_a_failed_tls_handshake_is_named_as_one(bare_server):
    port, replies = bare_server
    replies.append(b"HTTP/1.1 200 OK\r\n\r\n")  # plain HTTP where TLS was expected

    error = unreached(f"https://127.0.0.1:{port}")

    assert error.message.startswith(
        "careCycle could not be reached: the TLS handshake failed (check CARECYCLE_BASE_URL"
    )


def test_a_refused_connection_and_a_host_name_that_does_not_resolve_are_named_apart(request):
    assert unreached(f"http://127.0.0.1:{free_port()}").message == (
        "careCycle could not be reached: the connection was refused"
    )

    request.getfixturevalue("unresolvable_hosts")  # from here on no host name resolves
    assert unreached("http://carecycle.example").message == (
        "careCycle could not be reached: its host name does not resolve (check CARECYCLE_BASE_URL)"
    )


REFUSED_PHONE = [{"path": ["records", 0, "phoneNumber"], "message": "Invalid phone"}]


@pytest.mark.parametrize(
    ("status", "body", "reaction"),
    [
        pytest.param(401, {"code": "UNAUTHORIZED", "message": "bad key"}, CareCycleAuthError, id="401"),
        pytest.param(403, {"code": "FORBIDDEN", "message": "no permission"}, CareCycleAuthError, id="403"),
        pytest.param(403, {}, CareCycleAuthError, id="403-without-a-body"),
        pytest.param(404, {"code": "NOT_FOUND"}, CareCycleNotFoundError, id="404"),
        pytest.param(404, {}, CareCycleNotFoundError, id="404-without-a-body"),
        pytest.param(422, {"code": "VALIDATION_ERROR", "errors": REFUSED_PHONE}, CareCycleValidationError, id="422"),
        pytest.param(422, {"code": "VALIDATION_ERROR", "errors": []}, CareCycleRequestError, id="422-naming-none"),
        pytest.param(429, {"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 7}, CareCycleRateLimitedError, id="429"),
        pytest.param(500, {"code": "INTERNAL_ERROR"}, CareCycleTransientError, id="500"),
        pytest.param(500, {}, CareCycleTransientError, id="500-without-a-body"),
        pytest.param(503, {}, CareCycleTransientError, id="503"),
        pytest.param(408, {}, CareCycleTransientError, id="408-request-timeout"),
        pytest.param(400, {"code": "BAD_REQUEST", "message": "malformed"}, CareCycleRequestError, id="400"),
        pytest.param(409, {}, CareCycleRequestError, id="409"),
        pytest.param(413, {}, CareCycleRequestError, id="413"),
        # careCycle's code decides where it is more specific than the status.
        pytest.param(400, {"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 7}, CareCycleRateLimitedError, id="code-429"),
        pytest.param(400, {"code": "UNAUTHORIZED"}, CareCycleAuthError, id="code-401"),
        pytest.param(400, {"code": "INTERNAL_ERROR"}, CareCycleTransientError, id="code-500"),
        pytest.param(200, {"code": "UNAUTHORIZED", "succeeded": 0}, CareCycleAuthError, id="2xx-code-401"),
        pytest.param(200, {"code": "RATE_LIMIT_EXCEEDED", "retryAfter": 7}, CareCycleRateLimitedError, id="2xx-429"),
        pytest.param(
            200, {"code": "VALIDATION_ERROR", "errors": REFUSED_PHONE}, CareCycleValidationError, id="2xx-code-422"
        ),
    ],
)
def test_each_careCycle_refusal_is_the_error_delivery_reacts_to_by_its_code_or_else_its_status(
    carecycle, status, body, reaction
):
    with pytest.raises(CareCycleError) as raised:
        upload(carecycle, json_answer(status, body))

    assert type(raised.value) is reaction
    if reaction is CareCycleRateLimitedError:
        assert raised.value.retry_after == 7.0
    if reaction is CareCycleValidationError:
        assert raised.value.record_messages == {0: "phoneNumber: Invalid phone"}
