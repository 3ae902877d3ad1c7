"""Labels and their append-only history.

A :class:`Label` is one user's current verdict on one object in one campaign (unique per
campaign, object and user). Every real change (create, change, delete) appends a
:class:`LabelHistory` row with the old and new value: the audit trail, and what undo walks
back. Rows of the history are never updated or deleted (except with their campaign): an undo
is itself a new row whose ``undo_of_id`` names the row it reverted, so "the last change not yet
undone" is a query, not a flag. Changes written by one request share a ``batch`` id, so that a
bulk write is undone as one step.

Objects are referred to by ``object_id`` only (their row in the survey); pixels and catalog
columns stay in the survey files.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.database import utcnow
from server.extensions import db

# A 64-bit key on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LabelValue(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    UNSURE = "unsure"


class LabelAction(enum.StrEnum):
    CREATE = "create"
    CHANGE = "change"
    DELETE = "delete"


def _label_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    return Enum(enum_class, name=name, native_enum=False, create_constraint=True, length=8,
                values_callable=lambda members: [m.value for m in members],
                validate_strings=True)


class Label(db.Model):
    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("campaign_id", "object_id", "user_id"),
        # one user's labels in a campaign, in object order (listing, undo, the labeling UI)
        Index(None, "campaign_id", "user_id", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    value: Mapped[LabelValue] = mapped_column(_label_enum(LabelValue, "label_value"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"<Label campaign {self.campaign_id} object {self.object_id} "
                f"user {self.user_id}: {self.value.value}>")


class LabelHistory(db.Model):
    __tablename__ = "label_history"
    __table_args__ = (
        # "this user's latest changes in this campaign" (undo, audit)
        Index(None, "campaign_id", "user_id", "id"),
        Index(None, "campaign_id", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    action: Mapped[LabelAction] = mapped_column(_label_enum(LabelAction, "label_action"))
    old_value: Mapped[LabelValue | None] = mapped_column(
        _label_enum(LabelValue, "label_old_value"))
    new_value: Mapped[LabelValue | None] = mapped_column(
        _label_enum(LabelValue, "label_new_value"))
    batch: Mapped[str] = mapped_column(String(32))  # uuid4 hex shared by one request's changes
    undo_of_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("label_history.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"<LabelHistory {self.id} {self.action.value} object {self.object_id} "
                f"{self.old_value} -> {self.new_value}>")
