"""The leads `leadrelay bench` posts are leads intake accepts, however long the run."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from lupa.lua51 import LuaRuntime  # wrk runs LuaJIT, a Lua 5.1

from app.benchintake import wrk_scripts
from app.schemas.leads import normalize_submission

# A wrk thread's counter runs through 3,000,000 phone numbers before they repeat; sampling every
# 2,500th visits each exchange (10,000 numbers) several times.
CYCLE = 3_000_000
STEP = 2_500
WRK_THREADS = 2


def posted_bodies(script: str) -> list[str]:
    """The bodies the script's `request()` builds across a whole cycle, for every wrk thread."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.execute("wrk = {format = function(method, path, headers, body) return body end}")
    lua.execute(script)
    thread_ids = []
    for _ in range(WRK_THREADS):
        lua.eval("setup")(lua.eval("{set = function(self, name, value) _G['set_' .. name] = value end}"))
        thread_ids.append(lua.globals().set_tid)
    bodies = []
    for tid in thread_ids:
        lua.globals().tid = tid
        lua.eval("init")(None)
        for counter in range(0, CYCLE, STEP):
            lua.globals().counter = counter
            bodies.append(lua.eval("request")())
    return bodies


@pytest.mark.parametrize(
    ("kind", "payload_of"),
    [("api", json.loads), ("form", lambda body: dict(parse_qsl(body)))],
)
def test_every_bench_lead_has_a_phone_intake_accepts(kind, payload_of):
    bodies = posted_bodies(wrk_scripts()[kind])

    assert len(bodies) == WRK_THREADS * CYCLE // STEP
    refused = {}
    for body in bodies:
        payload = payload_of(body)
        try:
            normalize_submission(payload)
        except Exception as exc:  # noqa: BLE001 - any refusal is what this test reports
            refused[str(payload.get("phoneNumber") or payload.get("phone"))] = str(exc)
    assert refused == {}


def test_a_bench_thread_posts_a_different_phone_each_time_over_its_whole_cycle():
    bodies = posted_bodies(wrk_scripts()["api"])
    per_thread = len(bodies) // WRK_THREADS

    for thread in range(WRK_THREADS):
        phones = [json.loads(body)["phoneNumber"] for body in bodies[thread * per_thread : (thread + 1) * per_thread]]
        assert len(set(phones)) == len(phones)


def test_bench_threads_post_different_phones():
    bodies = posted_bodies(wrk_scripts()["api"])
    first_thread, second_thread = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]

    assert json.loads(first_thread[0])["phoneNumber"] != json.loads(second_thread[0])["phoneNumber"]
