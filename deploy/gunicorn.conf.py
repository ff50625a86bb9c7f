"""gunicorn settings of the web tier (`leadrelay web`, and `leadrelay dev` with its own --bind).

Read by gunicorn at start; every value can be changed through the environment named beside it.
"""

import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.glogging import Logger

# Platforms (Heroku, Render, Fly, Cloud Run) hand the port in PORT.
bind = f"0.0.0.0:{os.environ.get('PORT', '').strip() or '8000'}"

# Processes x threads: intake requests are short and wait mostly on Redis, so a few threads per
# process serve many clients without the memory of more processes. These counts (defaults as in
# app.webtier.WEB_TIER_COUNTS) are checked by `leadrelay web`, `dev` and `check-config` before gunicorn
# starts: importing the app here would load prometheus_client before on_starting sets its folder.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# Clients one process holds at once; past it the process stops accepting and the others take the rest.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS") or 1000)

# Intake answers in milliseconds and never calls careCycle or the Graph API inside a request, so a
# request still running after 30 s is stuck: the worker is restarted.
timeout = 30
graceful_timeout = 20
# An idle client connection is kept this long: longer than the idle timeout of a load balancer in front (AWS's
# ALB: 60 s), so that the balancer closes it first. Closed by gunicorn first, a connection the balancer has just
# sent a request on fails, and the client gets a 502. An idle connection costs a gthread process no thread.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE") or 75)

# Each worker builds its app (and its Redis connection pool) after the fork: connections are never
# shared between processes, and a code reload needs no special care. It also lets on_starting (below) give
# the processes their metrics folder before prometheus_client is imported: do not preload.
preload_app = False

# The relay logs each request itself (JSON, with the request id and no personal data); gunicorn's
# access log would repeat it, so it is off unless asked for ("-" for stdout, or a file path). When on, it
# shows no client address, path, query string, referrer or user agent: those can carry personal data (a
# landing page's URL with the visitor's details) or secrets (Meta's verify token in the handshake query).
# Each line has the request id, which the relay's own line for the request carries with its route.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = '%(t)s "%(m)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
errorlog = "-"
# Blank counts as unset; gunicorn reads the level in any case but not with spaces around it.
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "").strip() or "info"


class JsonLinesFormatter(logging.Formatter):
    """gunicorn's lines in the shape of the relay's own (app.logs.JsonFormatter): one JSON object a line, an
    exception by its type only. Not imported from `app`: that would load prometheus_client in the master
    before on_starting gives it its metrics folder."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id
        return json.dumps(entry, default=str)


class RedactingLogger(Logger):
    """gunicorn's logger, without what a malformed request carries: gunicorn writes the client's address
    and the request's own text (a body, a request line) into its warnings and error lines. Its error and
    access lines are JSON, as every other line of the relay."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonLinesFormatter())

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith("Invalid request from ip="):
            error = msg.partition(": ")[2]
            kind = re.match(r"[A-Za-z][A-Za-z ]{0,59}", error)  # "Invalid chunk size", "Invalid HTTP request line"
            msg, args = "Invalid request: %s", (kind.group(0).strip() if kind else "unreadable",)
        super().warning(msg, *args, **kwargs)

    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # A failed request's exception comes as an argument, and its text can be the request's own bytes
        # (a client gone mid-headers: "No more data after: b'...X-Api-Key: ...'"): its type only.
        args = tuple(type(arg).__name__ if isinstance(arg, BaseException) else arg for arg in args)
        super().debug(msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith("Error handling request"):
            # The request's URI (a query string) and the exception's message are left out; its type is kept.
            failure = sys.exc_info()[0]
            super().error("Error handling request: %s", failure.__name__ if failure else "unknown error")
            return
        super().exception(msg, *args, **kwargs)


logger_class = RedactingLogger

# gunicorn's own limits on what it reads before the relay sees a request (its defaults, named here as its refusals
# below say them).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# What gunicorn answers itself, to a request too malformed for the relay to see (a request line over its limit, a
# header name with a space, a bad chunk size): its own page is HTML, has no X-Request-ID and quotes the request's text
# (a version, a header's name, a chunk size). It answers in the relay's JSON error shape instead, with a request id of
# its own and the relay's X-Content-Type-Options, saying what was expected and nothing of what was sent.
_REFUSAL_EXPECTED = {
    414: ("url", f"expected a request line (method, path and query) of at most {limit_request_line} bytes"),
    431: (
        "headers",
        f"expected at most {limit_request_fields} header fields of at most {limit_request_field_size} bytes each",
    ),
    417: ("Expect", "expected 100-continue, or no Expect header"),
    501: ("Transfer-Encoding", "expected chunked, or no Transfer-Encoding"),
}
_REQUEST_EXPECTED = (
    "request",
    "expected an HTTP/1.1 request: a request line, header names and chunks as HTTP has them",
)


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, in the relay's shape: `mesg` (the request's own text) is never sent."""
    field, expected = _REFUSAL_EXPECTED.get(status_int, _REQUEST_EXPECTED)
    fields = {} if status_int >= 500 and status_int != 501 else {field: [expected]}
    code = re.sub(r"[^A-Z]+", "_", reason.upper()).strip("_") or "ERROR"
    body = json.dumps({"error": {"code": code, "message": reason, "fields": fields}})
    request_id = uuid.uuid4().hex
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, (head + body).encode("latin-1"))
    # The id the client was given, in the log as every request's is (the warning before it says what was wrong).
    logging.getLogger("gunicorn.error").info("answered %d %s", status_int, reason, extra={"request_id": request_id})


# Forked workers inherit it: gunicorn reads this file in the master, before it starts them.
gunicorn_util.write_error = write_json_error


def pre_request(worker: Any, req: Any) -> None:
    """gunicorn's own pre_request logs each request's raw path at debug level: the relay logs requests itself."""


# Which proxies gunicorn lets set X-Forwarded-Proto (https in statusUrl). Set it to the load balancer's
# address, or "*" behind a platform router. gunicorn never takes the client's address from X-Forwarded-For:
# the relay does, for per-IP limits and the client IP kept with a lead's consent, only with
# LEADRELAY_TRUSTED_PROXY_HOPS set to the number of proxies in front (else every visitor is the proxy).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# gunicorn's control socket (for `gunicornc`) has one default path per user, which every instance on
# the host would share; the relay is managed with signals and its platform, so it stays off.
control_socket_disable = True

# Worker heartbeats on a RAM disk: in containers /tmp can be a slow overlay and stall the heartbeat.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


# The metrics folder this server made for itself (removed when it exits), if PROMETHEUS_MULTIPROC_DIR was unset.
_own_metrics_dir: list[str] = []


def on_starting(server: Any) -> None:
    """Give /metrics a folder all web processes share, then start metrics afresh.

    Counters live in each process; only prometheus_client's multiprocess mode, with its files in one folder,
    makes a scrape answered by any process report them all. Without PROMETHEUS_MULTIPROC_DIR set, the server
    makes its own folder, which its processes inherit. Files left by processes of an earlier run would be
    counted again, so they are removed.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if not folder:
        folder = tempfile.mkdtemp(prefix="leadrelay-metrics-")
        _own_metrics_dir.append(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.makedirs(folder, exist_ok=True)  # `leadrelay web` checked that it can be made and written to
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def on_exit(server: Any) -> None:
    """Remove the metrics folder the server made for itself."""
    for folder in _own_metrics_dir:
        shutil.rmtree(folder, ignore_errors=True)


def post_fork(server: Any, worker: Any) -> None:
    """Each web process logs JSON lines with request ids (app.logs)."""
    from app.logs import configure_logging

    configure_logging()


def post_worker_init(worker: Any) -> None:
    """Keep what a web process built as it started out of the garbage collector's full passes (`gc.freeze`).

    A web process starts with some 70,000 lasting objects (modules, classes, schemas, lookup tables; the ZIP
    table is a few arrays, see app/schemas/ziptable.py). A full collection walks every object it tracks, about
    20 ms with these, and the process answers no request meanwhile; under load one comes every few thousand
    requests. Frozen, they are never walked again; what requests make is collected as before. Collected first,
    so that no garbage is kept for good.
    """
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """With prometheus_client's multiprocess mode, drop the metrics files of a worker that exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
