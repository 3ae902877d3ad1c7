"""What an export holds: the campaign's objects that pass its filters, row batch by row batch.

An export covers the campaign's *voted* objects (those with a label of the team or of an
imported source), narrowed by its filters:

- ``consensus``: consensus values to keep (``accept``, ``reject``, ``unsure``; ``none`` for
  objects without a consensus);
- ``labelers``: user ids; keep objects labeled by at least one of them;
- ``min_probe_score``: keep objects whose probe probability is at least this.

The probe is the one named when the export was asked for (its version is recorded), so the
scores in the file are those of a known model, whatever was trained since.

Memory stays bounded: the object ids (8 bytes each) are the only per-object state held for the
whole run; rows are read in batches of :data:`BATCH_ROWS` (SQL per id range, catalog columns
from the survey, probe scores from the bundle's memory-mapped vectors) and written out before
the next batch is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, or_, select

from ml.index import SearchBundle
from ml.probe import ProbeOrder
from ml.survey import Survey
from server.extensions import db
from server.models import Label, ProbeRun, SourceLabel, User
from server.teams.consensus import VALUES, consensus_select
from server.teams.rules import TeamRules

BATCH_ROWS = 2048
CONSENSUS_FILTERS = (*VALUES, "none")
_IN_CHUNK = 500


@dataclass(frozen=True)
class ExportFilters:
    consensus: tuple[str, ...] | None = None  # values of CONSENSUS_FILTERS
    labelers: tuple[int, ...] | None = None  # user ids
    min_probe_score: float | None = None

    @classmethod
    def of(cls, data: dict | None) -> ExportFilters:
        data = data or {}
        consensus, labelers = data.get("consensus"), data.get("labelers")
        return cls(tuple(consensus) if consensus else None,
                   tuple(int(u) for u in labelers) if labelers else None,
                   data.get("min_probe_score"))

    def as_dict(self) -> dict:
        return {"consensus": list(self.consensus) if self.consensus else None,
                "labelers": list(self.labelers) if self.labelers else None,
                "min_probe_score": self.min_probe_score}


@dataclass
class RowBatch:
    """Consecutive rows of an export (B objects, ascending ids)."""

    object_ids: np.ndarray  # (B,) int64
    catalog: dict[str, np.ndarray]  # survey column -> (B,) or (B, 3)
    consensus: list[str | None]
    basis: list[str | None]
    votes: dict[str, np.ndarray]  # n_accept, n_reject, n_unsure, n_votes, n_source: (B,) int
    labels: dict[str, list[str | None]]  # labeler username -> value per row (None: no label)
    sources: dict[str, list[str | None]]  # source name -> value per row
    probe_score: np.ndarray  # (B,) float64, NaN without a probe


@dataclass
class ExportTable:
    """The rows of one export, with the column lists known before the first row is written."""

    campaign_id: int
    rules: TeamRules
    filters: ExportFilters
    survey: Survey
    bundle: SearchBundle | None
    probe: ProbeRun | None
    object_ids: np.ndarray = field(init=False)  # (N,) int64 ascending
    labelers: list[tuple[int, str]] = field(init=False)  # (user id, username), by username
    source_names: list[str] = field(init=False)
    catalog_columns: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self._scorer = None
        if self.probe is not None:
            if self.bundle is None:
                raise ValueError("a probe score needs the search bundle the probe was "
                                 "trained on")
            self._scorer = ProbeOrder(self.bundle, self.probe.weights, self.probe.intercept)
        self.catalog_columns = list(self.survey.columns)
        self.labelers = [(int(i), name) for i, name in db.session.execute(
            select(User.id, User.username).where(User.id.in_(
                select(Label.user_id).where(Label.campaign_id == self.campaign_id).distinct()))
            .order_by(User.username))]
        self.source_names = list(db.session.scalars(
            select(SourceLabel.source).where(SourceLabel.campaign_id == self.campaign_id)
            .distinct().order_by(SourceLabel.source)))
        self.object_ids = self._select_objects()

    @property
    def n(self) -> int:
        return len(self.object_ids)

    @property
    def probe_version(self) -> int | None:
        return None if self.probe is None else self.probe.version

    def _select_objects(self) -> np.ndarray:
        rows = consensus_select(self.campaign_id, self.rules).subquery()
        statement = select(rows.c.object_id)
        if self.filters.consensus:
            values = [v for v in self.filters.consensus if v != "none"]
            conditions = [rows.c.consensus.in_(values)] if values else []
            if "none" in self.filters.consensus:
                conditions.append(rows.c.consensus.is_(None))
            statement = statement.where(or_(*conditions))
        if self.filters.labelers:
            statement = statement.where(rows.c.object_id.in_(
                select(Label.object_id).where(Label.campaign_id == self.campaign_id,
                                              Label.user_id.in_(self.filters.labelers))))
        ids = np.fromiter(db.session.scalars(statement.order_by(rows.c.object_id)),
                          dtype=np.int64)
        ids = ids[ids < self.survey.n]  # labels of objects outside this survey cannot export
        if self.filters.min_probe_score is not None:
            if self._scorer is None:
                raise ValueError("min_probe_score needs a probe: train one first")
            keep = np.zeros(len(ids), dtype=bool)
            for start in range(0, len(ids), BATCH_ROWS):
                scores = self._scorer.probability(ids[start:start + BATCH_ROWS])
                keep[start:start + BATCH_ROWS] = scores >= self.filters.min_probe_score
            ids = ids[keep]
        return ids

    def scores(self, ids: np.ndarray) -> np.ndarray:
        """The probe's probability of objects ``ids`` (NaN without a probe)."""
        if self._scorer is None or len(ids) == 0:
            return np.full(len(ids), np.nan)
        return self._scorer.probability(ids)

    def batches(self, rows: int = BATCH_ROWS, catalog: bool = True) -> Iterator[RowBatch]:
        """The export's rows in batches of ``rows``."""
        for start in range(0, self.n, rows):
            yield self.batch(self.object_ids[start:start + rows], catalog)

    def batch(self, ids: np.ndarray, catalog: bool = True) -> RowBatch:
        """The rows of ``ids`` (ascending, a slice of :attr:`object_ids`)."""
        lo, hi = int(ids[0]), int(ids[-1]) + 1
        position = {int(o): i for i, o in enumerate(ids)}
        b = len(ids)
        consensus: list[str | None] = [None] * b
        basis: list[str | None] = [None] * b
        votes = {k: np.zeros(b, dtype=np.int32)
                 for k in ("n_accept", "n_reject", "n_unsure", "n_votes", "n_source")}
        for row in db.session.execute(consensus_select(self.campaign_id, self.rules,
                                                       id_range=(lo, hi))):
            i = position.get(row.object_id)
            if i is None:
                continue
            consensus[i], basis[i] = row.consensus, row.basis
            for k in votes:
                votes[k][i] = getattr(row, k)
        usernames = dict(self.labelers)
        labels: dict[str, list[str | None]] = {name: [None] * b for _, name in self.labelers}
        for object_id, user_id, value in db.session.execute(
                select(Label.object_id, Label.user_id, Label.value).where(
                    Label.campaign_id == self.campaign_id, Label.object_id >= lo,
                    Label.object_id < hi)):
            i = position.get(object_id)
            if i is not None and user_id in usernames:
                labels[usernames[user_id]][i] = str(value)
        sources: dict[str, list[str | None]] = {name: [None] * b for name in self.source_names}
        for object_id, source, value in db.session.execute(
                select(SourceLabel.object_id, SourceLabel.source, SourceLabel.value).where(
                    SourceLabel.campaign_id == self.campaign_id, SourceLabel.object_id >= lo,
                    SourceLabel.object_id < hi)):
            i = position.get(object_id)
            if i is not None and source in sources:
                sources[source][i] = str(value)
        columns = self.survey.catalog(self.catalog_columns, ids) if catalog else {}
        return RowBatch(ids, columns, consensus, basis, votes, labels, sources,
                        self.scores(ids))


def labeler_ids(usernames: Sequence[str]) -> dict[str, int]:
    """User ids of the given usernames (those that exist)."""
    if not usernames:
        return {}
    return dict(db.session.execute(select(User.username, User.id).where(
        func.lower(User.username).in_([u.lower() for u in usernames]))).all())
