"""`leadrelay sandbox` as a process (as `leadrelay dev` runs it): every line it writes is a JSON log line, its access
lines like the web tier's request lines, without a query string, a body or a path that names no route."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from app.ports import free_port, is_port_open
from app.processes import reap_group, signal_group
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_KEY = "cc_sandbox_e2e"
PERSONAL = ["Zebedee", "zebedee.q@example.com", "3125550177"]


def test_the_sandbox_process_writes_json_lines_its_access_lines_naming_route_and_status_only(tmp_path):
    port = free_port()
    output = tmp_path / "sandbox.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sandbox", "--port", str(port), "--api-key", SANDBOX_KEY],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        try:
            wait_until(lambda: is_port_open(port), timeout=10)
            url = f"http://127.0.0.1:{port}"
            record = {
                "externalId": "lead-1",
                "firstName": "Zebedee",
                "phoneNumber": "+13125550177",
                "postalCode": "10001",
            }
            requests.post(
                f"{url}/v2/leads/upload?email=zebedee.q@example.com",
                json={"records": [record]},
                headers={"x-api-key": SANDBOX_KEY},
                timeout=5,
            )
            requests.get(f"{url}/_sandbox/records", params={"externalId": "lead-1"}, timeout=5)
            requests.get(f"{url}/zebedee.q@example.com", timeout=5)
        finally:
            signal_group(process.pid, signal.SIGTERM)
            reap_group(process, 5)

    lines = [line for line in output.read_text().splitlines() if line.strip()]
    assert [line for line in lines if not line.startswith("{")] == []
    access = [entry for entry in map(json.loads, lines) if entry["logger"] == "app.sandbox.requests"]
    assert [(entry["message"], entry["status"]) for entry in access] == [
        ("POST /v2/leads/upload 200", 200),
        ("GET /_sandbox/records 200", 200),
        ("GET <unmatched> 404", 404),
    ]
    assert all(isinstance(entry["duration_ms"], float) for entry in access)
    assert [value for value in PERSONAL if value in output.read_text()] == []
