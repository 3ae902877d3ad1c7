"""Failed sign-ins, kept for a while so that sign-in can be rate-limited (server.auth.throttle).

One row per failed attempt and per key it counts against: ``account:<username>`` and
``ip:<address>``. Rows live in the SQL database rather than in a process's memory so that every
gunicorn worker (and every machine behind a load balancer) counts the same attempts. Rows older
than the window are deleted as new failures arrive.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.database import utcnow
from server.extensions import db

THROTTLE_KEY_MAX = 200


class SignInFailure(db.Model):
    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_key_failed_at", "key", "failed_at"),
        Index("ix_sign_in_failures_failed_at", "failed_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True)
    key: Mapped[str] = mapped_column(String(THROTTLE_KEY_MAX))
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<SignInFailure {self.key!r} at {self.failed_at:%Y-%m-%d %H:%M:%S}>"
