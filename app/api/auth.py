"""Credentials of inbound requests: source API keys and ops tokens, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Request

from app.errors import UnauthorizedError, WrongCredentialError


def presented_credential(request: Request, header: str = "X-Api-Key") -> str | None:
    """The secret a client presented in `header` or as `Authorization: Bearer <secret>`."""
    value = request.headers.get(header)
    if value:
        return value.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


@dataclass(frozen=True)
class ExpectedCredential:
    """What a refusal names for one kind of secret: the header to fix and what it expects (never the value sent),
    and the kind, as the log says it."""

    header: str
    expected: str
    kind: str


SOURCE_KEY_EXPECTED = ExpectedCredential(
    "X-Api-Key", "expected a source's API key here, or as Authorization: Bearer <key>", "source API key"
)
OPS_TOKEN_EXPECTED = ExpectedCredential(
    "Authorization", "expected Bearer <ops token>, or the ops token as X-Ops-Token", "ops token"
)


def match_secret(presented: str | None, secrets: Mapping[str, str], expected: ExpectedCredential) -> str:
    """The name of the secret equal to `presented`, compared in constant time; else 401 naming `expected`
    (the header, and what it should hold): `WrongCredentialError` for a secret that is none of them."""
    fields = {expected.header: [expected.expected]}
    if not presented:
        raise UnauthorizedError("credentials required", fields)
    found = None
    for secret, name in secrets.items():
        if hmac.compare_digest(secret.encode(), presented.encode()):
            found = name
    if found is None:
        raise WrongCredentialError(expected.kind, fields)
    return found
