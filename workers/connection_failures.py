"""What broke a connection `requests` could not make, said by its kind: never the library's text, which names
addresses. Shared by the outside services' clients, each naming its service and the setting holding its URL."""

from __future__ import annotations

import socket

import requests
import urllib3

# Searched for in the chain `requests` raises: the first kind met names the failure. `{subject}` is the service as
# its client calls it, `{setting}` the setting holding its URL.
_UNREACHED = "{subject} could not be reached"
_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (
        requests.exceptions.SSLError,
        _UNREACHED + ": the TLS handshake failed (check {setting} and the CA certificates the workers trust)",
    ),
    (requests.exceptions.ProxyError, _UNREACHED + ": the proxy failed"),
    (socket.gaierror, _UNREACHED + ": its host name does not resolve (check {setting})"),
    (ConnectionRefusedError, _UNREACHED + ": the connection was refused"),
    (urllib3.exceptions.ProtocolError, "{subject} closed the connection before answering"),
)


def connection_failure(exc: requests.ConnectionError, subject: str, setting: str) -> str:
    """What an operator is told of a connection to `subject` that failed: its kind, or only that `subject` could
    not be reached."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        cause = pending.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        for kind, said in _FAILURES:
            if isinstance(cause, kind):
                return said.format(subject=subject, setting=setting)
        linked = [*cause.args, getattr(cause, "reason", None), cause.__cause__, cause.__context__]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return _UNREACHED.format(subject=subject)
