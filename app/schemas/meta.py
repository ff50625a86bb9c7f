"""Meta Lead Ads payloads: the `leadgen` webhook notification, and a Graph lead's answers as a submission.

The notification carries ids only (no personal data). Ids arrive as JSON strings or integers and are
kept as strings: they are 64-bit sized and must never pass through a float. A `leadgen` change that
cannot be read is reported apart, so one bad change does not make Meta re-send the others for 36 hours;
optional metadata that cannot be read (an entry's `id` or `time`, a change's `created_time`, `ad_id`, ...) is
dropped and reported, and its change is still taken: only `leadgen_id` is needed to retrieve a lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, post_load

from app.schemas.fieldnames import resolve_field_name
from app.schemas.fields import load_tolerant

LEADGEN_FIELD = "leadgen"
NO_ENTRY_LIST = "expected a list of entries, each with its changes"
# A Graph object's id, as the webhooks and the sources file take it. re.ASCII: `\d` alone also takes other scripts'
# digits ("١٢"), which name no Graph object.
GRAPH_ID = re.compile(r"\d{1,30}", re.ASCII)
# Meta Lead Ads Testing Tool answers look like "<test lead: dummy data for full_name>".
_TEST_LEAD_MARK = "<test lead:"
# Question keys that normalization's aliases do not resolve by themselves; every other standard key
# (full_name, phone_number, zip_code, post_code, street_address, date_of_birth, ...) they already do.
META_FIELD_NAMES: Mapping[str, str] = {"maritial_status": "maritalStatus"}  # sic: Meta's question type
EXTERNAL_ID_NOT_TAKEN = (
    "externalId: not taken from a Meta lead's answers unless the source's field_map names the question; the relay's"
    " lead id is sent instead"
)
# customFields keys under which a retrieved lead carries where it came from (Meta's ids, platform, organic or
# paid), beside its consent time under the source's consent_keys.consent_at.
META_PROVENANCE_KEYS = (
    "leadgen_id",
    "form_id",
    "page_id",
    "ad_id",
    "adset_id",
    "campaign_id",
    "platform",
    "is_organic",
)


class GraphId(fields.Field[str | None]):
    """A Meta object id: a string of digits or a JSON integer, kept as a string; blank is None."""

    default_error_messages = {"invalid": "expected a numeric id, as a string or an integer"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str | None:
        if isinstance(value, str) and not value.strip():
            if self.allow_none:
                return None
            raise self.make_error("invalid")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("invalid")
        text = str(value).strip()
        if not GRAPH_ID.fullmatch(text):
            raise self.make_error("invalid")
        return text


@dataclass(frozen=True)
class LeadgenChange:
    """One new lead announced by Meta: the ids to retrieve and route it by."""

    leadgen_id: str
    page_id: str | None = None
    form_id: str | None = None
    ad_id: str | None = None
    created_time: int | None = None


@dataclass(frozen=True)
class UnreadableChange:
    """A change that could not be read (not an object, no `field`, no usable `leadgen_id`): where it was, and
    what was expected (never a value)."""

    entry: int
    change: int
    messages: Mapping[str, Any]


@dataclass(frozen=True)
class UnreadableEntry:
    """An `entry[]` whose changes could not be read (not an object, `changes` not a list): skipped whole."""

    entry: int
    messages: Mapping[str, Any]


@dataclass(frozen=True)
class DroppedValue:
    """Optional metadata that could not be read and was dropped, its change still taken: where, and what was
    expected (never the value). `change` is None for the entry's own `id` or `time`."""

    entry: int
    change: int | None
    field: str
    messages: Any


@dataclass(frozen=True)
class LeadgenNotification:
    """Every `leadgen` change of one webhook POST, in order, and what could not be read in it."""

    changes: tuple[LeadgenChange, ...]
    unreadable: tuple[UnreadableChange, ...] = ()
    unreadable_entries: tuple[UnreadableEntry, ...] = ()
    dropped: tuple[DroppedValue, ...] = ()


class LeadgenValueSchema(Schema):
    """`changes[].value` of a `leadgen` change: only `leadgen_id` is needed to retrieve the lead."""

    class Meta:
        unknown = EXCLUDE

    leadgen_id = GraphId(required=True, allow_none=False)
    page_id = GraphId(load_default=None, allow_none=True)
    form_id = GraphId(load_default=None, allow_none=True)
    ad_id = GraphId(load_default=None, allow_none=True)
    adgroup_id = GraphId(load_default=None, allow_none=True)
    created_time = fields.Integer(load_default=None, allow_none=True)


class ChangeSchema(Schema):
    """`entry[].changes[]`: a field name and its value, read further only for `leadgen`."""

    class Meta:
        unknown = EXCLUDE

    field = fields.String(required=True)
    value = fields.Raw(load_default=None, allow_none=True)


class EntrySchema(Schema):
    """`entry[]`: one Page's changes; its `id` and `time` are optional metadata."""

    class Meta:
        unknown = EXCLUDE

    id = GraphId(load_default=None, allow_none=True)
    time = fields.Integer(load_default=None, allow_none=True)
    changes = fields.List(fields.Raw(allow_none=True), load_default=list)


class LeadgenNotificationSchema(Schema):
    """The body of Meta's webhook POST for the `page` object.

    Only a body without an `entry` list is refused. Below that, each entry and change is read on its own
    (`_NotificationReader`), so nothing in one of them can make Meta re-send the others for 36 hours.
    """

    class Meta:
        unknown = EXCLUDE

    # Meta sends "page"; the relay reads nothing from it, so an odd value costs no lead (Meta would re-send a
    # refused notification for 36 hours, then drop every lead in it).
    object = fields.Raw(load_default=None, allow_none=True, metadata={"example": "page"})
    entry = fields.List(
        fields.Raw(allow_none=True),
        required=True,
        error_messages={
            "required": NO_ENTRY_LIST,
            "null": NO_ENTRY_LIST,
            "invalid": NO_ENTRY_LIST,
        },
        metadata={"description": "One item per Page; an entry or change that cannot be read is skipped alone."},
    )

    @post_load
    def collect_leadgen_changes(self, data: dict[str, Any], **kwargs: Any) -> LeadgenNotification:
        reader = _NotificationReader()
        for entry_index, entry in enumerate(data["entry"]):
            reader.read_entry(entry_index, entry)
        return reader.notification()


class _NotificationReader:
    """Reads entries and their changes one by one, keeping what can be used and noting what cannot."""

    def __init__(self) -> None:
        self._entry_schema = EntrySchema()
        self._change_schema = ChangeSchema()
        self._value_schema = LeadgenValueSchema()
        self._changes: list[LeadgenChange] = []
        self._unreadable: list[UnreadableChange] = []
        self._unreadable_entries: list[UnreadableEntry] = []
        self._dropped: list[DroppedValue] = []

    def notification(self) -> LeadgenNotification:
        return LeadgenNotification(
            tuple(self._changes), tuple(self._unreadable), tuple(self._unreadable_entries), tuple(self._dropped)
        )

    def read_entry(self, entry_index: int, raw: Any) -> None:
        entry, messages = load_tolerant(self._entry_schema, raw, essential=frozenset({"changes"}))
        if entry is None:
            self._unreadable_entries.append(UnreadableEntry(entry_index, messages))
            return
        self._drop(entry_index, None, messages)
        for change_index, change in enumerate(entry["changes"]):
            self._read_change(entry_index, change_index, change, entry["id"])

    def _read_change(self, entry_index: int, change_index: int, raw: Any, entry_id: str | None) -> None:
        change, messages = load_tolerant(self._change_schema, raw)
        if change is None:
            self._unreadable.append(UnreadableChange(entry_index, change_index, messages))
            return
        if change["field"] != LEADGEN_FIELD:
            return
        value, messages = load_tolerant(
            self._value_schema, change["value"] if isinstance(change["value"], dict) else {}
        )
        if value is None:
            self._unreadable.append(UnreadableChange(entry_index, change_index, messages))
            return
        self._drop(entry_index, change_index, {f"value.{name}": m for name, m in messages.items()})
        self._changes.append(
            LeadgenChange(
                leadgen_id=value["leadgen_id"],
                page_id=value["page_id"] or entry_id,  # entry[].id is the Page id
                form_id=value["form_id"],
                ad_id=value["ad_id"] or value["adgroup_id"],
                created_time=value["created_time"],
            )
        )

    def _drop(self, entry_index: int, change_index: int | None, messages: Mapping[str, Any]) -> None:
        self._dropped.extend(DroppedValue(entry_index, change_index, name, m) for name, m in sorted(messages.items()))


def is_test_lead(field_data: Sequence[Mapping[str, Any]]) -> bool:
    """True for a lead made by Meta's Lead Ads Testing Tool: its answers are placeholders, not a person."""
    return any(
        isinstance(value, str) and value.strip().lower().startswith(_TEST_LEAD_MARK)
        for answer in field_data
        for value in (answer.get("values") or [])
    )


def meta_submission(
    field_data: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    disclaimers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A Graph lead as a submission for intake's normalization.

    `provenance` (Meta ids, consent time; never personal data) comes first, so a custom question of the
    same name cannot override it. Each answer keeps its list of values: normalization takes a one-item
    list as its item, resolves the standard keys case-insensitively, and turns custom questions into
    customFields. Consent checkboxes become `consent_<checkbox_key>` custom fields (true when checked).
    """
    submission: dict[str, Any] = {key: value for key, value in provenance.items() if value not in (None, "")}
    for answer in field_data:
        name, values = answer.get("name"), answer.get("values")
        if not isinstance(name, str) or not name.strip():
            continue
        key = META_FIELD_NAMES.get(name.strip().lower(), name.strip())
        submission.setdefault(key, list(values) if isinstance(values, list | tuple) else values)
    for box in disclaimers:
        checkbox = box.get("checkbox_key")
        if isinstance(checkbox, str) and checkbox.strip():
            checked = box.get("is_checked")
            submission.setdefault(f"consent_{checkbox.strip()}", checked is True or checked in ("1", "true"))
    return submission


def without_answered_external_id(
    submission: Mapping[str, Any], field_map: Mapping[str, str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The submission without an answer that would become its `externalId`, and the warning saying so.

    careCycle updates the customer an externalId names, and a Meta answer is what the person typed: only a question
    the source's `field_map` names explicitly may set it (as a form source needs `accept_external_id`).
    """
    kept: dict[str, Any] = {}
    for name, value in submission.items():
        resolved = resolve_field_name(name, field_map)
        if resolved is None or resolved[0] != "externalId" or name in field_map:
            kept[name] = value
    return kept, (() if len(kept) == len(submission) else (EXTERNAL_ID_NOT_TAKEN,))
