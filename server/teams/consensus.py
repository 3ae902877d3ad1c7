"""A campaign's consensus: one label per object, derived in SQL from everyone's labels.

Never stored: every reader (the consensus endpoint, the probe's training labels, exports) runs
:func:`consensus_select`, so the consensus always agrees with the labels.

The rule (campaign settings, :class:`server.teams.rules.TeamRules`):

- The team's labels vote, one vote per labeler (accept, reject or unsure).
- An object with at least ``consensus_min_votes`` votes takes the value with the most votes. A
  tie between the most-voted values gives ``consensus_tie``: ``unsure`` (the default),
  ``reject`` (cautious: a disputed candidate is not a positive), or ``none`` (no consensus).
- An object with fewer votes has no consensus from the team; if labels were imported for it
  from a named source (:class:`~server.models.SourceLabel`, e.g. a published catalog of known
  lenses), it takes the sources' majority under the same tie rule, with ``basis = "source"``.
  So an imported catalog counts until the team has looked, and the team's verdict overrides
  it from then on (a catalog's false positives get corrected by the people checking it).
- Otherwise the consensus is null (pending).

Counts come with it: ``n_accept``, ``n_reject``, ``n_unsure`` (team votes), ``n_votes``, and
``n_source`` (imported labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    func,
    literal,
    null,
    select,
    union_all,
)

from server.extensions import db
from server.models import Label, LabelValue, SourceLabel
from server.teams.rules import TeamRules

BASIS_LABELS, BASIS_SOURCE = "labels", "source"
VALUES = tuple(v.value for v in LabelValue)  # accept, reject, unsure: the categories


def _winner(accept: ColumnElement, reject: ColumnElement, unsure: ColumnElement,
            tie: str) -> ColumnElement:
    """The value with strictly the most votes, else the tie rule's value (NULL for 'none')."""
    tie_value = null() if tie == "none" else literal(tie, String)
    return case(
        (and_(accept > reject, accept > unsure), literal("accept", String)),
        (and_(reject > accept, reject > unsure), literal("reject", String)),
        (and_(unsure > accept, unsure > reject), literal("unsure", String)),
        else_=tie_value,
    )


def consensus_select(campaign_id: int, rules: TeamRules, object_ids: Sequence[int] | None = None,
                     id_range: tuple[int, int] | None = None) -> Select:
    """A SELECT of every voted object of the campaign, one row each, by object id.

    Columns: ``object_id``, ``n_accept``, ``n_reject``, ``n_unsure``, ``n_votes``, ``n_source``,
    ``consensus`` (accept / reject / unsure / NULL) and ``basis`` (``labels``, ``source`` or
    NULL). Wrap it with ``.subquery()`` to filter on them.

    Args:
        campaign_id: the campaign.
        rules: its rules (minimum votes, tie rule).
        object_ids: only these objects (at most a few hundred: an IN list).
        id_range: only objects with ``lo <= object_id < hi`` (exports read in ranges).
    """
    human = select(Label.object_id, Label.value, literal(1).label("human")).where(
        Label.campaign_id == campaign_id)
    source = select(SourceLabel.object_id, SourceLabel.value, literal(0).label("human")).where(
        SourceLabel.campaign_id == campaign_id)
    if object_ids is not None:
        human = human.where(Label.object_id.in_(object_ids))
        source = source.where(SourceLabel.object_id.in_(object_ids))
    if id_range is not None:
        lo, hi = id_range
        human = human.where(Label.object_id >= lo, Label.object_id < hi)
        source = source.where(SourceLabel.object_id >= lo, SourceLabel.object_id < hi)
    votes = union_all(human, source).subquery("votes")

    def count(value: str | None, is_human: int) -> ColumnElement:
        match = votes.c.human == is_human
        if value is not None:
            match = and_(match, votes.c.value == value)
        return func.sum(case((match, 1), else_=0))

    counts = select(
        votes.c.object_id,
        count("accept", 1).label("n_accept"), count("reject", 1).label("n_reject"),
        count("unsure", 1).label("n_unsure"),
        count("accept", 0).label("s_accept"), count("reject", 0).label("s_reject"),
        count("unsure", 0).label("s_unsure"),
    ).group_by(votes.c.object_id).subquery("counts")
    c = counts.c
    n_votes = c.n_accept + c.n_reject + c.n_unsure
    n_source = c.s_accept + c.s_reject + c.s_unsure
    decided = n_votes >= rules.consensus_min_votes
    tie = rules.consensus_tie
    consensus = case(
        (decided, _winner(c.n_accept, c.n_reject, c.n_unsure, tie)),
        (n_source > 0, _winner(c.s_accept, c.s_reject, c.s_unsure, tie)),
        else_=null(),
    )
    basis = case((decided, literal(BASIS_LABELS, String)),
                 (n_source > 0, literal(BASIS_SOURCE, String)), else_=null())
    return select(c.object_id, c.n_accept, c.n_reject, c.n_unsure, n_votes.label("n_votes"),
                  n_source.label("n_source"), consensus.label("consensus"),
                  basis.label("basis")).order_by(c.object_id)


def consensus_labels(campaign_id: int, rules: TeamRules) -> tuple[np.ndarray, np.ndarray]:
    """Every object of the campaign that has a consensus, and the consensus.

    Returns:
        object ids (M,) int64 ascending and their values (M,) as ``<U6`` strings (accept,
        reject, unsure).
    """
    rows = consensus_select(campaign_id, rules).subquery()
    result = db.session.execute(select(rows.c.object_id, rows.c.consensus)
                                .where(rows.c.consensus.is_not(None))
                                .order_by(rows.c.object_id)).all()
    ids = np.fromiter((r[0] for r in result), dtype=np.int64, count=len(result))
    values = np.array([r[1] for r in result], dtype="<U6")
    return ids, values
