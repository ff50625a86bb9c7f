"""Process logging: one JSON object per line, with the ids in scope (request, lead, batch, job).

Ids are bound with `log_ids(...)` (a context variable, so threads and requests don't mix them) and a
filter puts them on every record. Messages carry ids and counts, never personal data or secrets. RQ's routine
lines about each job are left out (`RoutineJobLinesFilter`), and a trouble met on every request is said once per
change (`RepeatedTrouble`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra` or the ids filter.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_ids: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("leadrelay_log_ids", default={})  # noqa: B039


@contextmanager
def log_ids(**ids: str | None) -> Iterator[None]:
    """Within the block, every log line carries these ids (None values are left out)."""
    token = _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


_noted_lead_ids: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("leadrelay_noted_leads", default=())


def note_lead_ids(lead_ids: list[str]) -> None:
    """Remember the leads a request created, for its one request log line (read by `take_noted_lead_ids`)."""
    _noted_lead_ids.set(_noted_lead_ids.get() + tuple(lead_ids))


def take_noted_lead_ids() -> tuple[str, ...]:
    """The leads noted since the last take, and forget them."""
    noted = _noted_lead_ids.get()
    _noted_lead_ids.set(())
    return noted


def bind_log_ids(**ids: str | None) -> contextvars.Token[dict[str, str]]:
    """Bind ids until `unbind_log_ids(token)` (for request hooks that cannot use a `with`)."""
    return _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})


def unbind_log_ids(token: contextvars.Token[dict[str, str]]) -> None:
    _ids.reset(token)


def add_log_ids(**ids: str | None) -> None:
    """Add ids to those in scope until it ends: within a request, until its teardown unbinds its ids (the request
    line, logged before that, carries them too). Say so where it is known: the source a request came from."""
    _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})


class LogIdsFilter(logging.Filter):
    """Copies the ids in scope onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _ids.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TracebackRedactionFilter(logging.Filter):
    """Cuts formatted tracebacks that a library puts into a message's arguments (RQ logs a failed job's
    this way) down to the exception's type: an exception's message may quote the data being processed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_traceback(arg) for arg in record.args):
            record.args = tuple(_exception_type(str(arg)) if _is_traceback(arg) else arg for arg in record.args)
        return True


def _is_traceback(value: object) -> bool:
    return isinstance(value, str) and "Traceback (most recent call last)" in value


def _exception_type(traceback_text: str) -> str:
    last = traceback_text.strip().splitlines()[-1]
    return f"<traceback of {last.split(':', 1)[0].strip()}>"


# RQ's info lines for every job that runs as it should (started, completed, "Job OK", its result kept): four a job,
# hundreds a minute across the workers, none of them anything on-call acts on. Matched by RQ's format strings (RQ
# 3.0); its warnings and errors, and its lines about the worker itself (start, stop, maintenance), are kept.
_ROUTINE_JOB_LINES = frozenset(
    {
        "Worker %s: %s: %s (%s)",  # a job dequeued (with its description), and "Job OK"
        "Worker %s: %s: %s",  # a job dequeued (without its description)
        "Successfully completed %s job in %ss on worker %s",
        "Successfully completed job %s in %ss on worker %s",
        "Worker %s: job %s result discarded immediately",
        "Worker %s: job %s result is kept for %s seconds",
    }
)


class RoutineJobLinesFilter(logging.Filter):
    """Drops RQ's info lines about each job that ran as it should (see `_ROUTINE_JOB_LINES`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.msg in _ROUTINE_JOB_LINES)


class RepeatedTrouble:
    """One trouble met again and again (every request refused alike while Redis is away): an error line when it
    starts or what it is changes, then at most one a minute while it goes on, with how many times it was met since.
    A line for each time would double every request's own line through an outage. Met again after more than a
    minute without it (the process cannot tell that it ended: Redis may have answered meanwhile), it is said as new,
    never as going on since the last line. Thread-safe: a web process serves requests on several threads; each
    process says it for itself."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        first: str,
        still: str,
        remind_every_seconds: float = 60.0,
    ) -> None:
        self._logger = logger
        self._now = now
        self._first = first  # "%s": what the trouble is
        self._still = still  # "%s", "%d", "%.0f": what it is, how many times since the last line, over how long
        self._remind_every = remind_every_seconds
        self._lock = threading.Lock()
        self._said: tuple[str, float] | None = None  # what was last said, and when
        self._unsaid = 0
        self._met_at = 0.0  # when it was last met, said or not

    def met(self, what: str) -> None:
        """The trouble `what` was met once more: logged if it is new, or its last line is a minute old."""
        with self._lock:
            now, said = self._now(), self._said
            if said is not None and said[0] == what and now - said[1] < self._remind_every:
                self._unsaid += 1
                self._met_at = now
                return
            unsaid, self._unsaid = self._unsaid, 0
            self._said = (what, now)
            quiet, self._met_at = now - self._met_at > self._remind_every, now
        if said is None or said[0] != what or quiet:
            self._logger.error(self._first, what)
        else:
            self._logger.error(self._still, what, unsaid + 1, now - said[1])


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages and tracebacks can quote the data being processed.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every logger's records to stderr as JSON lines with the ids in scope; RQ's routine lines about each job
    only at `logging.DEBUG`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogIdsFilter())
    handler.addFilter(TracebackRedactionFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    rq_worker = logging.getLogger("rq.worker")  # RQ sets this logger's level itself as a worker starts
    rq_worker.filters[:] = [f for f in rq_worker.filters if not isinstance(f, RoutineJobLinesFilter)]
    if level > logging.DEBUG:
        rq_worker.addFilter(RoutineJobLinesFilter())
