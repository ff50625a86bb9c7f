"""The intake part of `leadrelay bench`: API and form posts against a trivial endpoint, same server, same run.

The web tier runs as in production (gunicorn with deploy/gunicorn.conf.py) on an app that is the relay
plus one "hello world" route; `wrk` (Debian's package) drives each endpoint with the same number of connections,
so the ratio compares intake with the cheapest request that server can answer. The endpoints take turns in short
rounds, in a rotating order, rather than one long run each: a machine whose speed drifts during the run (a shared
host, another process waking up) then slows all three alike, and the ratio measures the relay, not the drift.
Each round's wrk reports its latency percentiles on a fine grid, and the rounds of an endpoint are pooled into one
distribution. After the runs it reads the resident memory of that server's web processes from /proc, so that a
memory regression of the web tier shows.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from app import create_app
from app.crypto import generate_key
from app.ports import free_port, is_http_ok, poll_until
from app.processes import reap_group, signal_group

BENCH_SOURCE_KEY = "bench-source-key"
BENCH_FORM_SLUG = "bench-form"
BENCH_ORIGIN = "https://landing.bench.example"
WARM_UP_SECONDS = 2
DEFAULT_ROUNDS = 5
LATENCY_GRID_POINTS = 1000
REPO_ROOT = Path(__file__).resolve().parents[1]

_SOURCES_TOML = f"""
[sources.{BENCH_FORM_SLUG}]
kind = "form"
allowed_origins = ["{BENCH_ORIGIN}"]
rate_limit_per_ip_per_min = 100000000
rate_limit_per_min = 100000000
"""

# Each wrk thread numbers its requests from its own offset, so every lead has a phone of its own: exchanges
# 200..499 of area code 212, with the N11 service codes that intake rightly refuses (211, 311, 411) moved to
# exchanges no other number uses (500, 501, 502).
_WRK_SCRIPT = """
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) counter = 0 end
function request()
  counter = counter + 1
  local n = 2000000 + (tid * 500000 + counter) %% 3000000
  local exchange = math.floor(n / 10000)
  if exchange %% 100 == 11 then n = (498 + math.floor(exchange / 100)) * 10000 + n %% 10000 end
  local phone = string.format("+1212%%07d", n)
  %s
end
"""
# Every wrk run ends by printing its latency at each 0.1 % step (microseconds), so that the rounds of one endpoint
# can be pooled: a round's percentiles weigh as many requests as it made.
_LATENCY_GRID_SCRIPT = f"""
function done(summary, latency, requests)
  local points = {{}}
  for i = 1, {LATENCY_GRID_POINTS} do points[i] = latency:percentile(i * 100 / {LATENCY_GRID_POINTS}) end
  io.write("latency-grid-us: " .. table.concat(points, " ") .. "\\n")
end
"""
_API_REQUEST = """
  local body = '{"phoneNumber":"' .. phone .. '","firstName":"Bench","lastName":"Lead","postalCode":"10001",'
    .. '"email":"bench@example.com","utm_source":"bench"}'
  return wrk.format("POST", "/v1/leads", {["Content-Type"] = "application/json", ["X-Api-Key"] = "%s"}, body)
"""
_FORM_REQUEST = """
  local body = "first_name=Bench&last_name=Lead&zip=10001&email=bench%%40example.com&utm_source=bench&phone="
    .. phone:sub(2)
  return wrk.format("POST", "/v1/forms/%s", {["Content-Type"] = "application/x-www-form-urlencoded",
    ["Origin"] = "%s", ["Accept"] = "application/json"}, body)
"""


def create_bench_app() -> Flask:
    """The relay's app plus a trivial endpoint to compare intake against (gunicorn loads this)."""
    app = create_app()

    @app.get("/bench/hello")
    def hello() -> str:
        return "hello"

    return app


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: what it counted, and its latency at each 0.1 % step of its requests (microseconds)."""

    requests: int
    seconds: float
    non_2xx: int
    latency_grid_us: tuple[float, ...]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class EndpointMeasure:
    """One endpoint's rounds taken together: the rate over all of them, and the percentiles of all their requests
    (each round's grid of percentiles weighs as many requests as the round made)."""

    runs: tuple[WrkRun, ...]

    @property
    def requests_per_second(self) -> float:
        return sum(run.requests for run in self.runs) / sum(run.seconds for run in self.runs)

    def percentile_ms(self, percent: float) -> float:
        """The latency under which `percent` % of all the rounds' requests were answered."""
        points = sorted(
            (latency, run.requests / len(run.latency_grid_us)) for run in self.runs for latency in run.latency_grid_us
        )
        if not points:
            raise RuntimeError("no wrk run to take percentiles of")
        reached = list(itertools.accumulate(weight for _, weight in points))
        index = bisect.bisect_left(reached, percent / 100 * reached[-1] * (1 - 1e-9))
        return points[min(index, len(points) - 1)][0] / 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "requestsPerSecond": round(self.requests_per_second, 1),
            "latencyP50Ms": round(self.percentile_ms(50), 2),
            "latencyP99Ms": round(self.percentile_ms(99), 2),
            "non2xxResponses": sum(run.non_2xx for run in self.runs),
        }

    def compared_to(self, trivial: EndpointMeasure) -> dict[str, Any]:
        """as_dict, with the rate as a share of the trivial endpoint's: over the whole run, and round by round."""
        return {
            **self.as_dict(),
            "ratioToTrivial": round(self.requests_per_second / trivial.requests_per_second, 3),
            "ratioToTrivialByRound": [
                round(run.requests_per_second / hello.requests_per_second, 3)
                for run, hello in zip(self.runs, trivial.runs, strict=True)
            ],
        }


def run_intake_phase(redis_url: str, seconds: int, connections: int, rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    """Measure the trivial endpoint, API intake and form intake on one gunicorn server, `seconds` each, taking
    turns in `rounds` rounds (fewer where a round would be shorter than a second)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("the intake benchmark needs wrk: apt-get install wrk")
    rounds = max(1, min(rounds, seconds))
    with (
        _web_server(redis_url, connections) as (url, server_group),
        tempfile.TemporaryDirectory(prefix="leadrelay-wrk-") as scripts,
    ):
        targets = {
            name: (url + "/bench/hello" if name == "trivial" else url, _script(scripts, name, text))
            for name, text in {"trivial": "", **wrk_scripts()}.items()
        }
        # A short unmeasured run first: every gunicorn process is up and warm before anything counts.
        for target, script in targets.values():
            _wrk(wrk, target, script, WARM_UP_SECONDS, connections)
        runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
        for turn in round_orders(list(targets), rounds):
            for name in turn:
                target, script = targets[name]
                runs[name].append(
                    _wrk(wrk, target, script, _round_seconds(seconds, rounds, len(runs[name])), connections)
                )
        rss_kib = worker_rss_kib(server_group)
    hello, api, form = (EndpointMeasure(tuple(runs[name])) for name in ("trivial", "api", "form"))
    return {
        "seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        # The largest web process after the run (gunicorn's workers, not its master); None without /proc.
        "webProcessRssMiB": round(max(rss_kib) / 1024, 1) if rss_kib else None,
        "trivial": hello.as_dict(),
        "api": api.compared_to(hello),
        "form": form.compared_to(hello),
    }


def round_orders(names: list[str], rounds: int) -> list[list[str]]:
    """The order the endpoints take in each round: rotated by one each round, so that none always goes first
    (right after another endpoint's load) or last."""
    return [names[turn % len(names) :] + names[: turn % len(names)] for turn in range(rounds)]


def _round_seconds(seconds: int, rounds: int, index: int) -> int:
    """Round `index`'s share of `seconds`: whole seconds (wrk's unit), the remainder to the first rounds."""
    return seconds // rounds + (1 if index < seconds % rounds else 0)


def wrk_scripts() -> dict[str, str]:
    """The wrk Lua scripts that post bench leads: "api" (JSON with a source key) and "form" (a form post)."""
    return {
        "api": _WRK_SCRIPT % (_API_REQUEST % BENCH_SOURCE_KEY),
        "form": _WRK_SCRIPT % (_FORM_REQUEST % (BENCH_FORM_SLUG, BENCH_ORIGIN)),
    }


def _script(folder: str, name: str, text: str) -> str:
    """A wrk script file: `text` (wrk's own request where empty), ending with the latency grid's report."""
    path = Path(folder) / f"{name}.lua"
    path.write_text(text + _LATENCY_GRID_SCRIPT)
    return str(path)


def _wrk(wrk: str, url: str, script: str, seconds: int, connections: int) -> WrkRun:
    threads = min(2, connections)
    argv = [wrk, "-s", script, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=seconds + 30).stdout
    return parse_wrk_output(output)


def parse_wrk_output(output: str) -> WrkRun:
    """The requests, duration and non-2xx/3xx count of wrk's report, and the latency grid our `done()` printed."""
    counted = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", output, re.MULTILINE)
    grid = re.search(r"^latency-grid-us: ([\d. ]+)$", output, re.MULTILINE)
    if not (counted and grid):
        raise RuntimeError("unexpected wrk output")
    points = tuple(float(point) for point in grid.group(1).split())
    if len(points) != LATENCY_GRID_POINTS:
        raise RuntimeError(f"wrk printed {len(points)} latency points, not {LATENCY_GRID_POINTS}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    seconds = _ms(counted.group(2), counted.group(3)) / 1000
    if int(counted.group(1)) == 0 or seconds <= 0:
        raise RuntimeError("wrk got no answer in its run")
    return WrkRun(int(counted.group(1)), seconds, int(errors.group(1)) if errors else 0, points)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def worker_rss_kib(group: int, proc: Path = Path("/proc")) -> list[int]:
    """The resident memory (VmRSS, KiB) of each process of group `group` but its leader: a gunicorn started in
    its own group, its workers. Empty where there is no /proc (not Linux)."""
    sizes = []
    for entry in proc.glob("[0-9]*"):
        try:
            if int(entry.name) == group or process_group_of(entry.joinpath("stat").read_text()) != group:
                continue
            rss = vm_rss_kib(entry.joinpath("status").read_text())
        except (OSError, ValueError):
            continue  # a process that exited meanwhile
        if rss is not None:
            sizes.append(rss)
    return sizes


def process_group_of(stat: str) -> int:
    """The process group in a /proc/<pid>/stat line: the third field after the command, which is in
    parentheses and may hold spaces or parentheses itself."""
    return int(stat[stat.rindex(")") + 1 :].split()[2])


def vm_rss_kib(status: str) -> int | None:
    """VmRSS from a /proc/<pid>/status text, in KiB; None for a process without memory (a zombie)."""
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    return int(match.group(1)) if match else None


@contextmanager
def _web_server(redis_url: str, connections: int) -> Iterator[tuple[str, int]]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="leadrelay-bench-web-") as folder:
        sources = Path(folder) / "sources.toml"
        sources.write_text(_SOURCES_TOML)
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "LEADRELAY_ENCRYPTION_KEY": generate_key(),
            "LEADRELAY_SOURCE_KEYS": f"bench={BENCH_SOURCE_KEY}",
            "LEADRELAY_SOURCES": str(sources),
            "PORT": str(port),
            # Each process takes at most its share of the clients: otherwise the kernel's accept race can
            # pile wrk's long-lived connections onto one process and leave the other idle (numbers then
            # swing by 3x from run to run). Same setting for every endpoint measured.
            "GUNICORN_WORKER_CONNECTIONS": str(math.ceil(connections / _web_processes())),
        }
        config = str(REPO_ROOT / "deploy" / "gunicorn.conf.py")
        argv = [sys.executable, "-m", "gunicorn", "--config", config, "app.benchintake:create_bench_app()"]
        process = subprocess.Popen(
            argv, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
        )
        url = f"http://127.0.0.1:{port}"
        try:
            poll_until(lambda: is_http_ok(port, "/readyz"), 30, "the web tier")
            yield url, process.pid
        finally:
            signal_group(process.pid, signal.SIGINT)
            reap_group(process, 10)


def _web_processes() -> int:
    return max(1, int(os.environ.get("WEB_CONCURRENCY", "2")))
