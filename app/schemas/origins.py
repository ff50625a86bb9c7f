"""Origins as browsers write them in `Origin`: a landing page's origin in the sources file is read so, or it would
match no browser's post."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import idna
from marshmallow import fields

_DEFAULT_PORTS = {"http": 80, "https": 443}


class WebOrigin(fields.String):
    """A landing page's origin, as a browser writes it in `Origin`: `scheme://host[:port]`, scheme and host
    in lower case (an IDN host in punycode), no default port. Written any other way it would match no
    browser's post, so every post from the page would be refused: it is normalized here, and a value with
    a path, query, fragment or credentials (not an origin at all), or with a wildcard, is refused."""

    default_error_messages = {
        # marshmallow's own refusal of a value that is not text, which gives no input to show
        "invalid": 'expected an origin as text, such as "https://landing.example.com"',
        "not_origin": "expected an origin such as https://landing.example.com (scheme, host and port only: "
        "no path, query or fragment), got {input!r}",
        "wildcard": "expected each landing page's origin in full, such as https://landing.example.com (no "
        "wildcards: list every origin), got {input!r}",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "*" in text:  # a host named so is a valid URL's, but an allowed origin is compared whole
            raise self.make_error("wildcard", input=text[:200])
        origin = browser_origin(text)
        if origin is None:
            raise self.make_error("not_origin", input=text[:200])
        return origin


def _ascii_host(host: str) -> str:
    """A host as browsers send it: a name in UTS #46 punycode (`straße.de` is `xn--strae-oqa.de`, where
    Python's own IDNA 2003 codec would write `strasse.de`), an IP address or ASCII name in lower case."""
    if host.isascii() or ":" in host:
        return host.lower()
    return idna.encode(host, uts46=True).decode("ascii")


def browser_origin(text: str) -> str | None:
    """`text` serialized as browsers serialize an origin, or None when it is no http(s) origin."""
    if any(ch.isspace() for ch in text) or "?" in text or "#" in text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
        host = _ascii_host(parts.hostname or "")
    except (ValueError, UnicodeError):  # a malformed IPv6 host or port; a host IDNA cannot encode
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or parts.path not in ("", "/"):
        return None
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{shown_host}{shown_port}"
