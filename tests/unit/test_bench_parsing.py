"""Reading wrk's report: the figures the intake benchmark quotes."""

from __future__ import annotations

import pytest

from app.benchintake import parse_wrk_output

WRK_REPORT = """Running 10s test @ http://127.0.0.1:8000/v1/leads
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.80ms    3.10ms  48.21ms   80.12%
    Req/Sec     1.64k   120.33     1.90k    70.00%
  Latency Distribution
     50%    9.41ms
     75%   11.02ms
     90%   13.30ms
     99%   23.10ms
  32650 requests in 10.01s, 7.12MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3262.50
Transfer/sec:    728.59KB
"""


def test_wrk_report_gives_rate_percentiles_and_errors():
    result = parse_wrk_output(WRK_REPORT)

    assert (result.requests_per_second, result.p50_ms, result.p99_ms, result.non_2xx) == (3262.5, 9.41, 23.1, 3)


@pytest.mark.parametrize(
    ("cell", "milliseconds"),
    [pytest.param("850.00us", 0.85, id="microseconds"), pytest.param("1.20s", 1200.0, id="seconds")],
)
def test_wrk_latency_units_are_read_as_milliseconds(cell, milliseconds):
    report = WRK_REPORT.replace("9.41ms", cell)

    assert parse_wrk_output(report).p50_ms == pytest.approx(milliseconds)


def test_a_report_without_figures_is_an_error():
    with pytest.raises(RuntimeError):
        parse_wrk_output("unable to connect to 127.0.0.1:8000 Connection refused")
