"""careCycle upload client: one pooled session, explicit timeouts, the whole answer read by a deadline."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests
import urllib3

from workers.carecycle.answers import UploadResult, classify_response, header_wait
from workers.carecycle.errors import (
    CareCycleAmbiguousError,
    CareCycleConnectionError,
    CareCycleError,
    CareCycleTransientError,
    CareCycleUnreadableError,
)
from workers.connection_failures import connection_failure
from workers.redaction import Redactor

UPLOAD_PATH = "/v2/leads/upload"
# How long past its deadline an upload waits for its request to report the deadline itself.
DEADLINE_GRACE_SECONDS = 0.5
# An answer to 200 records, each echoed in full, is well under a megabyte; anything far larger is not careCycle's.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class CareCycleClient:
    """Uploads batches of records to careCycle."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + UPLOAD_PATH
        self._timeout = (connect_timeout, read_timeout)
        self._key = api_key
        self._session = self._signed(session or requests.Session())

    def upload(self, records: Sequence[Mapping[str, Any]]) -> UploadResult:
        """Send 1..200 records; returns the processed result or raises a `CareCycleError`, nothing else.

        The whole answer must arrive within the connect and read timeouts together (not only each read), so
        an answer trickling in cannot keep a live worker's batch in flight past its visibility deadline. The
        HTTP library bounds each read of the answer's headers but not their sum, so the request runs on a
        thread of its own, waited for until that deadline; one given up on ends on its own, on its session,
        and the next upload opens a new one.
        """
        deadline = time.monotonic() + sum(self._timeout)
        outcome: queue.SimpleQueue[UploadResult | CareCycleError] = queue.SimpleQueue()
        session = self._session

        def exchange() -> None:
            try:
                outcome.put(self._exchange(session, records, deadline))
            except CareCycleError as exc:
                outcome.put(exc)

        thread = threading.Thread(target=exchange, name="carecycle-upload", daemon=True)
        thread.start()
        try:
            result = outcome.get(timeout=max(0.0, deadline - time.monotonic()) + DEADLINE_GRACE_SECONDS)
        except queue.Empty:
            self._session = self._signed(requests.Session())
            raise CareCycleAmbiguousError("careCycle did not answer in time") from None
        if isinstance(result, CareCycleError):
            raise result
        return result

    def _exchange(
        self, session: requests.Session, records: Sequence[Mapping[str, Any]], deadline: float
    ) -> UploadResult:
        """One request and its answer (on the upload's thread); raises a `CareCycleError`, nothing else."""
        try:
            response = session.post(
                self._url, json={"records": list(records)}, timeout=self._timeout, stream=True, allow_redirects=False
            )
        except requests.ConnectTimeout as exc:
            raise CareCycleConnectionError("careCycle did not accept the connection in time") from exc
        except requests.ConnectionError as exc:
            raise CareCycleConnectionError(connection_failure(exc, "careCycle", "CARECYCLE_BASE_URL")) from exc
        except requests.Timeout as exc:
            raise CareCycleAmbiguousError("careCycle did not answer in time") from exc
        except requests.RequestException as exc:
            raise CareCycleTransientError(f"request to careCycle failed: {type(exc).__name__}") from exc
        with response:
            body = _read_answer(response, deadline)
        try:
            redact = Redactor.of_records(records, [self._key])  # what careCycle's words may quote of the upload
            answer = _json_object(response.status_code, body)
            wait = header_wait(response.headers.get("Retry-After"), response.headers.get("Date"), time.time())
            return classify_response(response.status_code, answer, redact, wait)
        except CareCycleError:
            raise
        except Exception as exc:  # an answer no rule covers must still settle the batch, as an ambiguous one
            raise CareCycleUnreadableError(
                f"careCycle {response.status_code}: the answer could not be read ({type(exc).__name__})",
                response.status_code,
            ) from exc

    def _signed(self, session: requests.Session) -> requests.Session:
        """`session`, sending the key and the relay's name with every request."""
        session.headers.update({"x-api-key": self._key, "User-Agent": "leadrelay"})
        return session

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()


def _read_answer(response: requests.Response, deadline: float) -> bytes:
    """The answer's body, read by chunks against the overall deadline and the size cap."""
    status, chunks, size = response.status_code, [], 0
    try:
        # read1 returns as soon as some bytes arrived (iter_content would wait for a whole chunk), so the
        # deadline is checked at least once per read timeout however slowly the answer trickles in.
        while chunk := response.raw.read1(_CHUNK_BYTES, decode_content=True):  # gzip/deflate undone as read
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise CareCycleUnreadableError(f"careCycle {status}: answer over {MAX_ANSWER_BYTES} bytes", status)
            if time.monotonic() > deadline:
                raise CareCycleAmbiguousError(f"careCycle {status}: the answer did not arrive in time", status)
            chunks.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise CareCycleUnreadableError(f"careCycle {status}: answer broke off ({type(exc).__name__})", status) from exc
    return b"".join(chunks)


def _json_object(status: int, body: bytes) -> dict[str, Any]:
    """The answer as a JSON object; {} for anything else (empty, HTML, an array, nested past parsing).

    A 2xx body that opens as a JSON object but does not parse (cut short, most likely) may have been careCycle's
    account of the batch: `CareCycleUnreadableError`, retried as an ambiguous answer, not taken for some other
    server's page. Other statuses are read by their status when their body cannot be.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        if 200 <= status < 300 and body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            unreadable = f"careCycle {status}: the answer's JSON could not be read (cut short?)"
            raise CareCycleUnreadableError(unreadable, status) from None
        return {}
    return parsed if isinstance(parsed, dict) else {}
