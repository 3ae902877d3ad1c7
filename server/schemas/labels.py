"""Schemas of labels, bulk writes, undo and the label history."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Enum, Integer, List, Nested, String
from apiflask.validators import Length, Range
from marshmallow import ValidationError, validates

from server.labeling import MAX_BULK_LABELS
from server.models.labels import LabelAction, LabelValue

OBJECT_ID_MAX = 2**63 - 1
PAGE_LIMIT_MAX = 1000


def object_id_field(strict: bool = True, **kwargs) -> Integer:
    """An object id: strict (a JSON integer, not "3" or 3.0) in bodies, parsed in queries."""
    return Integer(strict=strict, validate=Range(0, OBJECT_ID_MAX),
                   metadata={"description": "the object's row in the survey"}, **kwargs)


class LabelIn(Schema):
    value = Enum(LabelValue, by_value=True, required=True)


class LabelRecord(Schema):
    """One user's label on one object."""

    campaign_id = Integer(required=True)
    object_id = Integer(required=True)
    user_id = Integer(required=True)
    value = Enum(LabelValue, by_value=True, allow_none=True,
                 metadata={"description": "null: no label (cleared, or never set)"})
    created_at = DateTime(allow_none=True)
    updated_at = DateTime(allow_none=True)


class LabelOut(LabelRecord):
    """A label as stored after a request (reads and writes)."""

    changed = Boolean(metadata={"description": "writes only: whether this request changed "
                                               "the label (false: it already had this value)"})


class BulkItemIn(Schema):
    object_id = object_id_field(required=True)
    value = Enum(LabelValue, by_value=True, required=True, allow_none=True,
                 metadata={"description": "null clears the label"})


class BulkIn(Schema):
    labels = List(Nested(BulkItemIn), required=True,
                  validate=Length(1, MAX_BULK_LABELS))

    @validates("labels")
    def _unique_objects(self, labels, **kwargs):
        seen: set[int] = set()
        # an item without a valid object_id is reported by its own field's error
        ids = [item["object_id"] for item in labels if "object_id" in item]
        repeated = sorted({i for i in ids if i in seen or seen.add(i)})
        if repeated:
            raise ValidationError(f"objects given more than once: {repeated[:10]}")


class _UserFilter(Schema):
    user = String(load_default="me", metadata={
        "description": "whose: 'me' (default), 'all', or a user id"})

    @validates("user")
    def _user(self, value, **kwargs):
        if value not in ("me", "all") and not value.isdigit():
            raise ValidationError("use 'me', 'all' or a user id")


class LabelPageQuery(_UserFilter):
    value = Enum(LabelValue, by_value=True)
    after = Integer(load_default=0, validate=Range(min=0, max=OBJECT_ID_MAX), metadata={
        "description": "cursor: the next_after of the previous page (pages go oldest first)"})
    limit = Integer(load_default=200, validate=Range(1, PAGE_LIMIT_MAX))


class LabelPageOut(Schema):
    items = Nested(LabelRecord, many=True, required=True)
    next_after = Integer(allow_none=True, metadata={
        "description": "pass as 'after' for the next page; null: this was the last page"})


class HistoryQuery(_UserFilter):
    object_id = object_id_field(strict=False)
    before = Integer(validate=Range(min=1, max=OBJECT_ID_MAX), metadata={  # a BIGINT id
        "description": "cursor: the next_before of the previous page (pages go newest first)"})
    limit = Integer(load_default=200, validate=Range(1, PAGE_LIMIT_MAX))


class HistoryEntryOut(Schema):
    id = Integer(required=True)
    campaign_id = Integer(required=True)
    object_id = Integer(required=True)
    user_id = Integer(required=True)
    action = Enum(LabelAction, by_value=True, required=True)
    old_value = Enum(LabelValue, by_value=True, allow_none=True)
    new_value = Enum(LabelValue, by_value=True, allow_none=True)
    batch = String(required=True, metadata={"description": "changes made by one request"})
    undo_of_id = Integer(allow_none=True, metadata={"description": "the entry this undo reverted"})
    created_at = DateTime(required=True)


class HistoryPageOut(Schema):
    items = Nested(HistoryEntryOut, many=True, required=True)
    next_before = Integer(allow_none=True, metadata={
        "description": "pass as 'before' for the next (older) page; null: no older entries"})

