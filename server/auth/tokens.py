"""API tokens for scripts and notebooks: ``Authorization: Bearer gst_...``.

A token is 32 random bytes (URL-safe base64) after the ``gst_`` prefix, which makes a leaked
token easy to recognise in logs and by secret scanners. It is shown once, at creation; the
database keeps its SHA-256 and its first characters (to tell tokens apart in a list).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import or_, select, update

from server.database import utcnow
from server.extensions import db
from server.models import ApiToken, User

TOKEN_PREFIX = "gst_"
SHOWN_PREFIX_CHARS = 10  # "gst_" and 6 random characters
# last_used_at is refreshed at most this often, so a busy script does not write on every call
LAST_USED_RESOLUTION = timedelta(minutes=5)


def token_digest(secret: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Add a new token of ``user`` to the session; returns it and its secret (shown once)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=token_digest(secret),
                     prefix=secret[:SHOWN_PREFIX_CHARS])
    db.session.add(token)
    return token, secret


def authenticate_token(secret: str) -> tuple[User, ApiToken] | None:
    """The active user and live token that ``secret`` belongs to, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = db.session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(secret), ApiToken.revoked_at.is_(None),
               User.is_active.is_(True))
    ).first()
    if row is None:
        return None
    user, token = row
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # a conditional UPDATE: concurrent requests with one token write it once
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.id == token.id,
                   or_(ApiToken.last_used_at.is_(None),
                       ApiToken.last_used_at < now - LAST_USED_RESOLUTION))
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return user, token
