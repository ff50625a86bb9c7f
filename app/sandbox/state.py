"""The sandbox's state: API keys, per-key rate windows, faults, and how one upload is answered."""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from app.sandbox.faults import (
    DEFAULT_RATE_LIMIT_PER_MIN,
    PHONE_FAULTS,
    REJECTED_PHONE_MESSAGE,
    Faults,
    ScriptedFailure,
    error_body,
    normalize_phone,
)
from app.sandbox.log import MAX_HELD_RECORDS, RATE_WINDOW_SECONDS, ReceivedRequest, RequestLog
from app.schemas.carecycle import validation_issues

# Customers (externalId or phone -> customer id) remembered at most, the least recently uploaded let go first
# (about 100 MB): a sandbox serving a relay for days must not keep one for every lead it was ever sent.
MAX_CUSTOMERS = 500_000


@dataclass(frozen=True)
class UploadAnswer:
    """What the sandbox answers to one upload: status, JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Upload:
    """A parsed upload body: `malformed` when not a JSON object; `issues` as careCycle's 422 lists them."""

    malformed: bool
    issues: list[dict[str, Any]]
    records: tuple[dict[str, Any], ...]
    record_count: int

    MALFORMED: ClassVar[_Upload]

    @classmethod
    def parse(cls, raw_body: bytes) -> _Upload:
        try:
            body = json.loads(raw_body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # bad UTF-8 or JSON; or nested too deep to parse
            return cls.MALFORMED
        if not isinstance(body, dict):
            return cls.MALFORMED
        # Validated here, outside the sandbox's lock, so concurrent uploads validate in parallel.
        issues = validation_issues(body)
        raw_records = body.get("records")
        if not isinstance(raw_records, list):
            return cls(False, issues, (), 0)
        records = tuple(record for record in raw_records if isinstance(record, dict))
        return cls(False, issues, records, len(raw_records))


_Upload.MALFORMED = _Upload(True, [], (), 0)


class Sandbox:
    """careCycle's upload endpoint in miniature: same contract, a per-key rate limit, and faults.

    `clock` (default `time.monotonic`) times the rate window and the log, so tests can fake it. The log holds
    the latest `max_held_records` records received (its totals count every request).
    Every public method is thread-safe.
    """

    def __init__(
        self,
        api_keys: Iterable[str],
        *,
        rate_limit_per_min: int = DEFAULT_RATE_LIMIT_PER_MIN,
        reject_phones: Iterable[str] = (),
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_held_records: int = MAX_HELD_RECORDS,
    ) -> None:
        self._lock = threading.Lock()
        self._api_keys = _string_set(api_keys, "api_keys")
        self._seed = seed
        self._clock = clock
        self._wall_clock = wall_clock
        self._initial_faults = Faults(
            rate_limit_per_min=rate_limit_per_min, reject_phones=_string_set(reject_phones, "reject_phones")
        )
        self._faults = self._initial_faults
        self._random = random.Random(seed)
        self._scripted: deque[ScriptedFailure] = deque()
        self._windows: dict[str, deque[float]] = {}
        self._customer_ids: OrderedDict[str, str] = OrderedDict()
        self._stalls_released = threading.Event()
        self.log = RequestLog(max_held_records)

    # -- faults ---------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The current fault switches (an immutable snapshot)."""
        with self._lock:
            return self._faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change any of `Faults`' fields (error_rate, timeout_rate, stall_seconds, auth_mode, down,
        rate_limit_per_min, reject_phones, invalid_phones, choke_phones); raises ValueError/TypeError on a bad value
        or name."""
        for name in PHONE_FAULTS:
            if name in changes:
                changes[name] = _string_set(changes[name], name)
        with self._lock:
            self._faults = self._faults.replace(**changes)
            return self._faults

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` uploads with `status`, before any other check."""
        failure = ScriptedFailure(status, retry_after)
        with self._lock:
            self._scripted.extend([failure] * times)

    @property
    def scripted(self) -> list[ScriptedFailure]:
        """The scripted failures not yet consumed, in order."""
        with self._lock:
            return list(self._scripted)

    def reset(self) -> None:
        """Forget requests, windows, scripted failures and customers; faults back to construction."""
        with self._lock:
            self._faults = self._initial_faults
            self._random = random.Random(self._seed)
            self._scripted.clear()
            self._windows.clear()
            self._customer_ids.clear()
            self.log.reset()

    # -- stalls ---------------------------------------------------------------------------------

    def release_stalls(self) -> None:
        """End every stall now and make new ones return at once (the server calls this on stop)."""
        self._stalls_released.set()

    def hold_stalls(self) -> None:
        """Make stalls wait their full `stall_seconds` again (the server calls this on start)."""
        self._stalls_released.clear()

    # -- the upload endpoint --------------------------------------------------------------------

    def handle_upload(self, api_key: str | None, raw_body: bytes, *, declared_json: bool = True) -> UploadAnswer:
        """Answer one `POST /v2/leads/upload`, record it, and stall first if a timeout is rolled.

        `declared_json` is whether the request's Content-Type names JSON: careCycle's contract asks for
        `application/json`, so a body declared as anything else is malformed (400) whatever it holds.
        """
        # Arrival is stamped before parsing, so validation time does not blur the rate window.
        now = self._clock()
        upload = _Upload.parse(raw_body) if declared_json else _Upload.MALFORMED
        with self._lock:
            answer, record_succeeded = self._decide(api_key, upload, now)
            stall_seconds = self._roll_stall(answer)
            if answer.status != 429 and api_key in self._api_keys:
                self._windows.setdefault(api_key, deque()).append(now)
            self.log.append(
                ReceivedRequest(
                    monotonic=now,
                    wall_time=self._wall_clock(),
                    key_suffix=(api_key or "")[-4:],
                    status=answer.status,
                    record_count=upload.record_count,
                    external_ids=tuple(record.get("externalId") for record in upload.records),
                    records=upload.records,
                    record_succeeded=record_succeeded,
                    stalled=stall_seconds > 0,
                )
            )
        if stall_seconds > 0:
            # Recorded first: careCycle got the request, only the client gives up waiting.
            self._stalls_released.wait(stall_seconds)
        return answer

    def _decide(self, api_key: str | None, upload: _Upload, now: float) -> tuple[UploadAnswer, tuple[bool, ...]]:
        faults = self._faults
        if self._scripted:
            failure = self._scripted.popleft()
            return _error(failure.status, failure.retry_after), ()
        if faults.down:
            return _error(503), ()
        if faults.auth_mode is not None:
            return _error(faults.auth_mode), ()
        if api_key is None or api_key not in self._api_keys:
            return _error(401), ()
        retry_after = self._retry_after(api_key, now, faults.rate_limit_per_min)
        if retry_after is not None:
            return _error(429, retry_after), ()
        if faults.error_rate > 0 and self._random.random() < faults.error_rate:
            return _error(500), ()
        if upload.malformed:
            return _error(400), ()
        if any(normalize_phone(str(record.get("phoneNumber", ""))) in faults.choke_phones for record in upload.records):
            return _error(500), ()  # a record careCycle's server fails on, in whatever batch it comes
        issues = upload.issues or _invalid_phone_issues(upload.records, faults.invalid_phones)
        if issues:
            return UploadAnswer(422, error_body(422, errors=issues)), ()
        return self._accept(upload.records, faults.reject_phones)

    def _retry_after(self, api_key: str, now: float, limit: int) -> int | None:
        """Whole seconds until the key's sliding window has a free slot, or None if it has one."""
        window = self._windows.setdefault(api_key, deque())
        while window and now - window[0] >= RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) < limit:
            return None
        frees_at = window[len(window) - limit] + RATE_WINDOW_SECONDS
        return max(1, math.ceil(frees_at - now))

    def _roll_stall(self, answer: UploadAnswer) -> float:
        faults = self._faults
        if answer.status not in (200, 400, 422) or faults.timeout_rate <= 0:
            return 0.0
        return faults.stall_seconds if self._random.random() < faults.timeout_rate else 0.0

    def _accept(
        self, records: tuple[dict[str, Any], ...], reject_phones: frozenset[str]
    ) -> tuple[UploadAnswer, tuple[bool, ...]]:
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        outcomes: list[bool] = []
        for record in records:
            phone = record["phoneNumber"]
            customer_id = self._customer_id(record.get("externalId") or normalize_phone(phone))
            rejected = normalize_phone(phone) in reject_phones
            outcomes.append(not rejected)
            if rejected:
                errors.append(
                    {"id": customer_id, "externalId": record.get("externalId"), "error": REJECTED_PHONE_MESSAGE}
                )
            else:
                results.append({"id": customer_id, "externalId": record.get("externalId"), "phoneNumber": phone})
        body = {"succeeded": len(results), "failed": len(errors), "errors": errors, "results": results}
        return UploadAnswer(200, body), tuple(outcomes)

    def _customer_id(self, identity: str) -> str:
        # Upload is an upsert: the same externalId (or phone) keeps its customer id, while remembered.
        customer_id = self._customer_ids.pop(identity, None) or str(uuid.uuid4())
        self._customer_ids[identity] = customer_id
        if len(self._customer_ids) > MAX_CUSTOMERS:
            self._customer_ids.popitem(last=False)
        return customer_id

    # -- what was received ----------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The upload requests held (the latest; see `max_held_records`), in arrival order."""
        return self.log.requests

    def delivered_external_ids(self) -> Counter[str]:
        """How often each externalId was accepted in a 200-answered request."""
        return self.log.delivered_external_ids()

    def max_requests_in_any_window(self, seconds: float = RATE_WINDOW_SECONDS) -> int:
        """The most accepted (non-429) requests within any `seconds` span."""
        return self.log.max_requests_in_any_window(seconds)

    def stats(self) -> dict[str, Any]:
        """Totals for the control endpoint, with the current faults."""
        return {**self.log.stats(), "faults": self.faults.as_dict(), "scripted": len(self.scripted)}


def _refuse_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity, which Python's json reads but JSON (and careCycle's parser) does not."""
    raise ValueError(f"{name} is not JSON")


def _string_set(values: Iterable[str], name: str) -> frozenset[str]:
    # A lone string is iterable too: frozenset("5550000000") would be a set of digits.
    if isinstance(values, str):
        raise ValueError(f"{name} must be a collection of strings, not one string")
    return frozenset(values)


def _invalid_phone_issues(records: tuple[dict[str, Any], ...], invalid_phones: frozenset[str]) -> list[dict[str, Any]]:
    """careCycle-style 422 issues for records whose number the `invalid_phones` fault names."""
    return [
        {
            "path": ["records", index, "phoneNumber"],
            "message": "Invalid phone number format",
            "expected": "a dialable phone number",
            "received": "string",
            "code": "invalid_string",
        }
        for index, record in enumerate(records)
        if normalize_phone(str(record.get("phoneNumber", ""))) in invalid_phones
    ]


def _error(status: int, retry_after: int | None = None) -> UploadAnswer:
    body = error_body(status, retry_after=retry_after)
    headers = {"Retry-After": str(body["retryAfter"])} if status == 429 else {}
    return UploadAnswer(status, body, headers)
