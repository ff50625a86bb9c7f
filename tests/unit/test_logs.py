"""Log lines: JSON with the ids in scope, and no exception text that could quote personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import fakeredis
import pytest
from rq import Queue, SimpleWorker

from app.logs import (
    JsonFormatter,
    LogIdsFilter,
    RepeatedTrouble,
    TracebackRedactionFilter,
    configure_logging,
    log_ids,
)


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogIdsFilter())
    handler.addFilter(TracebackRedactionFilter())
    logger = logging.getLogger("tests.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_a_line_carries_the_ids_in_scope_as_json_fields():
    logger, stream = capture()

    with log_ids(request_id="r-1", lead_id="l-1"):
        logger.info("accepted %d", 1, extra={"source": "web"})
    logger.info("outside")

    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["message"], inside["request_id"], inside["lead_id"], inside["source"]) == (
        "accepted 1",
        "r-1",
        "l-1",
        "web",
    )
    assert "request_id" not in outside


def test_a_traceback_in_a_message_argument_is_cut_to_its_exception_type():
    logger, stream = capture()
    traceback_text = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad phone +12125550142\n'

    logger.error("[Job %s]: exception raised\n%s", "job-1", traceback_text)

    line = json.loads(stream.getvalue())
    assert line["message"] == "[Job job-1]: exception raised\n<traceback of ValueError>"
    assert "2125550142" not in stream.getvalue()


def test_logged_exceptions_show_their_type_not_their_message():
    logger, stream = capture()

    try:
        raise ValueError("jose@example.com")
    except ValueError:
        logger.exception("failed")

    line = json.loads(stream.getvalue())
    assert line["exception"] == "ValueError" and "jose@example.com" not in stream.getvalue()


def test_a_request_made_within_another_leaves_no_request_id_bound_after_both(app):
    logger, stream = capture()
    client = app.test_client()

    @app.get("/outer")
    def outer() -> str:
        client.get("/healthz")  # another request, as a test stands in for a second operator
        return "outer"

    assert client.get("/outer").status_code == 200
    logger.info("after")

    assert "request_id" not in json.loads(stream.getvalue())


@pytest.fixture
def process_logging() -> Iterator[None]:
    """`configure_logging` changes the process's loggers: put them back afterwards."""
    root, rq_logger = logging.getLogger(), logging.getLogger("rq.worker")
    kept = (root.handlers[:], root.level, rq_logger.filters[:], rq_logger.level)
    yield
    root.handlers[:], _, rq_logger.filters[:], _ = kept
    root.setLevel(kept[1])
    rq_logger.setLevel(kept[3])


def test_a_worker_writes_no_routine_lines_per_job_but_its_start_and_a_failed_jobs_error(capsys, process_logging):
    configure_logging()
    queue = Queue("jobs", connection=fakeredis.FakeStrictRedis())
    done, failed = queue.enqueue(len, "abc"), queue.enqueue("math.sqrt", -1)

    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    rq_lines = [(line["level"], line["message"]) for line in lines if line["logger"] == "rq.worker"]
    assert [level for level, message in rq_lines if done.id in message] == []
    assert [level for level, message in rq_lines if failed.id in message] == ["error"]
    assert any("started with PID" in message for _, message in rq_lines)


def test_at_debug_a_worker_still_writes_its_routine_lines_per_job(capsys, process_logging):
    configure_logging(logging.DEBUG)
    queue = Queue("jobs", connection=fakeredis.FakeStrictRedis())
    done = queue.enqueue(len, "abc")

    SimpleWorker([queue], connection=queue.connection).work(burst=True)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(
        line["logger"] == "rq.worker" and "Job OK" in line["message"] and done.id in line["message"] for line in lines
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _trouble_lines(met_at: list[float]) -> list[str]:
    logger, stream = capture()
    clock = _Clock()
    trouble = RepeatedTrouble(logger, clock, "redis unavailable: %s", "redis still unavailable: %s (%d more in %.0f s)")
    for at in met_at:
        clock.now = at
        trouble.met("unreachable (ConnectionError)")
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_repeated_trouble_is_recalled_once_a_minute_while_it_goes_on():
    assert _trouble_lines([1000, 1010, 1030, 1050, 1065]) == [
        "redis unavailable: unreachable (ConnectionError)",
        "redis still unavailable: unreachable (ConnectionError) (4 more in 65 s)",
    ]


def test_repeated_trouble_met_again_after_a_quiet_minute_is_said_as_new_not_as_still_going_on():
    # Met once, then not for an hour (Redis answered meanwhile): the next time starts a new spell.
    assert _trouble_lines([1000, 4600]) == [
        "redis unavailable: unreachable (ConnectionError)",
        "redis unavailable: unreachable (ConnectionError)",
    ]
