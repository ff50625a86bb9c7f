"""Local TCP ports for `leadrelay dev`: finding a free one and probing whether one is taken or serving."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def poll_until(is_ready: Callable[[], bool], timeout_seconds: float, what: str, interval: float = 0.05) -> None:
    """Poll `is_ready` until true; `RuntimeError` naming `what` if it is not within the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while not is_ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout_seconds:g} s")
        time.sleep(interval)


def free_port(host: str = LOOPBACK) -> int:
    """A port on `host` that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """True when `host:port` can be bound, i.e. no server already holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT would look taken though a server could bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def is_port_open(port: int, host: str = LOOPBACK, timeout_seconds: float = 0.5) -> bool:
    """True when something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def is_http_ok(port: int, path: str, host: str = LOOPBACK, timeout_seconds: float = 1.0) -> bool:
    """True when `GET path` on a local HTTP server answers 200 (a readiness probe, not an API client)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_seconds)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
