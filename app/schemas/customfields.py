"""A lead's careCycle `customFields`: the source's static ones merged with the submission's, within limits."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.models import CustomFieldWarning
from app.schemas.carecycle import MAX_CUSTOM_FIELD_KEY_CHARS, MAX_CUSTOM_FIELDS
from app.schemas.contractfields import contract_length, cut_to_contract_length
from app.schemas.fields import clean_free_text, clean_text

# careCycle documents no limit for a custom value; 255 keeps free-text answers useful and bounded,
# and no click ID (gclid, fbclid, ...) comes near it.
MAX_CUSTOM_VALUE_CHARS = 255
# careCycle reads a JSON number as a double, which holds every integer up to 2**53 exactly; a longer one
# would arrive with other digits (or as infinity), so it travels as its digits, as text.
MAX_EXACT_INTEGER = 2**53 - 1
_BAD_CUSTOM_VALUE = "expected a string, number, boolean or list of strings"


def build_custom_fields(
    static: Mapping[str, Any],
    inbound: list[tuple[str, Any]],
    warnings: list[str],
    kept: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Merge the source's static custom fields with the submission's into at most 50 careCycle items.

    Static ones win a key clash and come first, so the cap drops inbound ones first: they are the
    operator's attribution, which a public form's hidden input must not override. The items under a
    `kept` key (consent and provenance, which TCPA needs with every lead) are never what the cap drops,
    whichever side they came from; the order stays as it is. Blank inbound values are skipped (nothing to
    tell); static ones are kept exactly as configured. Among inbound ones the first of a key wins. Keys are
    stripped and cut to 100 characters; string values to 255.
    """
    items: dict[str, dict[str, Any]] = {}
    for key, value in static.items():
        _add_custom(items, key, value, warnings, keep_blank=True, protected=frozenset())
    protected = frozenset(items)
    for key, value in inbound:
        _add_custom(items, key, value, warnings, keep_blank=False, protected=protected)
    merged = list(items.values())
    if len(merged) <= MAX_CUSTOM_FIELDS:
        return merged
    dropped = len(merged) - MAX_CUSTOM_FIELDS
    warnings.append(f"customFields: expected at most {MAX_CUSTOM_FIELDS} items; {dropped} dropped")
    by_priority = sorted(range(len(merged)), key=lambda index: (merged[index]["fieldKey"] not in kept, index))
    return [merged[index] for index in sorted(by_priority[:MAX_CUSTOM_FIELDS])]


def listed_custom_fields(listed: Any, warnings: list[str]) -> list[tuple[str, Any]]:
    """Read a submission's own `customFields`: careCycle's [{fieldKey, value}] or a plain {key: value}."""
    if listed is None:
        return []
    if isinstance(listed, Mapping) and "fieldKey" not in listed:
        return [(str(key), value) for key, value in listed.items()]
    if not isinstance(listed, list | Mapping):
        warnings.append("customFields: expected a list of {fieldKey, value} items, or an object of values by key")
        return []
    pairs: list[tuple[str, Any]] = []
    for index, item in enumerate(listed if isinstance(listed, list) else [listed]):
        if isinstance(item, Mapping) and isinstance(item.get("fieldKey"), str):
            pairs.append((item["fieldKey"], item.get("value")))
        else:  # named by its place: an item without a text fieldKey has no name to give
            where = f"customFields[{index}]" if isinstance(listed, list) else "customFields"
            warnings.append(f"{where}: expected an item {{fieldKey: text, value}}; dropped")
    return pairs


def custom_field_key(raw_key: Any) -> str:
    """The key a custom field is stored under: its name cleaned (see `clean_text`) and cut to careCycle's limit."""
    text = str(raw_key)
    if text.isascii() and text.isprintable() and " " not in text:  # most names: cleaning would change nothing
        return text[:MAX_CUSTOM_FIELD_KEY_CHARS]
    return cut_to_contract_length(clean_text(text), MAX_CUSTOM_FIELD_KEY_CHARS)  # an emoji counts 2, never split


def _add_custom(
    items: dict[str, dict[str, Any]],
    raw_key: str,
    raw_value: Any,
    warnings: list[str],
    *,
    keep_blank: bool,
    protected: frozenset[str],
) -> None:
    key = custom_field_key(raw_key)
    # A cut key keeps at least 99 of careCycle's 100 (one fewer when an emoji would have straddled the limit).
    if contract_length(key) >= MAX_CUSTOM_FIELD_KEY_CHARS - 1 and key != clean_text(str(raw_key)):
        expected = f"expected a key of at most {MAX_CUSTOM_FIELD_KEY_CHARS} characters; cut"
        warnings.append(CustomFieldWarning(key, expected))
    try:
        value, cut = _custom_value(raw_value)
    except ValueError as exc:
        warnings.append(CustomFieldWarning(key, str(exc)))
        return
    if value is None and not keep_blank:
        return
    if not key:
        warnings.append(f"customFields: expected a key of 1 to {MAX_CUSTOM_FIELD_KEY_CHARS} characters; dropped")
        return
    if key in protected:
        warnings.append(CustomFieldWarning(key, "expected from the source's configuration, not from the submission"))
        return
    if key in items:
        if items[key]["value"] != value:  # the first inbound value of a key wins
            warnings.append(CustomFieldWarning(key, "expected once: an earlier field has this key; dropped"))
        return
    if cut:
        warnings.append(CustomFieldWarning(key, f"expected at most {MAX_CUSTOM_VALUE_CHARS} characters; cut"))
    items[key] = {"fieldKey": key, "value": value}


def configured_value_problem(value: Any) -> str | None:
    """What is wrong with a value a source's configuration gives a custom field (None: nothing), so a value
    that every lead would drop or cut is refused at start instead."""
    try:
        _, cut = _custom_value(value)
    except ValueError as exc:
        return str(exc)
    return f"expected at most {MAX_CUSTOM_VALUE_CHARS} characters" if cut else None


def _custom_value(value: Any) -> tuple[Any, bool]:
    """Return (a value careCycle accepts, None when blank; whether text was cut), or raise ValueError."""
    if isinstance(value, list | tuple):
        return _custom_list(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INTEGER:
        value = str(value)
    if value is None or isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value, False
    if isinstance(value, str):
        text = clean_free_text(value)
        return text[:MAX_CUSTOM_VALUE_CHARS] or None, len(text) > MAX_CUSTOM_VALUE_CHARS
    raise ValueError(_BAD_CUSTOM_VALUE)


def _custom_list(values: list[Any] | tuple[Any, ...]) -> tuple[Any, bool]:
    """A one-item list is its item (Meta, multi-dicts); longer ones become a list of strings."""
    while len(values) == 1 and isinstance(values[0], list | tuple):
        values = values[0]  # unwrapped in a loop: nesting depth is the sender's to choose
    if len(values) == 1:
        return _custom_value(values[0])
    if not all(isinstance(item, str | int | float) and not isinstance(item, bool) for item in values):
        raise ValueError(_BAD_CUSTOM_VALUE)
    texts = [_custom_value(str(item)) for item in values]
    strings = [text for text, _ in texts if text is not None]
    return strings or None, any(cut for _, cut in texts)
