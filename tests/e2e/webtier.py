"""`leadrelay web` (gunicorn, several processes) as a subprocess on a free port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from app.crypto import generate_key
from app.ports import free_port, is_http_ok
from app.processes import reap_group
from tests.conftest import OPS_TOKEN, SOURCE_KEY
from tests.realredis import owned_test_database, redis_url_for_tests
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_web_tier(settings: Mapping[str, str], log_path: Path, *, log_stdout: bool = False) -> Iterator[str]:
    """The web tier on the test Redis with the test credentials and `settings` on top; yields its URL.

    Its stderr (and with `log_stdout`, its stdout: gunicorn's access log) goes to `log_path`. The test
    Redis database (the tests' own) is emptied before and after.
    """
    with owned_test_database(), _web_tier_process(settings, log_path, log_stdout=log_stdout) as url:
        yield url


@contextmanager
def _web_tier_process(settings: Mapping[str, str], log_path: Path, *, log_stdout: bool) -> Iterator[str]:
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"},
        "PORT": str(port),
        "REDIS_URL": redis_url_for_tests(),
        "LEADRELAY_ENCRYPTION_KEY": generate_key(),
        "LEADRELAY_SOURCE_KEYS": f"partner={SOURCE_KEY}",
        "LEADRELAY_OPS_TOKENS": f"alice={OPS_TOKEN}",
        **settings,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "web"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log if log_stdout else subprocess.DEVNULL,
            stderr=log,
            process_group=0,
        )
    try:
        wait_until(lambda: is_http_ok(port, "/readyz"), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        # A worker still booting when the signal lands can miss it: the group is killed after a grace time.
        reap_group(process, 5)
