"""The careCycle sandbox: contract, rate limit, faults, request log and control endpoints."""

import json
import logging
import threading
import time
import uuid

import pytest
import requests

from app.sandbox import ReceivedRequest, RequestLog, Sandbox, SandboxServer, create_sandbox_app

KEY = "cc_test_key_a1b2"
OTHER_KEY = "cc_other_key_z9y8"
REJECTED_PHONE = "5550000000"
UPLOAD = "/v2/leads/upload"


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sandbox(clock):
    return Sandbox({KEY, OTHER_KEY}, rate_limit_per_min=3, reject_phones=[REJECTED_PHONE], clock=clock)


@pytest.fixture
def client(sandbox):
    return create_sandbox_app(sandbox).test_client()


def make_record(i=0, **overrides):
    record = {"phoneNumber": f"+1555123{i:04d}", "postalCode": "10001", "externalId": f"lead-{i}"}
    record.update(overrides)
    return record


def upload(client, records=None, key=KEY, **kwargs):
    headers = {} if key is None else {"x-api-key": key}
    if "data" not in kwargs:
        kwargs["json"] = {"records": [make_record()] if records is None else records}
    return client.post(UPLOAD, headers=headers, **kwargs)


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        threading.Event().wait(0.005)


# -- contract -------------------------------------------------------------------------------------


def test_sandbox_accepts_valid_batch_and_returns_results(client, sandbox):
    response = upload(client, [make_record(1), make_record(2)])

    assert response.status_code == 200
    body = response.get_json()
    assert (body["succeeded"], body["failed"], body["errors"]) == (2, 0, [])
    assert [(r["externalId"], r["phoneNumber"]) for r in body["results"]] == [
        ("lead-1", "+15551230001"),
        ("lead-2", "+15551230002"),
    ]
    assert all(uuid.UUID(r["id"]) for r in body["results"])
    assert sandbox.delivered_external_ids() == {"lead-1": 1, "lead-2": 1}


def test_sandbox_keeps_customer_id_when_same_record_is_resent(client):
    first = upload(client, [make_record(1)]).get_json()["results"][0]["id"]
    second = upload(client, [make_record(1, firstName="Ada")]).get_json()["results"][0]["id"]

    assert first == second


def test_sandbox_remembers_the_customers_of_its_latest_uploads_only(client, sandbox, monkeypatch):
    monkeypatch.setattr("app.sandbox.state.MAX_CUSTOMERS", 2)
    sandbox.set_faults(rate_limit_per_min=100)
    ids = [upload(client, [make_record(i)]).get_json()["results"][0]["id"] for i in (1, 2, 1, 3)]

    assert ids[2] == ids[0]  # lead-1 was uploaded again before lead-3 came, so lead-2 is the one let go
    assert upload(client, [make_record(1)]).get_json()["results"][0]["id"] == ids[0]
    assert upload(client, [make_record(2)]).get_json()["results"][0]["id"] != ids[1]


@pytest.mark.parametrize(
    "key",
    [pytest.param(None, id="missing"), pytest.param("cc_wrong_key", id="unknown"), pytest.param("", id="empty")],
)
def test_sandbox_answers_401_when_api_key_is_missing_or_unknown(client, sandbox, key):
    response = upload(client, key=key)

    assert response.status_code == 401
    assert response.get_json()["code"] == "UNAUTHORIZED"
    assert set(response.get_json()) == {"message", "code"}
    assert sandbox.delivered_external_ids() == {}
    assert sandbox.requests[0].status == 401


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"{not json", id="malformed"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b'"records"', id="string"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"", id="empty"),
        # Python's json reads these; JSON (and careCycle's parser) has no such numbers.
        pytest.param(
            b'{"records": [{"phoneNumber": "+15551230000", "postalCode": "10001", "leadCost": NaN}]}', id="nan"
        ),
        pytest.param(
            b'{"records": [{"phoneNumber": "+15551230000", "timezone": "EST", "leadCost": Infinity}]}', id="inf"
        ),
    ],
)
def test_sandbox_answers_400_when_body_is_not_a_json_object(client, data):
    response = upload(client, data=data, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json() == {"message": "Malformed request", "code": "BAD_REQUEST"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_sandbox_answers_400_when_a_valid_body_is_not_declared_as_json(client, sandbox, content_type):
    body = json.dumps({"records": [make_record()]}).encode()

    response = upload(client, data=body, content_type=content_type)

    assert response.status_code == 400
    assert response.get_json() == {"message": "Malformed request", "code": "BAD_REQUEST"}
    assert sandbox.stats()["records_accepted"] == 0


def test_sandbox_answers_422_with_paths_of_invalid_records(client, sandbox):
    records = [make_record(0), make_record(1, phoneNumber="555-123-0001"), make_record(2, gender="female")]

    response = upload(client, records)

    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "VALIDATION_ERROR"
    assert [(e["path"], e["code"], e["received"]) for e in body["errors"]] == [
        (["records", 1, "phoneNumber"], "invalid_string", "string"),
        (["records", 2, "gender"], "invalid_enum_value", "string"),
    ]
    assert "555-123-0001" not in response.get_data(as_text=True)
    assert sandbox.delivered_external_ids() == {}
    assert sandbox.requests[0].external_ids == ("lead-0", "lead-1", "lead-2")


@pytest.mark.parametrize(
    ("count", "code"),
    [pytest.param(0, "too_small", id="zero"), pytest.param(201, "too_big", id="201")],
)
def test_sandbox_answers_422_when_record_count_is_out_of_bounds(client, count, code):
    response = upload(client, [make_record(i) for i in range(count)])

    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.get_json()["errors"]] == [(["records"], code)]


def test_sandbox_accepts_200_records(client, sandbox):
    response = upload(client, [make_record(i) for i in range(200)])

    assert response.get_json()["succeeded"] == 200
    assert sandbox.requests[0].record_count == 200


@pytest.mark.parametrize(
    "phone",
    [
        pytest.param("+15550000000", id="plus-1"),
        pytest.param("5550000000", id="ten-digits"),
        pytest.param("(555) 000-0000", id="formatted"),
    ],
)
def test_sandbox_fails_only_records_with_rejected_phone(client, sandbox, phone):
    response = upload(client, [make_record(1), make_record(2, phoneNumber=phone), make_record(3)])

    body = response.get_json()
    assert response.status_code == 200
    assert (body["succeeded"], body["failed"]) == (2, 1)
    assert [(e["externalId"], e["error"]) for e in body["errors"]] == [("lead-2", "Invalid phone number")]
    assert uuid.UUID(body["errors"][0]["id"])
    assert [r["externalId"] for r in body["results"]] == ["lead-1", "lead-3"]
    assert sandbox.delivered_external_ids() == {"lead-1": 1, "lead-3": 1}


# -- rate limit -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        pytest.param([0, 10, 20, 30], [200, 200, 200, (429, 30)], id="fourth-in-window-waits-for-first"),
        pytest.param([0, 10, 20, 59.5], [200, 200, 200, (429, 1)], id="retry-after-rounds-up-to-1"),
        pytest.param([0, 10, 20, 60], [200, 200, 200, 200], id="slot-frees-after-60s"),
        pytest.param([0, 0, 0, 1, 60], [200, 200, 200, (429, 59), 200], id="rejected-requests-do-not-count"),
        pytest.param([0, 0, 0, 0, 0, 30, 60], [200, 200, 200, (429, 60), (429, 60), (429, 30), 200], id="burst"),
    ],
)
def test_sandbox_limits_requests_per_key_in_sliding_window(client, clock, arrivals, expected):
    start = clock.now
    answers = []
    for arrival in arrivals:
        clock.now = start + arrival
        response = upload(client)
        if response.status_code == 429:
            body = response.get_json()
            assert body["code"] == "RATE_LIMIT_EXCEEDED" and body["message"] == "Rate limit exceeded"
            assert response.headers["Retry-After"] == str(body["retryAfter"])
            answers.append((429, body["retryAfter"]))
        else:
            answers.append(response.status_code)

    assert answers == expected


def test_sandbox_rate_limit_is_per_api_key(client):
    statuses = [upload(client).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert upload(client, key=OTHER_KEY).status_code == 200


def test_sandbox_rate_limit_can_be_changed_at_runtime(client, sandbox):
    sandbox.set_faults(rate_limit_per_min=1)

    assert [upload(client).status_code for _ in range(2)] == [200, 429]


# -- faults ---------------------------------------------------------------------------------------


def test_sandbox_answers_500_when_error_rate_is_one(client, sandbox):
    sandbox.set_faults(error_rate=1.0)

    response = upload(client)

    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal server error", "code": "INTERNAL_ERROR"}
    assert sandbox.delivered_external_ids() == {}


def test_sandbox_error_rate_is_a_seeded_fraction(clock):
    def statuses(seed):
        sandbox = Sandbox({KEY}, rate_limit_per_min=1000, seed=seed, clock=clock)
        sandbox.set_faults(error_rate=0.3)
        client = create_sandbox_app(sandbox).test_client()
        return [upload(client).status_code for _ in range(200)]

    first = statuses(seed=7)

    assert first == statuses(seed=7)
    assert 30 <= first.count(500) <= 90
    assert set(first) == {200, 500}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(401, "UNAUTHORIZED", id="401"),
        pytest.param(403, "FORBIDDEN", id="403"),
        pytest.param(404, "NOT_FOUND", id="404"),
    ],
)
def test_sandbox_answers_every_upload_with_auth_mode(client, sandbox, status, code):
    sandbox.set_faults(auth_mode=status)

    responses = [upload(client), upload(client, key=OTHER_KEY)]

    assert [(r.status_code, r.get_json()["code"]) for r in responses] == [(status, code)] * 2


def test_sandbox_answers_503_when_down(client, sandbox):
    sandbox.set_faults(down=True)

    response = upload(client)

    assert response.status_code == 503
    assert response.get_json()["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"error_rate": 1.5}, id="error-rate-above-1"),
        pytest.param({"timeout_rate": -0.1}, id="timeout-rate-negative"),
        pytest.param({"auth_mode": 500}, id="auth-mode-not-auth"),
        pytest.param({"rate_limit_per_min": 0}, id="rate-limit-zero"),
        pytest.param({"stall_seconds": -1}, id="stall-negative"),
    ],
)
def test_sandbox_refuses_invalid_fault_values(sandbox, changes):
    with pytest.raises(ValueError):
        sandbox.set_faults(**changes)

    assert sandbox.faults.error_rate == 0.0


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Sandbox(KEY), id="api-keys"),
        pytest.param(lambda: Sandbox({KEY}, reject_phones=REJECTED_PHONE), id="reject-phones"),
        pytest.param(lambda: Sandbox({KEY}).set_faults(reject_phones=REJECTED_PHONE), id="reject-phones-fault"),
    ],
)
def test_sandbox_refuses_one_string_where_a_collection_is_expected(build):
    with pytest.raises(ValueError, match="collection"):
        build()


def test_sandbox_stalls_after_recording_request_when_timeout_rate_is_one(sandbox):
    sandbox.set_faults(timeout_rate=1.0, stall_seconds=30)
    answers = []
    raw_body = json.dumps({"records": [make_record(1)]}).encode()
    worker = threading.Thread(target=lambda: answers.append(sandbox.handle_upload(KEY, raw_body)))
    worker.start()

    wait_until(lambda: len(sandbox.requests) == 1)
    assert worker.is_alive() and answers == []
    assert sandbox.requests[0].stalled and sandbox.delivered_external_ids() == {"lead-1": 1}

    sandbox.release_stalls()
    worker.join(timeout=5)
    assert [answer.status for answer in answers] == [200]


def test_sandbox_returns_normal_answer_after_released_stall(client, sandbox):
    sandbox.set_faults(timeout_rate=1.0)
    sandbox.release_stalls()

    response = upload(client)

    assert response.status_code == 200
    assert sandbox.stats()["stalled"] == 1


def test_sandbox_consumes_fail_next_in_order_before_anything_else(client, sandbox):
    sandbox.set_faults(down=True)
    sandbox.fail_next(503, times=2)
    sandbox.fail_next(429, retry_after=7)
    sandbox.fail_next(429)
    sandbox.fail_next(422)

    responses = [upload(client, key=None) for _ in range(5)]
    sandbox.set_faults(down=False)
    responses.append(upload(client))

    assert [r.status_code for r in responses] == [503, 503, 429, 429, 422, 200]
    assert [r.get_json().get("retryAfter") for r in responses[2:4]] == [7, 60]
    assert responses[4].get_json() == {"message": "Validation failed", "code": "VALIDATION_ERROR", "errors": []}
    assert sandbox.scripted == []


# -- request log ----------------------------------------------------------------------------------


def test_sandbox_records_requests_without_the_full_key(client, sandbox, clock):
    upload(client, [make_record(1), make_record(2)])

    [received] = sandbox.requests
    assert received.key_suffix == "a1b2"
    assert received.monotonic == clock.now
    assert received.wall_time == pytest.approx(time.time(), abs=60)
    assert (received.status, received.record_count, received.external_ids) == (200, 2, ("lead-1", "lead-2"))
    assert received.records == (make_record(1), make_record(2))
    assert KEY not in repr(received)


def test_sandbox_logs_neither_keys_nor_record_contents(client, caplog):
    caplog.set_level(logging.DEBUG)

    upload(client, [make_record(1)])
    upload(client, key="cc_wrong_key")

    assert KEY not in caplog.text and "cc_wrong_key" not in caplog.text
    assert "5551230001" not in caplog.text


def test_sandbox_delivered_external_ids_counts_every_successful_delivery(client, sandbox):
    upload(client, [make_record(1), make_record(2, phoneNumber=REJECTED_PHONE)])
    sandbox.fail_next(500)
    upload(client, [make_record(3)])
    upload(client, [make_record(1)])

    assert sandbox.delivered_external_ids() == {"lead-1": 2}


def received_at(monotonic, status=200):
    return ReceivedRequest(monotonic, 0.0, "abcd", status, 0, (), ())


@pytest.mark.parametrize(
    ("arrivals", "expected"),
    [
        pytest.param([], 0, id="none"),
        pytest.param([0], 1, id="one"),
        pytest.param([0, 10, 20, 59.9], 4, id="all-inside"),
        pytest.param([0, 60, 120], 1, id="exactly-60s-apart"),
        pytest.param([0, 59.999, 60], 2, id="boundary-is-half-open"),
        pytest.param([100, 0, 30, 50], 3, id="unsorted"),
        pytest.param([0, 1, (2, 429), (3, 429), 4], 3, id="429s-excluded"),
        pytest.param([0, 1, (2, 500), (3, 401)], 4, id="errors-count"),
    ],
)
def test_request_log_max_requests_in_any_window(arrivals, expected):
    log = RequestLog()
    for arrival in arrivals:
        log.append(received_at(*arrival) if isinstance(arrival, tuple) else received_at(arrival))

    assert log.max_requests_in_any_window(60) == expected


def test_request_log_holds_only_the_latest_records_but_counts_every_request():
    log = RequestLog(max_held_records=5)
    for i in range(4):
        log.append(ReceivedRequest(float(i), 0.0, "abcd", 200, 2, (f"a{i}", f"b{i}"), ({}, {}), (True, i != 3)))

    assert [r.external_ids for r in log.requests] == [("a2", "b2"), ("a3", "b3")]
    stats = log.stats()
    assert (stats["requests"], stats["records_received"]) == (4, 8)
    assert (stats["records_accepted"], stats["records_failed"]) == (7, 1)
    assert stats["statuses"] == {"200": 4}


def test_a_long_running_sandbox_holds_only_its_latest_records_and_counts_every_request(clock):
    sandbox = Sandbox({KEY}, rate_limit_per_min=100, clock=clock, max_held_records=10)
    client = create_sandbox_app(sandbox).test_client()

    for i in range(6):
        assert upload(client, [make_record(2 * i), make_record(2 * i + 1)]).status_code == 200

    assert [r.external_ids for r in sandbox.requests] == [(f"lead-{i}", f"lead-{i + 1}") for i in range(2, 12, 2)]
    stats = client.get("/_sandbox/stats").get_json()
    assert (stats["requests"], stats["records_received"], stats["requests_held"]) == (6, 12, 5)


def test_sandbox_max_requests_in_any_window_counts_real_uploads(client, clock):
    for _ in range(5):
        upload(client)
        clock.advance(15)

    sandbox = client.application.extensions["carecycle_sandbox"]
    assert [r.status for r in sandbox.requests] == [200, 200, 200, 429, 200]
    assert sandbox.max_requests_in_any_window() == 3
    assert sandbox.max_requests_in_any_window(seconds=120) == 4


def test_sandbox_reset_forgets_requests_faults_and_windows(client, sandbox):
    for _ in range(4):
        upload(client)
    sandbox.set_faults(down=True)
    sandbox.fail_next(500)

    sandbox.reset()

    assert sandbox.requests == [] and sandbox.scripted == [] and not sandbox.faults.down
    assert upload(client).status_code == 200


# -- control endpoints ----------------------------------------------------------------------------


def test_control_stats_reports_counts_and_window(client):
    upload(client, [make_record(1), make_record(2, phoneNumber=REJECTED_PHONE)])
    upload(client, key="cc_wrong_key")

    stats = client.get("/_sandbox/stats").get_json()

    assert stats["requests"] == 2
    assert (stats["records_accepted"], stats["records_failed"]) == (1, 1)
    assert stats["statuses"] == {"200": 1, "401": 1}
    assert stats["max_requests_in_any_60s"] == 2
    assert stats["faults"]["rate_limit_per_min"] == 3


def test_control_faults_sets_switches_and_scripts_failures(client, sandbox):
    response = client.post(
        "/_sandbox/faults",
        json={"down": True, "error_rate": 0.25, "reject_phones": ["+1 (555) 123-0009"], "fail_next": {"status": 429}},
    )

    assert response.status_code == 200
    assert response.get_json()["faults"]["reject_phones"] == ["5551230009"]
    assert sandbox.faults.down and sandbox.faults.error_rate == 0.25
    assert [(f.status, f.retry_after) for f in sandbox.scripted] == [(429, None)]
    assert upload(client).status_code == 429
    assert upload(client).status_code == 503


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"error_rate": 2}, id="rate-above-1"),
        pytest.param({"auth_mode": 500}, id="auth-mode"),
        pytest.param({"down": "maybe"}, id="down-not-bool"),
        pytest.param({"fail_next": {"status": 200}}, id="fail-next-success-status"),
        pytest.param({"nonsense": 1}, id="unknown-switch"),
    ],
)
def test_control_faults_refuses_invalid_payload(client, sandbox, payload):
    response = client.post("/_sandbox/faults", json=payload)

    assert response.status_code == 400
    assert response.get_json()["code"] == "BAD_REQUEST"
    assert sandbox.faults == Sandbox({KEY}, rate_limit_per_min=3, reject_phones=[REJECTED_PHONE]).faults


def test_control_reset_clears_the_log(client, sandbox):
    upload(client)

    response = client.post("/_sandbox/reset")

    assert response.status_code == 200
    assert sandbox.requests == []


def test_control_records_finds_records_by_external_id(client):
    upload(client, [make_record(1), make_record(2, phoneNumber=REJECTED_PHONE)])
    upload(client, [make_record(1, firstName="Ada")])

    found = client.get("/_sandbox/records?externalId=lead-1").get_json()
    rejected = client.get("/_sandbox/records?externalId=lead-2").get_json()

    assert [(r["delivered"], r["record"].get("firstName")) for r in found["records"]] == [(True, None), (True, "Ada")]
    assert [(r["status"], r["delivered"]) for r in rejected["records"]] == [(200, False)]
    assert len(client.get("/_sandbox/records").get_json()["records"]) == 3


def test_sandbox_answers_unknown_paths_with_json_404(client):
    response = client.post("/v1/leads/upload", json={})

    assert response.status_code == 404
    assert response.get_json() == {"message": "Not found", "code": "NOT_FOUND"}


# -- real HTTP ------------------------------------------------------------------------------------


def test_sandbox_server_serves_uploads_over_http():
    sandbox = Sandbox({KEY})

    with SandboxServer(sandbox, port=0) as server:
        url = server.url
        ok = requests.post(
            f"{server.url}{UPLOAD}", json={"records": [make_record(1)]}, headers={"x-api-key": KEY}, timeout=5
        )
        denied = requests.post(f"{server.url}{UPLOAD}", json={"records": [make_record(2)]}, timeout=5)
        stats = requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()

    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert ok.status_code == 200 and ok.json()["succeeded"] == 1
    assert denied.status_code == 401
    assert stats["statuses"] == {"200": 1, "401": 1}
    assert sandbox.delivered_external_ids() == {"lead-1": 1}


def test_sandbox_server_stop_releases_a_stalled_request():
    sandbox = Sandbox({KEY})
    sandbox.set_faults(timeout_rate=1.0, stall_seconds=60)
    server = SandboxServer(sandbox).start()
    try:
        with pytest.raises(requests.Timeout):
            requests.post(
                f"{server.url}{UPLOAD}", json={"records": [make_record(1)]}, headers={"x-api-key": KEY}, timeout=0.3
            )
    finally:
        started = time.monotonic()
        server.stop()

    assert time.monotonic() - started < 5
    assert [(r.status, r.stalled) for r in sandbox.requests] == [(200, True)]
    assert sandbox.delivered_external_ids() == {"lead-1": 1}


def test_sandbox_answers_422_naming_records_whose_phone_the_invalid_phones_fault_lists():
    sandbox = Sandbox({"cc_key"})
    sandbox.set_faults(invalid_phones=["2125550199"])
    client = create_sandbox_app(sandbox).test_client()
    records = [
        {"phoneNumber": "+12125550101", "postalCode": "10001", "externalId": "a"},
        {"phoneNumber": "+12125550199", "postalCode": "10001", "externalId": "b"},
    ]

    response = client.post("/v2/leads/upload", json={"records": records}, headers={"x-api-key": "cc_key"})

    assert response.status_code == 422
    assert response.json["code"] == "VALIDATION_ERROR"
    assert [issue["path"] for issue in response.json["errors"]] == [["records", 1, "phoneNumber"]]


def test_sandbox_answers_500_to_every_upload_holding_a_phone_the_choke_phones_fault_lists():
    sandbox = Sandbox({"cc_key"})
    client = create_sandbox_app(sandbox).test_client()
    client.post("/_sandbox/faults", json={"choke_phones": ["(212) 555-0199"]})
    record = {"phoneNumber": "+12125550101", "postalCode": "10001", "externalId": "a"}
    choking = {"phoneNumber": "+12125550199", "postalCode": "10001", "externalId": "b"}

    answers = [
        client.post("/v2/leads/upload", json={"records": records}, headers={"x-api-key": "cc_key"})
        for records in ([record, choking], [choking], [record])
    ]

    assert [(a.status_code, a.json.get("code")) for a in answers] == [
        (500, "INTERNAL_ERROR"),
        (500, "INTERNAL_ERROR"),
        (200, None),
    ]
    assert sandbox.faults.as_dict()["choke_phones"] == ["2125550199"]
    assert sandbox.delivered_external_ids() == {"a": 1}


def test_a_sandbox_served_alone_logs_each_request_by_route_and_status_never_its_query_or_body(sandbox, caplog):
    from app.sandbox.access import register_access_log

    app = create_sandbox_app(sandbox)
    register_access_log(app)
    client = app.test_client()
    record = make_record(1, firstName="Zebedee", phoneNumber="+13125550177")

    with caplog.at_level(logging.INFO, logger="app.sandbox.requests"):
        client.post(f"{UPLOAD}?email=zebedee.q@example.com", json={"records": [record]}, headers={"x-api-key": KEY})
        client.get("/_sandbox/records?externalId=lead-1")
        client.get("/zebedee.q@example.com")

    lines = [r for r in caplog.records if r.name == "app.sandbox.requests"]
    assert [(r.getMessage(), r.status) for r in lines] == [
        (f"POST {UPLOAD} 200", 200),
        ("GET /_sandbox/records 200", 200),
        ("GET <unmatched> 404", 404),
    ]
    assert "zebedee" not in caplog.text.lower() and "3125550177" not in caplog.text


def test_a_sandbox_served_for_tests_logs_no_line_per_request(sandbox, caplog):
    with caplog.at_level(logging.DEBUG), SandboxServer(sandbox) as server:
        requests.get(f"{server.url}/_sandbox/stats", timeout=5)

    assert [r for r in caplog.records if r.name in ("app.sandbox.requests", "werkzeug")] == []
