"""`leadrelay bench` runs end to end on small sizes and reports every figure it promises."""

from __future__ import annotations

import json

from app.bench import BenchOptions, run_bench


def test_bench_reports_delivery_throughput_batch_fill_latency_and_redis_cost(tmp_path, capsys):
    options = BenchOptions(
        leads=1000,
        rate_limit_per_min=1200,
        low_load_leads=4,
        low_load_gap_seconds=0.2,
        capacity_leads=400,
        intake_seconds=2,
        intake_connections=8,
    )

    assert run_bench(options, json_path=str(tmp_path / "bench.json")) == 0

    result = json.loads((tmp_path / "bench.json").read_text())
    backlog = result["backlog"]
    assert backlog["uploadRequests"] == 5 and backlog["recordsPerRequest"] == 200
    assert 0 < backlog["ratioToCeiling"] <= 1.05
    assert backlog["redisCommandsPerLead"] > 0 and backlog["redisBytesPerLead"] > 0
    assert result["capacity"]["deliveredPerSecond"] > 0
    assert 0 < result["lowLoad"]["latencyP50Seconds"] <= result["lowLoad"]["latencyP95Seconds"]
    for endpoint in ("trivial", "api", "form"):
        measured = result["intake"][endpoint]
        assert measured["requestsPerSecond"] > 0 and measured["non2xxResponses"] == 0
        assert 0 < measured["latencyP50Ms"] <= measured["latencyP99Ms"]
    assert result["intake"]["api"]["ratioToTrivial"] > 0
    # Two seconds per endpoint: the five rounds asked for become two of a second each, every one compared.
    assert result["intake"]["rounds"] == 2
    assert len(result["intake"]["form"]["ratioToTrivialByRound"]) == 2
    table = capsys.readouterr().out
    assert "backlog: ratio to ceiling" in table and "low load: intake->careCycle p95 s" in table
