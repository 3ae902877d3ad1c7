"""What each labeler of a campaign has done: labels per value, recent rate, last activity.

- counts: the labeler's current labels per value (accept, reject, unsure);
- rate: label writes (creations and changes, undos left out) per hour over a recent window,
  from the append-only label history, so a labeler's pace shows even when they revise labels;
- last active: their newest label-history entry of any kind;
- outstanding: objects handed to them (hand-out campaigns) that they have not labeled yet.

Every member who may label is listed, with zeros until they start, and so is anyone who left
the campaign but still has labels in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select

from server.database import utcnow
from server.extensions import db
from server.models import Handout, Label, LabelAction, LabelHistory, Membership, Role, User
from server.teams.consensus import VALUES


@dataclass
class LabelerProgress:
    user_id: int
    username: str
    role: Role | None  # None: no longer a member
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VALUES, 0))
    total: int = 0
    recent: int = 0  # label writes in the window
    per_hour: float = 0.0
    last_active: datetime | None = None
    outstanding: int = 0


def campaign_progress(campaign_id: int, window: timedelta,
                      now: datetime | None = None) -> list[LabelerProgress]:
    """Each labeler's progress, most labels first (then by username)."""
    now = utcnow() if now is None else now
    since = now - window
    people: dict[int, LabelerProgress] = {}
    for user_id, username, role in db.session.execute(
            select(User.id, User.username, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.campaign_id == campaign_id,
                   Membership.role.in_([Role.LABELER, Role.OWNER]))):
        people[user_id] = LabelerProgress(user_id, username, role)

    def person(user_id: int) -> LabelerProgress:
        if user_id not in people:  # a former member with labels
            people[user_id] = LabelerProgress(user_id, db.session.get(User, user_id).username,
                                              None)
        return people[user_id]

    for user_id, value, n in db.session.execute(
            select(Label.user_id, Label.value, func.count())
            .where(Label.campaign_id == campaign_id).group_by(Label.user_id, Label.value)):
        p = person(user_id)
        p.counts[value] = n
        p.total += n
    for user_id, n in db.session.execute(
            select(LabelHistory.user_id, func.count())
            .where(LabelHistory.campaign_id == campaign_id, LabelHistory.created_at >= since,
                   LabelHistory.undo_of_id.is_(None),
                   LabelHistory.action.in_([LabelAction.CREATE, LabelAction.CHANGE]))
            .group_by(LabelHistory.user_id)):
        p = person(user_id)
        p.recent = n
        p.per_hour = n / (window.total_seconds() / 3600.0)
    for user_id, last in db.session.execute(
            select(LabelHistory.user_id, func.max(LabelHistory.created_at))
            .where(LabelHistory.campaign_id == campaign_id).group_by(LabelHistory.user_id)):
        person(user_id).last_active = last
    labeled = exists().where(Label.campaign_id == campaign_id, Label.user_id == Handout.user_id,
                             Label.object_id == Handout.object_id)
    for user_id, n in db.session.execute(
            select(Handout.user_id, func.count())
            .where(Handout.campaign_id == campaign_id, Handout.expires_at > now, ~labeled)
            .group_by(Handout.user_id)):
        person(user_id).outstanding = n
    return sorted(people.values(), key=lambda p: (-p.total, p.username))
