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
from sqlalchemy import Integer, and_, bindparam, select

from server.auth.identity import current_user
from server.extensions import db
from server.models import Campaign, Membership, Role, User

SQL_INTEGER_MAX = 2**63 - 1


def role_in(campaign_id: int, user: User) -> Role | None:
    """``user``'s effective role in the campaign (None: not a member)."""
    if user.is_admin:
        return Role.OWNER
    return db.session.scalar(select(Membership.role).where(
        Membership.campaign_id == campaign_id, Membership.user_id == user.id))


def _member_of(*entities):
    """The campaign (its ``entities``) with the caller's role in it, by bound parameters
    ``campaign_id`` and ``user_id``."""
    return (select(*entities, Membership.role)
            .outerjoin(Membership, and_(Membership.campaign_id == Campaign.id,
                                        Membership.user_id == bindparam("user_id", type_=Integer)))
            .where(Campaign.id == bindparam("campaign_id", type_=Integer)))


@functools.cache
def _role_statement():
    # built once: SQLAlchemy then reuses its compiled form (a new tree per request costs more
    # CPU than the query itself)
    return _member_of(Campaign.id)


@functools.cache
def _campaign_statement():
    return _member_of(Campaign)


def _checked(campaign_id: int, needed: Role, statement) -> tuple:
    """The row of ``statement`` for the caller, if their role is at least ``needed``."""
    user = current_user()
    if campaign_id > SQL_INTEGER_MAX:  # no such id, and too large for the database's integer
        abort(404, f"campaign {campaign_id} does not exist or you are not one of its members")
    row = db.session.execute(statement, {"campaign_id": campaign_id, "user_id": user.id}).first()
    if row is None or (row.role is None and not user.is_admin):
        abort(404, f"campaign {campaign_id} does not exist or you are not one of its members")
    effective = Role.OWNER if user.is_admin else row.role
    if effective.rank < needed.rank:
        verbs = {Role.LABELER: "label in", Role.OWNER: "manage"}
        abort(403, f"you are a {effective.value} of campaign {campaign_id}; to "
                   f"{verbs[needed]} it you need the {needed.value} role or higher "
                   "(ask one of its owners)")
    return row[0], effective


def campaign_access(campaign_id: int, needed: Role) -> tuple[Campaign, Role]:
    """The campaign and the caller's effective role, if it is at least ``needed``.

    Raises (through :func:`apiflask.abort`): 401 when nobody is signed in, 404 when the
    campaign does not exist or the caller is not a member, 403 when the role is too low.
    """
    return _checked(campaign_id, needed, _campaign_statement())


def require_role(campaign_id: int, needed: Role) -> Role:
    """:func:`campaign_access` for views that need only the permission, not the campaign's
    row (label writes and reads: the busiest requests); the same errors."""
    return _checked(campaign_id, needed, _role_statement())[1]
