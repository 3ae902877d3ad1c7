"""Who may do what in a campaign.

| role | may |
|---|---|
| viewer | read the campaign, its seeds, members, labels and history |
| labeler | that, and write their own labels |
| owner | that, and edit or delete the campaign, manage seeds and members |

Administrators act as owners of every campaign (an operator must be able to rescue a campaign
whose owners have left). Someone who is not a member gets 404, not 403, so that campaign ids do
not reveal which campaigns exist.
"""

from __future__ import annotations

import functools

from apiflask import abort
from flask import g
from sqlalchemy import Integer, and_, bindparam, select

from server.auth.identity import SQL_INTEGER_MAX, current_user
from server.extensions import db
from server.models import Campaign, Membership, Role


@functools.cache
def _campaign_and_role():
    """The campaign and the user's role in it, by ``campaign_id`` and ``user_id`` (built once:
    SQLAlchemy then reuses its compiled form; a new tree per request costs more CPU than the
    query)."""
    return (select(Campaign, Membership.role)
            .outerjoin(Membership, and_(Membership.campaign_id == Campaign.id,
                                        Membership.user_id == bindparam("user_id", type_=Integer)))
            .where(Campaign.id == bindparam("campaign_id", type_=Integer)))


def campaign_access(campaign_id: int, needed: Role) -> tuple[Campaign, Role]:
    """The campaign and the caller's effective role, if it is at least ``needed``.

    Raises (through :func:`apiflask.abort`): 401 when nobody is signed in, 404 when the
    campaign does not exist or the caller is not a member, 403 when the role is too low.
    """
    user = current_user()
    if campaign_id > SQL_INTEGER_MAX:  # no such id, and too large for the database's integer
        abort(404, f"campaign {campaign_id} does not exist or you are not one of its members")
    known = g.get("membership")
    if known is not None and (known.campaign_id, known.user_id) == (campaign_id, user.id):
        campaign, role = known.campaign, known.role  # read with the user by load_identity
    else:
        row = db.session.execute(_campaign_and_role(), {"campaign_id": campaign_id,
                                                        "user_id": user.id}).first()
        campaign, role = (None, None) if row is None else row
    if campaign is None or (role is None and not user.is_admin):
        abort(404, f"campaign {campaign_id} does not exist or you are not one of its members")
    effective = Role.OWNER if user.is_admin else role
    if effective.rank < needed.rank:
        verbs = {Role.LABELER: "label in", Role.OWNER: "manage"}
        abort(403, f"you are a {effective.value} of campaign {campaign_id}; to "
                   f"{verbs[needed]} it you need the {needed.value} role or higher "
                   "(ask one of its owners)")
    return campaign, effective
