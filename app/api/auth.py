"""Credentials of inbound requests: source API keys and ops tokens, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from flask import Request

from app.errors import UnauthorizedError


def presented_credential(request: Request, header: str = "X-Api-Key") -> str | None:
    """The secret a client presented in `header` or as `Authorization: Bearer <secret>`."""
    value = request.headers.get(header)
    if value:
        return value.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def match_secret(presented: str | None, secrets: Mapping[str, str]) -> str:
    """The name of the secret equal to `presented`, compared in constant time; else 401."""
    if not presented:
        raise UnauthorizedError("credentials required")
    found = None
    for secret, name in secrets.items():
        if hmac.compare_digest(secret.encode(), presented.encode()):
            found = name
    if found is None:
        raise UnauthorizedError("invalid credentials")
    return found
