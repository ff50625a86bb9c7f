"""Free text from careCycle and the Graph API, kept without the values it may quote.

Their messages reach logs, a lead's `error`, its events and the pause reasons that the status API and the
dashboard show. They may quote what they were sent: `Redactor` takes out every value an upload sent (and
its key), and, for text about anything else, the shapes personal data takes: the value after zod's
"received" (an enum's wrong value), e-mail addresses, and numbers of four digits or more, spaced or not
(phones, dates, ZIPs, Medicare ids).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

REDACTED = "…"
_RECEIVED_VALUE = re.compile(r"""(received:?\s*)('[^']*'|"[^"]*")""", re.IGNORECASE)
_EMAIL = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")
# Digits with the separators a phone or a date is written with: "(312) 555-0177", "03/04/1951".
_NUMBER = re.compile(r"\+?\(?\d[\d\s().\-/]*\d\)?")
_WORD = re.compile(r"\S+")
_SHORTEST_VALUE_CHARS = 3  # shorter values (a state code, "no") are words any message may hold...
# ...but every word of a name, an address or an e-mail's mailbox is personal on its own, and is taken out
# wherever it stands as a word ("Marmalade Lane" of an address, "zeb" of zeb.quix@..., a name "Al"): a lead
# named "To" costs the reasons of its batch that word ("unable … parse"), the price of never showing a name.
_SHORTEST_WORD_CHARS = 2
_WORDY_FIELDS = ("firstName", "lastName", "address", "email")
_WORD_OF_A_VALUE = re.compile(r"[^\W_]+")


class Redactor:
    """Takes out of text the values it was given (matched in any case) and the shapes of personal data."""

    def __init__(self, values: Iterable[str] = (), words: Iterable[str] = ()) -> None:
        self._values = values
        self._given_words = words
        self._pattern: re.Pattern[str] | None = None
        self._words: frozenset[str] = frozenset()
        self._compiled = False

    @classmethod
    def of_records(cls, records: Iterable[Mapping[str, Any]], secrets: Iterable[str] = ()) -> Redactor:
        """A redactor of every text value in `records` (custom fields included, not their keys: the relay's and
        the forms' names for them), of each word of their names, addresses and e-mail mailboxes, and of `secrets`."""
        records = list(records)
        words = (
            word
            for record in records
            for name in _WORDY_FIELDS
            if isinstance(record.get(name), str)
            for word in _WORD_OF_A_VALUE.findall(record[name].partition("@")[0] if name == "email" else record[name])
        )
        # Generators: read only on the first redaction, which most uploads never need.
        return cls(itertools.chain(secrets, (value for record in records for value in _texts(record))), words)

    def __call__(self, text: str, limit: int) -> str:
        """`text` without the values and shapes, cut to `limit` characters."""
        pattern = self._compile()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        if self._words:  # one scan of the text's words, each looked up: no pattern of thousands of alternatives
            text = _WORD_OF_A_VALUE.sub(self._word_or_redacted, text)
        text = _RECEIVED_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
        text = _EMAIL.sub(REDACTED, text)
        text = _NUMBER.sub(lambda m: REDACTED if _digits(m.group(0)) >= 4 else m.group(0), text)
        text = _WORD.sub(lambda m: REDACTED if _digits(m.group(0)) >= 4 else m.group(0), text)
        return text[:limit]

    def _word_or_redacted(self, match: re.Match[str]) -> str:
        return REDACTED if match.group(0).casefold() in self._words else match.group(0)

    def _compile(self) -> re.Pattern[str] | None:
        """Built on first use only: most uploads end without any text to redact."""
        if not self._compiled:
            values = sorted({v for v in self._values if len(v.strip()) >= _SHORTEST_VALUE_CHARS}, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, values)), re.IGNORECASE) if values else None
            # A house number is no word to take out: numbers go by the digits rule below (four or more).
            self._words = frozenset(
                word.casefold()
                for word in self._given_words
                if len(word) >= _SHORTEST_WORD_CHARS and not word.isdigit()
            )
            self._compiled = True
        return self._pattern


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _texts(value: Any) -> Iterator[str]:
    """Every string held in a record: field values, custom field values (not their keys), list items."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "fieldKey":
                yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
