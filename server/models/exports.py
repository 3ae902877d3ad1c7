"""Exports: files made from a campaign's labels by background jobs (:mod:`server.exports`).

An :class:`Export` records who asked for which file (format, filters, options), with which
probe version, and, once its job has written the file, its row count, byte size, SHA-256 and
when it finished. Whether it is queued, running or failed, and why, is its job's
(:class:`~server.models.Job`, never stored twice). The file's path is derived from the campaign
and export ids (:func:`server.exports.files.export_path`); deleting the row deletes the file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.database import utcnow
from server.extensions import db
from server.models.jobs import Job
from server.models.labels import BigId
from server.models.users import User


class Export(db.Model):
    __tablename__ = "exports"
    __table_args__ = (
        Index(None, "campaign_id", "id"),
        # ids name files: never reuse one (SQLite would reuse a deleted highest rowid)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    format: Mapped[str] = mapped_column(String(16))  # a key of server.exports.files.FORMATS
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    probe_version: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    finished_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()
    job: Mapped[Job | None] = relationship()

    def __repr__(self) -> str:
        return f"<Export {self.id} {self.format} of campaign {self.campaign_id}>"
