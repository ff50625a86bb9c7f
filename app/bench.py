"""`leadrelay bench`: the delivery benchmark against the sandbox and a private real Redis.

It measures, with real worker processes:
- backlog delivery: records/s against the rate-limit ceiling, records per request, request count;
- engine capacity: records/s with the rate limit lifted;
- low-load latency: intake to careCycle arrival, p50/p95, with leads arriving slower than slots free up;
- Redis commands and bytes per lead over intake plus delivery.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from app import create_app
from app.benchintake import BENCH_SOURCE_KEY, DEFAULT_ROUNDS, run_intake_phase
from app.config import Settings
from app.crypto import generate_key
from app.models import MAX_BATCH_RECORDS, LeadStatus
from app.ports import free_port, poll_until
from app.processes import reap_group, signal_group
from app.sandbox import Sandbox, SandboxServer
from app.store import Store

BENCH_CARECYCLE_KEY = "cc_bench"
WORKERS = 2
UNLIMITED_PER_MIN = 1_000_000


@dataclass(frozen=True)
class BenchOptions:
    """Sizes of a benchmark run."""

    leads: int = 12000
    rate_limit_per_min: int = 600
    low_load_leads: int = 30
    low_load_gap_seconds: float = 0.5
    capacity_leads: int = 6000
    intake_seconds: int = 10
    intake_connections: int = 32
    intake_rounds: int = DEFAULT_ROUNDS


@dataclass
class Run:
    """One benchmark phase's world: Redis, sandbox, settings, the in-process web app, worker processes."""

    redis: Redis
    sandbox: Sandbox
    settings: Settings
    workers: list[subprocess.Popen[bytes]]

    def __post_init__(self) -> None:
        self.client = create_app(self.settings, redis=self.redis).test_client()
        self.store = Store.from_settings(self.settings, self.redis)

    def post(self, count: int) -> None:
        for start in range(0, count, MAX_BATCH_RECORDS):
            leads = [_submission(start + i) for i in range(min(MAX_BATCH_RECORDS, count - start))]
            response = self.client.post("/v1/leads", json={"leads": leads}, headers={"X-Api-Key": BENCH_SOURCE_KEY})
            if response.status_code != 202:
                raise RuntimeError(f"intake refused the bench leads: {response.status_code}")

    def delivered(self) -> int:
        return self.store.leads.status_counts()[LeadStatus.DELIVERED]

    def wait_delivered(self, count: int, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while self.delivered() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.delivered()} of {count} leads delivered in {timeout_seconds:g} s")
            time.sleep(0.05)


def run_bench(options: BenchOptions, json_path: str | None = None) -> int:
    """Run every phase, print a table and the JSON result; 0 on success."""
    with private_redis() as redis_url:
        result: dict[str, Any] = {"options": options.__dict__}
        result["backlog"] = _backlog_phase(redis_url, options, options.rate_limit_per_min, options.leads)
        capacity = _backlog_phase(redis_url, options, UNLIMITED_PER_MIN, options.capacity_leads)
        for meaningless_without_limit in ("ceilingPerSecond", "ratioToCeiling"):
            del capacity[meaningless_without_limit]
        result["capacity"] = capacity
        result["lowLoad"] = _low_load_phase(redis_url, options)
        Redis.from_url(redis_url).flushall()
        result["intake"] = run_intake_phase(
            redis_url, options.intake_seconds, options.intake_connections, options.intake_rounds
        )
    _print_table(result)
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n")
    return 0


def _backlog_phase(redis_url: str, options: BenchOptions, limit: int, leads: int) -> dict[str, Any]:
    with _run(redis_url, limit) as run:
        before = _redis_counters(run.redis)
        run.post(leads)
        _start_workers(run)
        run.wait_delivered(leads, timeout_seconds=max(120.0, leads / (limit * 200 / 60) * 3))
        after = _redis_counters(run.redis)
        requests = [r for r in run.sandbox.requests if r.status == 200]
    arrivals = sorted(r.monotonic for r in requests)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    after_first = sum(r.record_count for r in requests) - min(r.record_count for r in requests)
    per_second = after_first / span if span > 0 else 0.0
    ceiling = limit * MAX_BATCH_RECORDS / 60
    return {
        "leads": leads,
        "rateLimitPerMin": limit,
        "uploadRequests": len(run.sandbox.requests),
        "recordsPerRequest": round(sum(r.record_count for r in requests) / len(requests), 1),
        "deliveredPerSecond": round(per_second, 1),
        "ceilingPerSecond": round(ceiling, 1),
        "ratioToCeiling": round(per_second / ceiling, 3),
        "redisCommandsPerLead": round((after[0] - before[0]) / leads, 2),
        "redisBytesPerLead": round((after[1] - before[1]) / leads, 1),
    }


def _low_load_phase(redis_url: str, options: BenchOptions) -> dict[str, Any]:
    with _run(redis_url, options.rate_limit_per_min) as run:
        _start_workers(run)
        time.sleep(1.5)  # workers idle, as at low load
        sent_at: dict[str, float] = {}
        for i in range(options.low_load_leads):
            started = time.time()
            response = run.client.post("/v1/leads", json=_submission(i), headers={"X-Api-Key": BENCH_SOURCE_KEY})
            sent_at[str(response.get_json()["id"])] = started
            time.sleep(options.low_load_gap_seconds)
        run.wait_delivered(options.low_load_leads, timeout_seconds=30)
        arrived = {eid: r.wall_time for r in run.sandbox.requests if r.status == 200 for eid in r.external_ids}
    latencies = sorted(arrived[lead_id] - started for lead_id, started in sent_at.items())
    return {
        "leads": options.low_load_leads,
        "gapSeconds": options.low_load_gap_seconds,
        "latencyP50Seconds": round(statistics.median(latencies), 3),
        "latencyP95Seconds": round(latencies[max(0, int(len(latencies) * 0.95 + 0.5) - 1)], 3),
        "latencyMaxSeconds": round(latencies[-1], 3),
    }


@contextmanager
def _run(redis_url: str, limit: int) -> Iterator[Run]:
    redis = Redis.from_url(redis_url)
    redis.flushall()
    # A run is bounded, and its numbers are read off every request it caused: the sandbox holds them all.
    sandbox = Sandbox({BENCH_CARECYCLE_KEY}, rate_limit_per_min=limit, max_held_records=sys.maxsize)
    with SandboxServer(sandbox) as server:
        settings = Settings(
            redis_url=redis_url,
            carecycle_api_key=BENCH_CARECYCLE_KEY,
            carecycle_base_url=server.url,
            carecycle_rate_limit_per_min=limit,
            leadrelay_source_keys={BENCH_SOURCE_KEY: "bench"},
            leadrelay_encryption_key=generate_key(),
        )
        run = Run(redis, sandbox, settings, [])
        try:
            yield run
        finally:
            for worker in run.workers:
                signal_group(worker.pid, signal.SIGTERM)
            for worker in run.workers:
                reap_group(worker, 15)  # nothing a worker forked (RQ's scheduler) may outlive the run
            redis.close()


def _start_workers(run: Run) -> None:
    env = {**os.environ, **_env(run.settings)}
    for n in range(WORKERS):
        run.workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker", "--name", f"bench-{n}-{os.getpid()}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                process_group=0,
            )
        )


def _env(settings: Settings) -> dict[str, str]:
    return {
        "REDIS_URL": settings.redis_url,
        "CARECYCLE_API_KEY": settings.carecycle_api_key,
        "CARECYCLE_BASE_URL": settings.carecycle_base_url,
        "CARECYCLE_RATE_LIMIT_PER_MIN": str(settings.carecycle_rate_limit_per_min),
        "LEADRELAY_ENCRYPTION_KEY": settings.leadrelay_encryption_key,
        "LEADRELAY_DELIVERY_LANES": str(WORKERS),
    }


def _redis_counters(redis: Redis) -> tuple[int, int]:
    info = redis.info("stats")
    return int(info["total_commands_processed"]), int(info["total_net_input_bytes"]) + int(
        info["total_net_output_bytes"]
    )


def _submission(n: int) -> dict[str, Any]:
    return {
        "phoneNumber": f"+1212{2000000 + n % 8000000:07d}",
        "firstName": "Bench",
        "lastName": f"Lead{n}",
        "email": f"bench{n}@example.com",
        "postalCode": "10001",
        "utm_source": "bench",
    }


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway Redis (AOF on, as shipped) on a free port: the bench flushes it freely."""
    from app.devredis import choose_redis_binary, redis_answers, redis_server_argv

    binary = choose_redis_binary()
    data_dir = Path(tempfile.mkdtemp(prefix="leadrelay-bench-"))
    port = free_port()
    process = subprocess.Popen(
        redis_server_argv(binary, port, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        poll_until(lambda: redis_answers(url), 10, "the bench's Redis")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(data_dir, ignore_errors=True)


def _print_table(result: dict[str, Any]) -> None:
    backlog, capacity, low = result["backlog"], result["capacity"], result["lowLoad"]
    connections = result["intake"]["connections"]
    rows = [
        ("backlog: delivered records/s", f"{backlog['deliveredPerSecond']}"),
        ("backlog: ceiling records/s", f"{backlog['ceilingPerSecond']} ({backlog['rateLimitPerMin']} req/min x 200)"),
        ("backlog: ratio to ceiling", f"{backlog['ratioToCeiling']}"),
        ("backlog: records per request", f"{backlog['recordsPerRequest']}"),
        ("backlog: upload requests", f"{backlog['uploadRequests']} for {backlog['leads']} leads"),
        ("engine capacity (limit lifted) records/s", f"{capacity['deliveredPerSecond']}"),
        ("low load: intake->careCycle p50 s", f"{low['latencyP50Seconds']}"),
        ("low load: intake->careCycle p95 s", f"{low['latencyP95Seconds']}"),
        ("redis commands per lead", f"{backlog['redisCommandsPerLead']}"),
        ("redis bytes per lead", f"{backlog['redisBytesPerLead']}"),
    ]
    intake = result["intake"]
    for name in ("trivial", "api", "form"):
        part = intake[name]
        ratio = f", {part['ratioToTrivial']} x trivial" if "ratioToTrivial" in part else ""
        rows.append((f"intake {name}: requests/s", f"{part['requestsPerSecond']}{ratio}"))
        if "ratioToTrivialByRound" in part:
            by_round = ", ".join(str(share) for share in part["ratioToTrivialByRound"])
            rows.append((f"intake {name}: x trivial by round", by_round))
        rows.append((f"intake {name}: p50 / p99 ms", f"{part['latencyP50Ms']} / {part['latencyP99Ms']}"))
    rows.append(
        ("intake load", f"{connections} connections, {intake['seconds']} s per endpoint in {intake['rounds']} rounds")
    )
    rss = intake["webProcessRssMiB"]
    rows.append(("web process RSS after intake MiB", "n/a (no /proc)" if rss is None else f"{rss}"))
    width = max(len(name) for name, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
