"""`leadrelay worker` as a process: a stop signal ends it, waiting for jobs or not; killed, it starts again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Worker

from app.crypto import generate_key
from app.processes import reap_group
from app.store import keys
from tests.realredis import connect_or_fail, redis_url_for_tests
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_an_idle_worker_stops_on_a_signal_and_does_not_start_again(stop, real_redis):
    redis = real_redis  # the tests' own database: a worker on another would deliver its leads
    name = f"signal-test-{os.getpid()}-{stop}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url_for_tests(),
        "CARECYCLE_API_KEY": "cc_unused",
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--name", name],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        wait_until(lambda: redis.exists(f"rq:worker:{name}"), timeout=30)
        time.sleep(0.5)  # past registration, waiting for jobs
        process.send_signal(stop)

        assert process.wait(timeout=10) == 0
    finally:
        reap_group(process, 5)
        redis.delete(f"rq:worker:{name}")


def test_a_burst_worker_delivers_the_leads_due_though_no_job_was_queued_for_them(relay_settings, real_redis, sandbox):
    # Due retries and leads whose wake-up was lost are found by the ticker, not by a queued job.
    from app.crypto import RecordCipher
    from app.models import LeadStatus
    from app.store import Store
    from tests.factories import make_lead
    from workers.runner import run_worker

    store = Store.from_settings(relay_settings, real_redis)
    cipher = RecordCipher(relay_settings.leadrelay_encryption_key)
    lead = make_lead()
    store.leads.admit([lead], [cipher.seal(lead.record)], time.time() - 5)

    run_worker(relay_settings, burst=True)

    assert store.leads.get(lead.id).status is LeadStatus.DELIVERED
    assert [request.external_ids for request in sandbox.sandbox.requests] == [(lead.external_id,)]


def test_a_named_worker_killed_mid_batch_starts_again_under_its_name_and_its_batch_is_delivered(
    relay, sandbox, submissions
):
    sandbox.sandbox.set_faults(timeout_rate=1.0, stall_seconds=30)
    ids = relay.post_leads(submissions(20))
    killed = relay.start_worker("w-0")
    wait_until(lambda: sandbox.sandbox.requests, timeout=10)
    relay.kill(killed)  # kill -9 mid-upload, as an OOM kill or a lost node would: RQ keeps its registration
    sandbox.sandbox.set_faults(timeout_rate=0.0)
    sandbox.sandbox.release_stalls()
    wait_until(lambda: not relay.redis.exists(keys.worker_alive_key("w-0")), timeout=10)  # its liveness lapses

    restarted = relay.start_worker("w-0")  # as its supervisor restarts it, under the same name

    relay.wait_delivered(len(ids), timeout=30)
    assert restarted.poll() is None
    assert [(w.name, w.pid) for w in Worker.all(connection=relay.redis)] == [("w-0", restarted.pid)]


def test_a_worker_outlives_redis_turning_read_only_and_delivers_once_it_takes_writes_again(
    relay_settings, sandbox, submissions, tmp_path: Path
):
    # A failover that leaves the relay's endpoint on a replica: every write is refused READONLY for a while.
    from redis import Redis

    from app.ports import free_port
    from tests.e2e.conftest import Relay
    from tests.realredis import redis_server_process

    with redis_server_process(tmp_path / "redis") as server:
        redis = Redis.from_url(server.url)
        relay = Relay(relay_settings.replace(redis_url=server.url), redis, tmp_path)
        try:
            worker = relay.start_worker("through-failover")
            redis.replicaof("127.0.0.1", free_port())  # a primary that never answers: the data stays, read-only
            log = tmp_path / "through-failover.log"
            wait_until(lambda: b"the worker stopped on an error" in log.read_bytes(), timeout=15)
            redis.replicaof("NO", "ONE")
            ids = relay.post_leads(submissions(5))

            relay.wait_delivered(5, timeout=20)
            assert worker.poll() is None
        finally:
            relay.stop_workers()
    assert set(sandbox.sandbox.delivered_external_ids()) == set(ids)


def test_a_worker_whose_redis_goes_away_logs_only_json_lines_its_scheduler_too(tmp_path):
    from tests.realredis import redis_server_process

    with redis_server_process(tmp_path / "redis") as server:
        redis = connect_or_fail(server.url)
        output = (tmp_path / "worker.out").open("w+b")
        env = {
            **os.environ,
            "REDIS_URL": server.url,
            "CARECYCLE_API_KEY": "cc_unused",
            "LEADRELAY_ENCRYPTION_KEY": generate_key(),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        try:
            wait_until(lambda: redis.keys("rq:scheduler-lock:*"), timeout=30)  # the scheduler process runs
            time.sleep(1)
            server.stop()
            # RQ's scheduler beats once a second and its process ends on the first beat Redis does not answer.
            wait_until(lambda: b"the scheduler stopped" in (tmp_path / "worker.out").read_bytes(), timeout=30)
            time.sleep(2)
        finally:
            reap_group(process, 5)
            output.close()

    lines = (tmp_path / "worker.out").read_text().splitlines()
    not_json = [line for line in lines if not _is_json_object(line)]
    assert not_json == [], "\n".join(lines)
    entries = [json.loads(line) for line in lines]
    assert {
        "level": "error",
        "logger": "workers.scheduler",
        "message": "the scheduler stopped: redis unreachable (ConnectionError);"
        " the worker starts it again once Redis answers",
    }.items() <= next(entry for entry in entries if entry["logger"] == "workers.scheduler").items()


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
