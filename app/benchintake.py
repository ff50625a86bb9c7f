"""The intake part of `leadrelay bench`: API and form posts against a trivial endpoint, same server, same run.

The web tier runs as in production (gunicorn with deploy/gunicorn.conf.py) on an app that is the relay
plus one "hello world" route; `wrk` (Debian's package) drives each endpoint in turn with the same number
of connections, so the ratio compares intake with the cheapest request that server can answer. After the runs it
reads the resident memory of that server's web processes from /proc, so that a memory regression of the web tier shows.
"""

from __future__ import annotations

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
class WrkResult:
    """One wrk run: throughput and latency percentiles."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "requestsPerSecond": round(self.requests_per_second, 1),
            "latencyP50Ms": round(self.p50_ms, 2),
            "latencyP99Ms": round(self.p99_ms, 2),
            "non2xxResponses": self.non_2xx,
        }


def run_intake_phase(redis_url: str, seconds: int, connections: int) -> dict[str, Any]:
    """Measure the trivial endpoint, API intake and form intake on one gunicorn server."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("the intake benchmark needs wrk: apt-get install wrk")
    with (
        _web_server(redis_url, connections) as (url, server_group),
        tempfile.TemporaryDirectory(prefix="leadrelay-wrk-") as scripts,
    ):
        lua = wrk_scripts()
        targets = {
            "trivial": (url + "/bench/hello", None),
            "api": (url, _script(scripts, "api", lua["api"])),
            "form": (url, _script(scripts, "form", lua["form"])),
        }
        # A short unmeasured run first: every gunicorn process is up and warm before anything counts.
        for target, script in targets.values():
            _wrk(wrk, target, script, WARM_UP_SECONDS, connections)
        hello, api, form = (_wrk(wrk, target, script, seconds, connections) for target, script in targets.values())
        rss_kib = worker_rss_kib(server_group)
    return {
        "seconds": seconds,
        "connections": connections,
        # The largest web process after the run (gunicorn's workers, not its master); None without /proc.
        "webProcessRssMiB": round(max(rss_kib) / 1024, 1) if rss_kib else None,
        "trivial": hello.as_dict(),
        "api": {**api.as_dict(), "ratioToTrivial": round(api.requests_per_second / hello.requests_per_second, 3)},
        "form": {**form.as_dict(), "ratioToTrivial": round(form.requests_per_second / hello.requests_per_second, 3)},
    }


def wrk_scripts() -> dict[str, str]:
    """The wrk Lua scripts that post bench leads: "api" (JSON with a source key) and "form" (a form post)."""
    return {
        "api": _WRK_SCRIPT % (_API_REQUEST % BENCH_SOURCE_KEY),
        "form": _WRK_SCRIPT % (_FORM_REQUEST % (BENCH_FORM_SLUG, BENCH_ORIGIN)),
    }


def _script(folder: str, name: str, text: str) -> str:
    path = Path(folder) / f"{name}.lua"
    path.write_text(text)
    return str(path)


def _wrk(wrk: str, url: str, script: str | None, seconds: int, connections: int) -> WrkResult:
    threads = min(2, connections)
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        argv[1:1] = ["-s", script]
    output = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=seconds + 30).stdout
    return parse_wrk_output(output)


def parse_wrk_output(output: str) -> WrkResult:
    """Requests/s, p50 and p99 (ms) and the non-2xx/3xx count from wrk's `--latency` report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not (rate and p50 and p99):
        raise RuntimeError("unexpected wrk output")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(float(rate.group(1)), _ms(p50), _ms(p99), int(errors.group(1)) if errors else 0)


def _ms(match: re.Match[str]) -> float:
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


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
