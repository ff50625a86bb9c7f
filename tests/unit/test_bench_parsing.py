"""Reading wrk's report and /proc: the figures the intake benchmark quotes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.benchintake import parse_wrk_output, process_group_of, vm_rss_kib, worker_rss_kib
from app.ports import poll_until
from app.processes import signal_group

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
