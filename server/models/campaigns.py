"""Campaigns: a search for one kind of object, its seeds, its settings and its team.

A campaign's settings are a JSON document validated by
:class:`server.schemas.campaigns.CampaignSettingsSchema` (magnitude window, catalog filters;
later issues add keys such as overlap and consensus rule), so new settings need no migration.

Seeds say what the campaign looks for. Each has a kind:

- ``object``: an object of the survey, by ``object_id``;
- ``sky``: a position (``ra``, ``dec`` in degrees) matched to the nearest catalog object, whose
  id and separation are stored beside it;
- ``vector``: a representation computed from an uploaded cutout (float32 bytes) by the model
  whose checkpoint hash is stored beside it.

Roles: an owner manages the campaign and its members and labels; a labeler labels; a viewer
reads. A campaign always keeps at least one owner (the API refuses to remove the last).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.database import utcnow
from server.extensions import db
from server.models.users import User

CAMPAIGN_NAME_MAX = 200
CAMPAIGN_TARGET_MAX = 200
SEED_NOTE_MAX = 200


class Role(enum.StrEnum):
    """A member's role in a campaign; :attr:`rank` orders them by what they may do."""

    VIEWER = "viewer"
    LABELER = "labeler"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]


_ROLE_RANK = {Role.VIEWER: 0, Role.LABELER: 1, Role.OWNER: 2}


class SeedKind(enum.StrEnum):
    OBJECT = "object"
    SKY = "sky"
    VECTOR = "vector"


def _string_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR column with a CHECK constraint (not a native PostgreSQL ENUM type, whose
    values cannot be changed inside a transaction), storing the members' values."""
    return Enum(enum_class, name=name, native_enum=False, create_constraint=True, length=16,
                values_callable=lambda members: [m.value for m in members],
                validate_strings=True)


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(CAMPAIGN_NAME_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[str] = mapped_column(String(CAMPAIGN_TARGET_MAX), default="")  # "lens", ...
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    created_by: Mapped[User | None] = relationship()
    seeds: Mapped[list[CampaignSeed]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", passive_deletes=True,
        order_by="CampaignSeed.id")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", passive_deletes=True)

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name!r}>"


class CampaignSeed(db.Model):
    __tablename__ = "campaign_seeds"
    __table_args__ = (
        CheckConstraint(
            "(kind != 'object' OR object_id IS NOT NULL)"
            " AND (kind != 'sky' OR (ra IS NOT NULL AND dec IS NOT NULL))"
            " AND (kind != 'vector' OR vector IS NOT NULL)",
            name="kind_fields",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SeedKind] = mapped_column(_string_enum(SeedKind, "seed_kind"))
    object_id: Mapped[int | None] = mapped_column(BigInteger)
    ra: Mapped[float | None] = mapped_column(Float)  # degrees
    dec: Mapped[float | None] = mapped_column(Float)  # degrees
    separation_arcsec: Mapped[float | None] = mapped_column(Float)  # sky seed -> matched object
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)  # (D,) float32, little-endian
    # sha256 of the checkpoint that embedded the vector: a bundle made by another model cannot
    # use it
    vector_model_sha256: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(SEED_NOTE_MAX), default="")  # e.g. uploaded file name
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="seeds")
    added_by: Mapped[User | None] = relationship()

    @property
    def vector_dim(self) -> int | None:
        """Length of a vector seed's representation (float32 values)."""
        return None if self.vector is None else len(self.vector) // 4

    def __repr__(self) -> str:
        return f"<CampaignSeed {self.id} {self.kind.value} of campaign {self.campaign_id}>"


class Membership(db.Model):
    __tablename__ = "memberships"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[Role] = mapped_column(_string_enum(Role, "member_role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Membership user {self.user_id} {self.role.value} of campaign {self.campaign_id}>"
