"""Team campaigns in SQL: hand-outs of objects to labelers, and labels imported from a source.

A :class:`Handout` says that one object was handed to one labeler of a campaign until
``expires_at``; :mod:`server.teams.handout` creates them (unique per campaign, object and user)
and counts them, with the object's labels, against the campaign's overlap. Expired rows are
deleted by the next hand-out in the campaign.

A :class:`SourceLabel` is a label that came from outside the team, attributed to a named source
(for example a published catalog of known lenses) by an import (:mod:`server.imports`), one per
campaign, object and source. Sources are not users: they cannot sign in, are not handed objects
and are not raters in the agreement; the consensus uses them only for objects that have no
consensus of the team's own labels (:mod:`server.teams.consensus`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.database import utcnow
from server.extensions import db
from server.models.labels import BigId, LabelValue, _label_enum

SOURCE_NAME_MAX = 64


class Handout(db.Model):
    __tablename__ = "handouts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "object_id", "user_id"),
        # one labeler's queue in hand-out order
        Index(None, "campaign_id", "user_id", "id"),
        # the expiry sweep
        Index(None, "campaign_id", "expires_at"),
        # ids never reused (SQLite would reuse a deleted highest rowid): cursors hold them
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)  # the ranking's score when it was handed out
    handed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    def __repr__(self) -> str:
        return (f"<Handout campaign {self.campaign_id} object {self.object_id} to user "
                f"{self.user_id} until {self.expires_at:%H:%M:%S}>")


class SourceLabel(db.Model):
    __tablename__ = "source_labels"
    __table_args__ = (UniqueConstraint("campaign_id", "object_id", "source"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(SOURCE_NAME_MAX))  # "SuGOHI", "Jacobs+2019", ...
    value: Mapped[LabelValue] = mapped_column(_label_enum(LabelValue, "source_label_value"))
    imported_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (f"<SourceLabel campaign {self.campaign_id} object {self.object_id} "
                f"{self.source!r}: {self.value.value}>")
