"""Meta Graph API client: one pooled session, explicit timeouts, every failure turned into a type.

Exceptions, grouped by what retrieval does about them:

    GraphError
    ├── GraphTransientError          retry this lead later with backoff: unreadable answers, codes 1, 368
    │   ├── GraphRateLimitedError    a rate limit reached (codes 4, 17, 32, 341, 613, 80001, 80005, or a
    │   │                            429): also pause retrieval, since every waiting lead's call would count
    │   │                            against the limit and keep it reached; one probe per interval finds its end,
    │   │                            or at the time Graph's usage headers estimate (`workers.graph_usage`)
    │   └── GraphUnavailableError    a 5xx, code 2, or no connection: the service fails, not the lead; also
    │       │                        pause retrieval, so that one probe per interval, not every waiting lead,
    │       │                        calls a Graph API that is down
    │       └── GraphTimeoutError    no connection or answer within the timeouts: the probe waits them out
    ├── GraphConfigurationError      pause retrieval for every lead (they stay `fetching`), probe, resume;
    │   │                            also a 401/403/404 without a Graph error (wrong URL or version), and a
    │   │                            code 100 about `appsecret_proof` (another app's token, a rotated secret)
    │   │                            or a nonexisting field (a version without a field the relay asks for)
    │   ├── GraphTokenError          codes 102, 190: the access token is invalid or expired; or none is set
    │   └── GraphPermissionError     codes 10, 200-299: a permission is missing or was removed
    ├── GraphNotFoundError           code 100: the lead does not exist or is not visible: reject it
    └── GraphRequestError            any other error: unexpected, so retried with backoff until the
                                     lead's maximum age, the message kept on the lead

Graph decides by `error.code`, not by the HTTP status (most errors come as 400). Messages carry the
status, code, subcode, Graph's message and `fbtrace_id`, never the token: it travels in the
`Authorization` header, not in the URL, because every `requests` exception (chained into ours, then
into RQ's failed-job traceback) quotes the URL it was given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from marshmallow import ValidationError

from app.schemas.meta import GraphId
from workers.connection_failures import connection_failure
from workers.graph_usage import read_usage
from workers.redaction import Redactor

logger = logging.getLogger(__name__)

LEAD_FIELDS = (
    "id,created_time,ad_id,adset_id,campaign_id,form_id,is_organic,platform,field_data,custom_disclaimer_responses"
)
PAGE_SIZE = 100
MAX_MESSAGE_CHARS = 300
TRANSIENT_CODES = frozenset({1, 368})
UNAVAILABLE_CODES = frozenset({2})  # "temporary issue due to downtime"
# App, user, Page, custom and business-use-case (Pages, LeadGen) rate limits: reference meta-lead-ads.md §7.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80005})
TOKEN_CODES = frozenset({102, 190})
NOT_FOUND_CODES = frozenset({100})


class GraphError(Exception):
    """A Graph API call did not succeed; `message` is safe to show and store (no token, no lead data)."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class GraphTransientError(GraphError):
    """Server error, throttling, timeout, connection failure or an unreadable answer: retry later."""


class GraphRateLimitedError(GraphTransientError):
    """A rate limit of the app, user, Page or lead retrieval was reached: every call counts against it.
    `regain_after_seconds`: how long until access returns, when Graph's usage headers estimate it."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: int | None = None,
        regain_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, status, code)
        self.regain_after_seconds = regain_after_seconds


class GraphUnavailableError(GraphTransientError):
    """The Graph API itself fails (a 5xx, code 2, no connection): not this lead, but every call alike."""


class GraphTimeoutError(GraphUnavailableError):
    """No connection or no answer within the timeouts: the Graph API (or the way to it) hangs."""


class GraphConfigurationError(GraphError):
    """Every call would fail alike until the configuration is fixed: pause retrieval."""


class GraphTokenError(GraphConfigurationError):
    """The access token is invalid or expired (codes 102, 190)."""


class GraphPermissionError(GraphConfigurationError):
    """The token lacks a permission, or lead access was removed (codes 10, 200-299)."""


class GraphNotFoundError(GraphError):
    """The object does not exist or this token may not see it (code 100)."""


class GraphRequestError(GraphError):
    """Any other Graph error."""


@dataclass(frozen=True)
class GraphLead:
    """A lead as the Graph API returns it: answers in `field_data` as `{name, values: [...]}` items."""

    id: str
    created_time: str | None
    form_id: str | None
    field_data: tuple[Mapping[str, Any], ...]
    ad_id: str | None = None
    adset_id: str | None = None
    campaign_id: str | None = None
    platform: str | None = None
    is_organic: bool | None = None
    custom_disclaimer_responses: tuple[Mapping[str, Any], ...] = ()


class GraphClient:
    """Reads leads from the Graph API with one access token."""

    def __init__(
        self,
        base_url: str,
        version: str,
        access_token: str,
        *,
        app_secret: str = "",
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        session: requests.Session | None = None,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/{version.strip('/')}"
        self._timeout = (connect_timeout, read_timeout)
        self._session = session or requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {access_token}", "User-Agent": "leadrelay"})
        self._has_token = bool(access_token)
        self._proof: dict[str, str] = {}
        if app_secret and access_token:
            # appsecret_proof: required when the app enables "Require App Secret", recommended always.
            proof = hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()
            self._proof = {"appsecret_proof": proof}

    def get_lead(self, leadgen_id: str) -> GraphLead:
        """The lead `leadgen_id`; raises a `GraphError`."""
        return _lead(self._get(f"/{leadgen_id}", {"fields": LEAD_FIELDS}))

    def list_form_leads(self, form_id: str, since: float, until: float | None = None) -> Iterator[GraphLead]:
        """Every lead of a form created after `since` and, when given, up to `until` (epoch seconds; Graph keeps whole
        seconds, so that spans that meet at a time list each lead once), page by page; raises a `GraphError`."""
        filtering = [{"field": "time_created", "operator": "GREATER_THAN", "value": int(since)}]
        if until is not None:  # no LESS_THAN_OR_EQUAL in Graph's operators: before the next whole second
            filtering.append({"field": "time_created", "operator": "LESS_THAN", "value": int(until) + 1})
        params = {"fields": LEAD_FIELDS, "filtering": json.dumps(filtering), "limit": str(PAGE_SIZE)}
        while True:
            body = self._get(f"/{form_id}/leads", params)
            data = body.get("data")
            if not isinstance(data, list):
                raise GraphTransientError("Graph API answered a lead listing without a data list")
            for item in data:
                try:
                    yield _lead(item)
                except GraphTransientError:
                    # One unreadable entry must not hold up every other lead of the form on each backfill.
                    logger.warning("a lead in a Graph listing could not be read and was skipped")
            paging = _object(body.get("paging"))
            after = _object(paging.get("cursors")).get("after")
            if not paging.get("next") or not isinstance(after, str) or not after:
                return
            params = {**params, "after": after}

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        if not self._has_token:
            # Graph would refuse the call (code 104) as an error of no known kind, retried lead by lead until
            # each one's maximum age: a token error pauses retrieval instead, and says what to set.
            raise GraphTokenError("no Graph API access token: FACEBOOK_ACCESS_TOKEN is not set")
        try:
            response = self._session.get(self._base + path, params={**params, **self._proof}, timeout=self._timeout)
        except requests.ConnectTimeout as exc:
            raise GraphTimeoutError("Graph API did not accept the connection in time") from exc
        except requests.ConnectionError as exc:
            raise GraphUnavailableError(connection_failure(exc, "Graph API", "FACEBOOK_GRAPH_URL")) from exc
        except requests.Timeout as exc:
            raise GraphTimeoutError("Graph API did not answer in time") from exc
        except requests.RequestException as exc:
            raise GraphTransientError(f"request to the Graph API failed: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes
            body = None
        return check_response(response.status_code, body, response.headers)


def check_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The body of a successful Graph answer, or the matching `GraphError` raised (a rate limit with what the usage
    `headers` say of it)."""
    error = body.get("error") if isinstance(body, dict) else None
    if 200 <= status < 300 and error is None:
        if not isinstance(body, dict):
            raise GraphTransientError(f"Graph API {status} answered something other than a JSON object", status)
        return body
    failure = _graph_error(status, error) if isinstance(error, dict) else _unexplained_error(status)
    raise _with_usage(failure, headers or {})


def _with_usage(failure: GraphError, headers: Mapping[str, str]) -> GraphError:
    """A rate limit with what Graph's usage headers say (how long until access returns, how much is used) in its
    message and `regain_after_seconds`; any other failure as it is."""
    usage = read_usage(headers) if isinstance(failure, GraphRateLimitedError) else None
    if usage is None:
        return failure
    message = f"{failure.message}; {usage.description}"
    return GraphRateLimitedError(message, failure.status, failure.code, usage.regain_after_seconds)


def _unexplained_error(status: int) -> GraphError:
    """A failure without Graph's error object (a proxy's page, a wrong URL)."""
    message = f"Graph API {status} without a Graph error"
    if status == 429:
        return GraphRateLimitedError(message, status)
    if status >= 500 or status == 408:
        return GraphUnavailableError(message, status)
    if status in (401, 403, 404):
        return GraphConfigurationError(f"{message}: check FACEBOOK_GRAPH_URL and the version", status)
    return GraphRequestError(message, status)


def _graph_error(status: int, error: Mapping[str, Any]) -> GraphError:
    """Graph's error object as the error that says what to do: pause, retry, reject the lead, or refuse."""
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = _describe(status, error)
    if code in TOKEN_CODES:
        return GraphTokenError(message, status, code)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return GraphPermissionError(message, status, code)
    if code in RATE_LIMIT_CODES:
        return GraphRateLimitedError(message, status, code)
    if code in UNAVAILABLE_CODES or status >= 500:
        return GraphUnavailableError(message, status, code)
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return GraphTransientError(message, status, code)
    if code in NOT_FOUND_CODES and "appsecret_proof" in str(error.get("message", "")):
        # Code 100 too, but about the call, not the lead: a token of another app, or a rotated app secret.
        return GraphConfigurationError(f"{message}: check FACEBOOK_APP_SECRET and FACEBOOK_ACCESS_TOKEN", status, code)
    if code in NOT_FOUND_CODES and "nonexisting field" in str(error.get("message", "")):
        # Code 100 again about the call: a field the relay asks for that this Graph version does not have. Every
        # lead would be refused alike, so retrieval pauses rather than reject each one.
        return GraphConfigurationError(f"{message}: check FACEBOOK_GRAPH_VERSION", status, code)
    if code in NOT_FOUND_CODES:
        return GraphNotFoundError(message, status, code)
    return GraphRequestError(message, status, code)


def _describe(status: int, error: Mapping[str, Any]) -> str:
    """Graph's error as a reason for logs and operators: its type, codes and trace id as Meta spells them,
    and its message without the shapes of personal data (`workers.redaction`)."""
    parts = [f"Graph API {status}"]
    if isinstance(error.get("type"), str) and _ERROR_TYPE.fullmatch(error["type"]):
        parts.append(error["type"])
    if isinstance(error.get("code"), int):
        subcode = error.get("error_subcode")
        parts.append(f"code {error['code']}" + (f"/{subcode}" if isinstance(subcode, int) else ""))
    text = " ".join(parts)
    if isinstance(error.get("message"), str) and error["message"]:
        text += f": {Redactor()(error['message'], MAX_MESSAGE_CHARS)}"
    if isinstance(error.get("fbtrace_id"), str) and _TRACE_ID.fullmatch(error["fbtrace_id"]):
        text += f" (fbtrace_id {error['fbtrace_id']})"
    return text


def without_trace_id(reason: str) -> str:
    """A Graph failure's reason without its `fbtrace_id`, which Graph gives each call anew: two failures alike read
    the same."""
    return _TRACE_ID_PART.sub("", reason)


_ERROR_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # OAuthException, GraphMethodException, ...
_TRACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TRACE_ID_PART = re.compile(r" \(fbtrace_id [A-Za-z0-9_-]{1,64}\)")  # as `_describe` writes it
_GRAPH_ID = GraphId(allow_none=True)


def _graph_id(value: Any) -> str | None:
    """A Graph object id (digits, sent as a string or a number), as the webhook reads them; None otherwise."""
    try:
        return _GRAPH_ID.deserialize(value)
    except ValidationError:
        return None


def _lead(item: Any) -> GraphLead:
    """A lead as Graph answers it; its ids are kept only as Graph ids (digits), as they are stored and logged."""
    lead_id = _graph_id(item.get("id")) if isinstance(item, dict) else None
    if lead_id is None:
        raise GraphTransientError("Graph API answered a lead without a numeric id")
    answers = item.get("field_data")
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        raise GraphTransientError("Graph API answered a lead without field_data")
    disclaimers = item.get("custom_disclaimer_responses")
    return GraphLead(
        id=lead_id,
        created_time=_text(item.get("created_time")),
        form_id=_graph_id(item.get("form_id")),
        field_data=tuple(answers),
        ad_id=_graph_id(item.get("ad_id")),
        adset_id=_graph_id(item.get("adset_id")),
        campaign_id=_graph_id(item.get("campaign_id")),
        platform=_text(item.get("platform")),
        is_organic=item["is_organic"] if isinstance(item.get("is_organic"), bool) else None,
        custom_disclaimer_responses=tuple(d for d in disclaimers if isinstance(d, dict))
        if isinstance(disclaimers, list)
        else (),
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    return str(value)
