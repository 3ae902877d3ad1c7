"""Probe runs: each linear probe trained for a campaign, with what it learned from and how well.

A :class:`ProbeRun` is written once, when a probe has been trained (by the worker, in the same
transaction that marks its job succeeded), and never changed. ``version`` counts a campaign's
probes from 1; the newest one trained on the server's bundle orders the campaign's candidate
pages. A run that could not train leaves no row: its job fails with the reason.

The probe itself is ``coef`` (d float32 values, little-endian: 8 KB at d = 2048) and
``intercept``; p(target | x) = sigmoid(x . coef + intercept) on the bundle's unit vectors.
``bundle_sha256`` (the sha256 of the bundle's ``manifest.json``) says which representations the
probe belongs to: a probe of another bundle is never used to rank this one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.database import utcnow
from server.extensions import db
from server.models.labels import BigId

COEF_DTYPE = np.dtype("<f4")


class ProbeRun(db.Model):
    __tablename__ = "probe_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per campaign
    job_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    representation: Mapped[str] = mapped_column(String(64))  # "prehead", "head", ...
    dim: Mapped[int] = mapped_column(Integer)
    coef: Mapped[bytes] = mapped_column(LargeBinary)  # (dim,) little-endian float32
    intercept: Mapped[float] = mapped_column(Float)
    C: Mapped[float] = mapped_column(Float)  # inverse regularisation strength used
    # the newest label_history id the run read: labels after it are not in this probe
    label_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    n_positive: Mapped[int] = mapped_column(Integer)  # accepts and seeds
    n_negative: Mapped[int] = mapped_column(Integer)  # rejects
    n_unlabeled: Mapped[int] = mapped_column(Integer)  # weak negatives drawn
    unlabeled_weight: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # ml.probe.fit_probe's
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # seconds per step
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def weights(self) -> np.ndarray:
        """The probe's coefficients, (dim,) float32."""
        return np.frombuffer(self.coef, dtype=COEF_DTYPE).astype(np.float32)

    def __repr__(self) -> str:
        return f"<ProbeRun campaign {self.campaign_id} v{self.version}>"
