"""Reading wrk's report and /proc: the figures the intake benchmark quotes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.benchintake import (
    EndpointMeasure,
    WrkRun,
    parse_wrk_output,
    process_group_of,
    round_orders,
    vm_rss_kib,
    worker_rss_kib,
)
from app.ports import poll_until
from app.processes import signal_group

GRID = " ".join(str(9000 + step) for step in range(1, 1001))  # 9,001 .. 10,000 us: p50 9,500, p99 9,990
WRK_REPORT = f"""Running 10s test @ http://127.0.0.1:8000/v1/leads
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.80ms    3.10ms  48.21ms   80.12%
    Req/Sec     1.64k   120.33     1.90k    70.00%
  32650 requests in 10.01s, 7.12MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3262.50
Transfer/sec:    728.59KB
latency-grid-us: {GRID}
"""


def run(requests, seconds, grid_us):
    return WrkRun(requests, seconds, 0, tuple(grid_us))


def test_wrk_report_gives_requests_duration_errors_and_the_latency_grid():
    result = parse_wrk_output(WRK_REPORT)

    assert (result.requests, result.seconds, result.non_2xx) == (32650, 10.01, 3)
    assert result.requests_per_second == pytest.approx(3261.7, abs=0.1)
    assert (result.latency_grid_us[0], result.latency_grid_us[499], result.latency_grid_us[-1]) == (9001, 9500, 10000)


@pytest.mark.parametrize(
    ("cell", "seconds"),
    [pytest.param("850.00ms", 0.85, id="milliseconds"), pytest.param("1.50m", 90.0, id="minutes")],
)
def test_wrk_durations_are_read_as_seconds(cell, seconds):
    report = WRK_REPORT.replace("10.01s", cell)

    assert parse_wrk_output(report).seconds == pytest.approx(seconds)


def test_a_report_without_figures_is_an_error():
    with pytest.raises(RuntimeError):
        parse_wrk_output("unable to connect to 127.0.0.1:8000 Connection refused")


def test_a_run_that_got_no_answer_is_an_error():
    with pytest.raises(RuntimeError, match="no answer"):
        parse_wrk_output(WRK_REPORT.replace("32650 requests", "0 requests"))


def test_a_report_without_the_latency_grid_is_an_error():
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        parse_wrk_output(WRK_REPORT.split("latency-grid-us")[0])


def test_a_cut_short_latency_grid_is_an_error():
    with pytest.raises(RuntimeError, match="999 latency points"):
        parse_wrk_output(WRK_REPORT.replace(" 10000\n", "\n"))


def test_one_rounds_percentiles_are_its_own():
    measure = EndpointMeasure((parse_wrk_output(WRK_REPORT),))

    assert (measure.percentile_ms(50), measure.percentile_ms(99)) == (9.5, 9.99)


def test_rounds_are_pooled_by_their_requests_not_averaged():
    # 9,000 requests at 10 ms and 1,000 at 100 ms: 10 % of all requests took 100 ms, so the p99 is 100 ms,
    # where an average of the two rounds' p99s would say 55 ms.
    fast, slow = run(9000, 1.0, [10_000] * 1000), run(1000, 1.0, [100_000] * 1000)
    measure = EndpointMeasure((fast, slow))

    assert (measure.percentile_ms(50), measure.percentile_ms(89), measure.percentile_ms(99)) == (10.0, 10.0, 100.0)
    assert measure.percentile_ms(91) == 100.0


def test_the_rate_is_all_requests_over_all_seconds():
    measure = EndpointMeasure((run(3000, 1.0, [1] * 1000), run(1000, 3.0, [1] * 1000)))

    assert measure.requests_per_second == 1000.0


def test_each_round_is_compared_with_the_trivial_endpoints_round_beside_it():
    trivial = EndpointMeasure((run(4000, 2.0, [1] * 1000), run(2000, 2.0, [1] * 1000)))
    intake = EndpointMeasure((run(1000, 2.0, [1] * 1000), run(1000, 2.0, [1] * 1000)))

    compared = intake.compared_to(trivial)

    assert compared["ratioToTrivial"] == 0.333
    assert compared["ratioToTrivialByRound"] == [0.25, 0.5]


def test_endpoints_take_turns_in_a_rotating_order():
    assert round_orders(["trivial", "api", "form"], 4) == [
        ["trivial", "api", "form"],
        ["api", "form", "trivial"],
        ["form", "trivial", "api"],
        ["trivial", "api", "form"],
    ]


STATUS = "Name:\tpython3\nState:\tS (sleeping)\nVmPeak:\t  300000 kB\nVmRSS:\t  111872 kB\nRssAnon:\t   90000 kB\n"


def test_resident_memory_is_read_from_a_process_status():
    assert vm_rss_kib(STATUS) == 111872


def test_a_process_without_memory_has_no_resident_figure():
    assert vm_rss_kib("Name:\tpython3\nState:\tZ (zombie)\n") is None


def test_the_process_group_is_read_after_a_command_holding_spaces_and_parentheses():
    assert process_group_of("4242 (gunicorn: worker (a) b) S 4100 4100 4100 0 -1 4194560 18 0") == 4100


def _fake_process(proc, pid, group, status):
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} (python3) S {group} {group} {group} 0 -1 4194560 18 0\n")
    (folder / "status").write_text(status)


def test_worker_memory_counts_the_group_but_not_its_leader(tmp_path):
    _fake_process(tmp_path, 4100, 4100, STATUS.replace("111872", "50000"))  # gunicorn's master
    _fake_process(tmp_path, 4101, 4100, STATUS)
    _fake_process(tmp_path, 4102, 4100, STATUS.replace("111872", "120000"))
    _fake_process(tmp_path, 4103, 4100, "Name:\tpython3\nState:\tZ (zombie)\n")
    _fake_process(tmp_path, 5000, 5000, STATUS)  # another group
    (tmp_path / "self").mkdir()
    (tmp_path / "4104").mkdir()  # exited between listing and reading

    assert sorted(worker_rss_kib(4100, proc=tmp_path)) == [111872, 120000]


def test_worker_memory_is_empty_where_there_is_no_proc(tmp_path):
    assert worker_rss_kib(4100, proc=tmp_path / "absent") == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_worker_memory_is_read_from_a_live_process_group():
    # The leader forks one child and both wait: as gunicorn's master and a worker in a group of their own.
    forking = "import os, time\nos.fork()\ntime.sleep(30)"
    leader = subprocess.Popen([sys.executable, "-c", forking], process_group=0)
    try:
        poll_until(lambda: len(worker_rss_kib(leader.pid)) == 1, 10, "the forked child")
        assert worker_rss_kib(leader.pid)[0] > 1024  # a Python interpreter holds more than 1 MiB
    finally:
        signal_group(leader.pid, signal.SIGKILL)
        leader.wait()
