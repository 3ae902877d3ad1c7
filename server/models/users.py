"""People and their credentials: users (password hashes) and API tokens for scripts.

Users are never deleted, only deactivated, so that labels and their history keep their
author. ``session_version`` is copied into the signed session cookie at sign-in; raising it
(password reset, deactivation) ends every session of that user at its next request.

API tokens are random 256-bit secrets shown once at creation; only their SHA-256 is stored
(a slow password hash is not needed for a secret with that much entropy, and SHA-256 lets a
request find its token with one indexed lookup).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.database import utcnow
from server.extensions import db

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # lower-case: sign-in is case-insensitive
USERNAME_MAX = 64
TOKEN_NAME_MAX = 100


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string format
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user",
                                                  cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}{' admin' if self.is_admin else ''}>"


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(TOKEN_NAME_MAX))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell it apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.name!r} of user {self.user_id}>"
