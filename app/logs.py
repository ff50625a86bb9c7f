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
from dataclasses import dataclass
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


REMIND_EVERY_SECONDS = 60.0


@dataclass
class _Said:
    what: str
    at: float  # when it was last said
    met_at: float  # when it was last met, said or not
    since: int = 0  # times met since it was last said


@dataclass(frozen=True)
class Say:
    """How a trouble met once more is to be said: as `new`, or as going on, met `repeats` times over `seconds` since
    its last line."""

    new: bool
    repeats: int = 0
    seconds: float = 0.0


class OncePerChange:
    """When to say a trouble met again and again (every request refused alike while Redis is away, every upload failed
    alike while careCycle is down): when it starts or what it is changes, then at most once a reminder interval while
    it goes on, never once each time, which would bury everything else on-call reads. Kept by `key` (a ticker's step,
    a setting), one trouble per key. With `new_after_quiet`, a trouble met after more than an interval without it is
    said as new, for a caller that cannot tell it ended. Two troubles are alike when `alike` reads them the same (by
    default, when they are): a failure's trace id, say, one per call, makes no new trouble. Thread-safe: a web process
    meets it on several threads."""

    def __init__(
        self,
        now: Callable[[], float],
        remind_every_seconds: float = REMIND_EVERY_SECONDS,
        *,
        new_after_quiet: bool = False,
        alike: Callable[[str], str] | None = None,
    ) -> None:
        self._now = now
        self._remind_every = remind_every_seconds
        self._new_after_quiet = new_after_quiet
        self._alike = alike or (lambda what: what)
        self._lock = threading.Lock()
        self._said: dict[str, _Said] = {}

    def met(self, what: str, key: str = "") -> Say | None:
        """The trouble `what` was met once more under `key`: how to say it, or None to keep quiet."""
        with self._lock:
            now, said = self._now(), self._said.get(key)
            same = said is not None and self._alike(said.what) == self._alike(what)
            if said is not None and same and now - said.at < self._remind_every:
                said.since += 1
                said.met_at = now
                return None
            self._said[key] = _Said(what, now, now)
        if said is None or not same or (self._new_after_quiet and now - said.met_at > self._remind_every):
            return Say(new=True)
        return Say(new=False, repeats=said.since + 1, seconds=now - said.at)

    def ended(self, key: str = "") -> bool:
        """The trouble under `key` is over (the call went through): the next one is said as new. True when one had
        been said."""
        with self._lock:
            return self._said.pop(key, None) is not None


class RepeatedTrouble:
    """Logs one trouble met again and again, as `OncePerChange` has it said: `first` ("%s": what it is) when it starts
    or changes, `still` ("%s", "%d", "%.0f": what it is, how many times since the last line, over how long) at most
    once a minute while it goes on; at `level`, and, with `quiet_at_debug`, each time kept quiet at debug. By default
    a trouble met after a quiet minute is said as new (`new_after_quiet`): the web process that meets Redis away
    cannot tell that it came back."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        first: str,
        still: str,
        remind_every_seconds: float = REMIND_EVERY_SECONDS,
        *,
        level: int = logging.ERROR,
        quiet_at_debug: bool = False,
        new_after_quiet: bool = True,
        alike: Callable[[str], str] | None = None,
    ) -> None:
        self._logger = logger
        self._first = first
        self._still = still
        self._level = level
        self._quiet_at_debug = quiet_at_debug
        self._when = OncePerChange(now, remind_every_seconds, new_after_quiet=new_after_quiet, alike=alike)

    def met(self, what: str, ids: dict[str, str] | None = None, *, key: str = "") -> None:
        """The trouble `what` was met once more (`ids` name what for) under `key` (one trouble per key: a Page):
        logged if it is new, or its last line is a minute old."""
        say = self._when.met(what, key)
        if say is None:
            if self._quiet_at_debug:
                self._logger.debug(self._first, what, extra=ids)
        elif say.new:
            self._logger.log(self._level, self._first, what, extra=ids)
        else:
            self._logger.log(self._level, self._still, what, say.repeats, say.seconds, extra=ids)

    def ended(self, key: str = "") -> None:
        """The trouble under `key` is over (the service took a call): the next one is said at once."""
        self._when.ended(key)


class PauseLog:
    """Says a pause of `what` (delivery, Meta retrieval) once per change, through `RepeatedTrouble`: "<what>
    paused<scope>: <reason>" when it starts or its reason changes, "<what> still paused<scope>: ..." at most once a
    minute while its probes fail alike, each failed probe at debug. A pause that starts anew (its store says so) is
    said at once, even when this process said one for the same reason a moment ago; its end is the caller's to say."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        what: str,
        scope: str = "",
        alike: Callable[[str], str] | None = None,
    ) -> None:
        self._trouble = RepeatedTrouble(
            logger,
            now,
            f"{what} paused{scope}: %s",
            f"{what} still paused{scope}: %s (%d more probes failed alike in %.0f s)",
            quiet_at_debug=True,
            new_after_quiet=False,  # a pause ends with an answer (`ended`) or starts anew (`paused`, `started`)
            alike=alike,
        )

    def paused(self, reason: str, *, started: bool, ids: dict[str, str] | None = None, key: str = "") -> None:
        """The pause under `key` (one pause per key: a Page) goes on for `reason`; `started` when this began it."""
        if started:
            self._trouble.ended(key)
        self._trouble.met(reason, ids, key=key)

    def ended(self, key: str = "") -> None:
        """The pause under `key` is over: the next one is said at once."""
        self._trouble.ended(key)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with its `extra` fields."""

    # One encoder for every line: `json.dumps` with `default` builds a new one per call.
    _encoder = json.JSONEncoder(default=str)

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
        return self._encoder.encode(entry)


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
    # No line shows the thread or process a record came from: not collecting them spares every record the look-ups.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    rq_worker = logging.getLogger("rq.worker")  # RQ sets this logger's level itself as a worker starts
    rq_worker.filters[:] = [f for f in rq_worker.filters if not isinstance(f, RoutineJobLinesFilter)]
    if level > logging.DEBUG:
        rq_worker.addFilter(RoutineJobLinesFilter())
