"""The relay's secrets as the environment gives them: the named source keys and ops tokens (each long enough to
withstand guessing), and careCycle's API key; `ValueError`s that name a pair by its place, never a secret."""

from __future__ import annotations

import re

# careCycle's keys (`cc_...`) are visible ASCII. Anything else is a paste gone wrong (typographic quotes, a comment),
# and a character outside Latin-1 cannot even be written into the x-api-key header: every upload would fail.
# The relay's own secrets (source keys, ops tokens) are presented in headers too.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")

# The relay's own secrets (ops tokens, source keys, Google keys) are presented on public endpoints that do not limit
# how often a wrong one may be tried: only their length keeps them from being guessed.
MIN_SECRET_CHARS = 16


def parse_named_secrets(raw: str) -> dict[str, str]:
    """`name=secret,name2=secret2` -> {secret: name}; the name is what logs and audits may show.

    A name may hold several secrets (a new one beside the old while clients move over); a secret under
    two names is refused, as it would make one name's requests pass for the other's.
    """
    pairs_by_secret: dict[str, list[tuple[int, str]]] = {}  # each secret's (place, name) pairs
    short: list[int] = []  # places of secrets too short to withstand guessing
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for place, item in enumerate(items, start=1):
        name, sep, secret = (part.strip() for part in item.partition("="))
        if not sep or not name or not secret:
            raise ValueError("expected comma-separated name=secret pairs")
        if not _VISIBLE_ASCII.fullmatch(secret):
            # A request header reaches the app as Latin-1 text of its bytes: such a secret would never match.
            # Named by place: a pair written the wrong way round would show its secret as the name.
            raise ValueError(
                "expected each secret in visible ASCII characters (a request header carries no other), got "
                f"another character in the secret of pair {place}"
            )
        pairs_by_secret.setdefault(secret, []).append((place, name))
        if len(secret) < MIN_SECRET_CHARS:
            short.append(place)
    # Named by place too: in pairs written the wrong way round (secret=name) the names are the secrets.
    shared = [
        _pairs([place for place, _ in pairs])
        for pairs in pairs_by_secret.values()
        if len({name for _, name in pairs}) > 1
    ]
    if shared:
        raise ValueError(f"expected each secret under one name, got one secret in {'; '.join(shared)}")
    if short:  # after the names: pairs written the wrong way round (secret=name) are better told as such
        where = _pairs(short) if len(short) > 1 else f"pair {short[0]}"
        raise ValueError(
            f"expected each secret to be a long random one, at least {MIN_SECRET_CHARS} characters, got a shorter"
            f" one in {where}"
        )
    return {secret: pairs[0][1] for secret, pairs in pairs_by_secret.items()}


def _pairs(places: list[int]) -> str:
    """`[1, 3, 4]` -> "pairs 1, 3 and 4"."""
    shown = [str(place) for place in places]
    return f"pairs {', '.join(shown[:-1])} and {shown[-1]}"


def parse_api_key(raw: str) -> str:
    """A careCycle API key; raises `ValueError` (never quoting the key) for characters no key has."""
    if not _VISIBLE_ASCII.fullmatch(raw):
        position = next(index for index, char in enumerate(raw, start=1) if not _VISIBLE_ASCII.fullmatch(char))
        raise ValueError(
            f"expected the key's visible ASCII characters only (careCycle keys start with cc_), got another "
            f"character at position {position}"
        )
    return raw
