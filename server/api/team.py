"""``/api/campaigns/{id}/consensus``, ``/agreement``, ``/progress``: how a team's labeling
stands (members read all three; see :mod:`server.teams`)."""

from __future__ import annotations

from datetime import timedelta

from apiflask import APIBlueprint
from sqlalchemy import func, or_, select

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN
from server.extensions import db
from server.models import Role, User
from server.schemas.team import (
    AgreementOut,
    ConsensusPageOut,
    ConsensusQuery,
    ProgressOut,
    ProgressQuery,
)
from server.teams.agreement import campaign_fleiss, pairwise_cohen
from server.teams.consensus import VALUES, consensus_select
from server.teams.progress import campaign_progress
from server.teams.rules import TeamRules

bp = APIBlueprint("team", __name__, url_prefix="/api/campaigns/<int:campaign_id>",
                  tag="Team")


@bp.get("/consensus")
@bp.input(ConsensusQuery, location="query", arg_name="query")
@bp.output(ConsensusPageOut)
@bp.doc(security=SIGNED_IN)
def consensus(campaign_id: int, query: dict) -> dict:
    """The consensus label of each voted object (members)

    Derived from the labels by the campaign's rule (`consensus_min_votes`, `consensus_tie`);
    objects the team has not voted on enough take the labels imported from a source. Pages go
    in object id order; filter by consensus value or basis.
    """
    campaign, _ = campaign_access(campaign_id, Role.VIEWER)
    rules = TeamRules.of(campaign.settings)
    rows = consensus_select(campaign_id, rules).subquery()
    statement = select(rows).where(rows.c.object_id > query["after"])
    if "value" in query:
        values = [v for v in query["value"] if v != "none"]
        conditions = [rows.c.consensus.in_(values)] if values else []
        if "none" in query["value"]:
            conditions.append(rows.c.consensus.is_(None))
        statement = statement.where(or_(*conditions))
    if "basis" in query:
        statement = statement.where(rows.c.basis == query["basis"])
    items = [row._asdict() for row in db.session.execute(
        statement.order_by(rows.c.object_id).limit(query["limit"] + 1))]
    more = len(items) > query["limit"]
    items = items[:query["limit"]]
    return {"items": items, "next_after": items[-1]["object_id"] if more else None,
            "rules": {"min_votes": rules.consensus_min_votes, "tie": rules.consensus_tie}}


def _users(ids: set[int]) -> dict[int, dict]:
    if not ids:
        return {}
    return {user_id: {"id": user_id, "username": name} for user_id, name in
            db.session.execute(select(User.id, User.username).where(User.id.in_(ids)))}


@bp.get("/agreement")
@bp.output(AgreementOut)
@bp.doc(security=SIGNED_IN)
def agreement(campaign_id: int) -> dict:
    """How much the labelers agree (members)

    Fleiss' kappa over the objects with at least two labels (each object with its own number of
    raters), and Cohen's kappa for every pair of labelers over the objects both labeled, with
    their confusion matrix. Imported labels are not raters.
    """
    campaign_access(campaign_id, Role.VIEWER)
    fleiss = campaign_fleiss(campaign_id)
    pairs = pairwise_cohen(campaign_id)
    users = _users({p.user_a for p in pairs} | {p.user_b for p in pairs})
    return {"fleiss": fleiss, "pairs": [
        {**vars(p), "user_a": users[p.user_a], "user_b": users[p.user_b]} for p in pairs]}


@bp.get("/progress")
@bp.input(ProgressQuery, location="query", arg_name="query")
@bp.output(ProgressOut)
@bp.doc(security=SIGNED_IN)
def progress(campaign_id: int, query: dict) -> dict:
    """Each labeler's progress, and the consensus so far (members)

    Per labeler: current labels per value, label writes per hour over the last
    `window_minutes`, last activity, and objects handed to them not yet labeled.
    """
    campaign, _ = campaign_access(campaign_id, Role.VIEWER)
    window = timedelta(minutes=query["window_minutes"])
    labelers = [{**vars(p), "user": {"id": p.user_id, "username": p.username}}
                for p in campaign_progress(campaign_id, window)]
    rows = consensus_select(campaign_id, TeamRules.of(campaign.settings)).subquery()
    totals = dict.fromkeys((*VALUES, "none"), 0)
    for value, n in db.session.execute(select(rows.c.consensus, func.count())
                                       .group_by(rows.c.consensus)):
        totals[value or "none"] = n
    return {"window_minutes": query["window_minutes"], "labelers": labelers,
            "consensus": totals}
