"""schemathesis against the running relay: no server errors, no answer that contradicts /openapi.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app import create_app
from tests.browser import serve
from tests.conftest import OPS_TOKEN, SOURCE_KEY

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_spec(settings, real_redis, tmp_path: Path):
    app = create_app(settings, redis=real_redis)
    with serve(app) as url:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{url}/openapi.json",
                "--checks",
                CHECKS,
                "--header",
                f"X-Api-Key: {SOURCE_KEY}",
                "--header",
                f"Authorization: Bearer {OPS_TOKEN}",
                "--max-examples",
                os.environ.get("LEADRELAY_SCHEMATHESIS_EXAMPLES", "40"),
                "--seed",
                "1",
                "--workers",
                "1",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=540,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )

    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout, run.stdout
