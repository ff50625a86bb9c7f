"""The ZIP dataset reduced to what lookups use: each ZIP's state, city and time zone, in a few flat arrays.

`zipcodes` answers with a dict per entry holding fourteen fields and three lists; its `list_all()` keeps all
42,789 of them for the life of the process (about 100 MB and 170,000 objects the garbage collector walks), and
each of its `matching` calls scans the whole dataset (about 0.5 ms). `ZipTable` keeps the ZIPs as sorted
integers beside, for each, an index into one string of the distinct names (62 states, some 19,000 cities,
40 zone values): about 1 MB, and nothing the garbage collector tracks. (Once queried, the library itself keeps
its compiled-in dataset unpacked, about 37 MB, which no public call releases.)
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import zipcodes

# zipcodes' Python layer is not annotated; this names the one function we use with the type it has.
_zips_starting_with: Callable[[str], list[dict[str, Any]]] = zipcodes.similar_to
# Every ZIP starts with one of these; read a prefix at a time, the library's dicts for one tenth of the
# dataset exist at once, not for all of it, so the allocator is not left holding the peak.
_ZIP_FIRST_DIGITS = "0123456789"


class ZipEntry(NamedTuple):
    """A ZIP's fields as the dataset spells them: the time zone may be empty or not an IANA name."""

    state: str
    city: str
    timezone: str


class ZipTable:
    """The 5-digit ZIPs of a dataset, searchable by ZIP; built once, never changed."""

    def __init__(self, entries: Iterable[tuple[str, ZipEntry]]) -> None:
        """Index (zip5, entry) pairs; a ZIP given twice keeps its last entry, as a dict built from them would."""
        by_zip = {int(zip5): entry for zip5, entry in entries if _is_zip5(zip5)}
        names: dict[str, int] = {}
        self._zips = array("I", sorted(by_zip))
        self._states, self._cities, self._zones = array("I"), array("I"), array("I")
        for zip_number in self._zips:
            state, city, timezone = by_zip[zip_number]
            self._states.append(names.setdefault(state, len(names)))
            self._cities.append(names.setdefault(city, len(names)))
            self._zones.append(names.setdefault(timezone, len(names)))
        # One string of every name, cut at the offsets on lookup: the library's strings each sit in memory among
        # its freed dicts, and keeping some 19,000 of them would keep most of that memory from being reused.
        self._text = "".join(names)
        self._offsets = array("I", [0])
        for name in names:
            self._offsets.append(self._offsets[-1] + len(name))

    def __len__(self) -> int:
        return len(self._zips)

    def get(self, zip5: str) -> ZipEntry | None:
        """The entry of a 5-digit ZIP, or None when the dataset has no such ZIP."""
        if not _is_zip5(zip5):
            return None
        zip_number = int(zip5)
        at = bisect.bisect_left(self._zips, zip_number)
        if at == len(self._zips) or self._zips[at] != zip_number:
            return None
        return ZipEntry(self._name(self._states[at]), self._name(self._cities[at]), self._name(self._zones[at]))

    def timezones(self) -> frozenset[str]:
        """Every time-zone value of the dataset, as spelled there (the empty one included)."""
        return frozenset(self._name(index) for index in set(self._zones))

    def _name(self, index: int) -> str:
        return self._text[self._offsets[index] : self._offsets[index + 1]]


def load_zip_table() -> ZipTable:
    """Build the table from the `zipcodes` dataset, leaving none of the library's entries alive (about 1 s)."""
    return ZipTable(_dataset_entries())


def _is_zip5(text: str) -> bool:
    return len(text) == 5 and text.isascii() and text.isdigit()


def _dataset_entries() -> Iterator[tuple[str, ZipEntry]]:
    for digit in _ZIP_FIRST_DIGITS:
        for entry in _zips_starting_with(digit):
            timezone = entry.get("timezone") or ""
            yield str(entry["zip_code"]), ZipEntry(str(entry["state"]), str(entry["city"]), str(timezone))
