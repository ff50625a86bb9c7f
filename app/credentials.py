"""The relay's secrets as the environment gives them: the named source keys and ops tokens (each long enough to
withstand guessing), and careCycle's API key; `ValueError`s that name a pair by its place, never a secret."""

from __future__ import annotations

import re
from collections.abc import Collection

from app.schemas.sources import SLUG_EXPECTED, SLUG_PATTERN

# careCycle's keys (`cc_...`) are visible ASCII. Anything else is a paste gone wrong (typographic quotes, a comment),
# and a character outside Latin-1 cannot even be written into the x-api-key header: every upload would fail.
# The relay's own secrets (source keys, ops tokens) are presented in headers too.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")

# The relay's own secrets (ops tokens, source keys, Google keys) are presented on public endpoints that do not limit
# how often a wrong one may be tried: only their length keeps them from being guessed.
MIN_SECRET_CHARS = 16


class NamedSecretsError(ValueError):
    """A list of named secrets the relay cannot use; `problems` lists every reason, each naming pairs by place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_ops_tokens(raw: str) -> dict[str, str]:
    """`name=token,...` -> {token: name}, as `_read_named_secrets` reads them, each name a slug.

    The name is the actor the audit trail shows: a slug holds no space, control character or ":", so that
    no name passes for the CLI's own actors (`cli:<user>`).
    """
    pairs, problems = _read_named_secrets(raw)
    return _secrets_by_name(pairs, problems + _names_not_slugs([name for name, _ in pairs], "pair"))


def written_secrets(raw: str) -> frozenset[str]:
    """The secrets of the name=secret pairs of `raw`, problems or not: what a check of other settings compares them
    with while `raw`'s own problems are listed beside it (a source key reused as an ops token, say)."""
    pairs, _ = _read_named_secrets(raw)
    return frozenset(secret for _, secret in pairs if secret)


def ops_token_reuse_problems(raw_source_keys: str, ops_tokens: Collection[str]) -> list[str]:
    """The line for the pairs of `raw_source_keys` whose key is also one of `ops_tokens`, by place, as the sources'
    own check cannot tell while the keys have problems of their own (the settings then hold none of them)."""
    pairs, _ = _read_named_secrets(raw_source_keys)
    reused = [place for place, (_, secret) in enumerate(pairs, start=1) if secret and secret in ops_tokens]
    return [f"expected no source key that is also an ops token, got one in {_places(reused)}"] if reused else []


def parse_source_keys(raw: str) -> dict[str, str]:
    """`name=key,...` -> {key: source slug}, as `_read_named_secrets` reads them, each name a slug
    (`source_name_problems`)."""
    pairs, problems = _read_named_secrets(raw)
    slugs = list(dict.fromkeys(name for name, _ in pairs if name))  # each source once, as it is first named
    return _secrets_by_name(pairs, problems + source_name_problems(slugs))


def source_name_problems(slugs: list[str]) -> list[str]:
    """A line for each source LEADRELAY_SOURCE_KEYS names (`slugs`, each once) whose name is no slug: as the sources
    file's tables, it is a metrics label, a status filter, a path segment."""
    return _names_not_slugs(slugs, "source")


def _names_not_slugs(names: list[str], what: str) -> list[str]:
    """A `the name of <what> <place> of <count> is not a slug` line for each of `names` that is none (a blank one, of
    a pair that is none, aside). By place, not by name: a pair written the wrong way round (secret=name) would show
    its secret."""
    return [
        f"the name of {what} {place} of {len(names)} is not a slug: expected {SLUG_EXPECTED}"
        for place, name in enumerate(names, start=1)
        if name and not SLUG_PATTERN.match(name)
    ]


def _read_named_secrets(raw: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (name, secret) pairs of `name=secret,name2=secret2` in their places (both empty for a pair that is
    none), and every problem of the pairs themselves: not a name=secret pair, a secret no header carries, one
    secret under two names, a secret too short.

    A name may hold several secrets (a new one beside the old while clients move over); a secret under two
    names is refused, as it would make one name's requests pass for the other's.
    """
    items = [item.strip() for item in raw.split(",") if item.strip()]
    pairs: list[tuple[str, str]] = []
    malformed: list[int] = []
    unsendable: list[int] = []  # places of secrets a request header cannot carry
    for place, item in enumerate(items, start=1):
        name, sep, secret = (part.strip() for part in item.partition("="))
        if not sep or not name or not secret:
            malformed.append(place)
            name = secret = ""
        elif not _VISIBLE_ASCII.fullmatch(secret):
            # A request header reaches the app as Latin-1 text of its bytes: such a secret would never match.
            unsendable.append(place)
        pairs.append((name, secret))
    problems: list[str] = []
    if malformed:
        problems.append(f"expected comma-separated name=secret pairs, got something else as {_places(malformed)}")
    if unsendable:
        # Named by place: a pair written the wrong way round would show its secret as the name.
        problems.append(
            "expected each secret in visible ASCII characters (a request header carries no other), got another "
            f"character in the {'secret' if len(unsendable) == 1 else 'secrets'} of {_places(unsendable)}"
        )
    return pairs, problems + _shared_or_short_problems(pairs)


def _shared_or_short_problems(pairs: list[tuple[str, str]]) -> list[str]:
    """A secret under two names, and secrets too short; named by place too: in pairs written the wrong way round
    (secret=name) the names are the secrets."""
    places_by_secret: dict[str, list[tuple[int, str]]] = {}
    for place, (name, secret) in enumerate(pairs, start=1):
        if secret:
            places_by_secret.setdefault(secret, []).append((place, name))
    shared = [
        _places([place for place, _ in named]) for named in places_by_secret.values() if len({n for _, n in named}) > 1
    ]
    problems = [f"expected each secret under one name, got one secret in {'; '.join(shared)}"] if shared else []
    short = [place for place, (_, secret) in enumerate(pairs, start=1) if secret and len(secret) < MIN_SECRET_CHARS]
    if short:
        problems.append(
            f"expected each secret to be a long random one, at least {MIN_SECRET_CHARS} characters, got a shorter"
            f" one in {_places(short)}"
        )
    return problems


def _secrets_by_name(pairs: list[tuple[str, str]], problems: list[str]) -> dict[str, str]:
    """{secret: name} of `pairs`; raises `NamedSecretsError` when there are `problems`."""
    if problems:
        raise NamedSecretsError(problems)
    return {secret: name for name, secret in pairs}


def _places(places: list[int]) -> str:
    """`[2]` -> "pair 2"; `[1, 3, 4]` -> "pairs 1, 3 and 4"."""
    if len(places) == 1:
        return f"pair {places[0]}"
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
