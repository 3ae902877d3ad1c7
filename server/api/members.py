"""``/api/campaigns/{id}/members``: who belongs to a campaign, with which role."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.accounts import normalise_username
from server.auth.identity import SIGNED_IN, current_user
from server.extensions import db
from server.models import Campaign, Membership, Role, User
from server.schemas.campaigns import MemberIn, MemberOut, MemberUpdateIn

bp = APIBlueprint("members", __name__, url_prefix="/api/campaigns/<int:campaign_id>/members",
                  tag="Members")


def _membership_or_404(campaign_id: int, user_id: int) -> Membership:
    membership = db.session.get(Membership, (campaign_id, user_id))
    if membership is None:
        abort(404, f"user {user_id} is not a member of campaign {campaign_id}")
    return membership


def _keep_an_owner(membership: Membership) -> None:
    """Refuse to remove or demote the campaign's last owner."""
    if membership.role != Role.OWNER:
        return
    # lock the campaign row so that two owners demoting each other at once cannot both pass
    db.session.execute(select(Campaign.id).where(Campaign.id == membership.campaign_id)
                       .with_for_update())
    owners = db.session.scalar(select(func.count()).select_from(Membership).where(
        Membership.campaign_id == membership.campaign_id, Membership.role == Role.OWNER))
    if owners <= 1:
        abort(409, "a campaign needs at least one owner: make another member an owner first")


@bp.get("")
@bp.output(MemberOut(many=True))
@bp.doc(security=SIGNED_IN)
def list_members(campaign_id: int) -> list[Membership]:
    """The campaign's members (members)"""
    campaign_access(campaign_id, Role.VIEWER)
    memberships = db.session.scalars(
        select(Membership).where(Membership.campaign_id == campaign_id)
        .options(selectinload(Membership.user)).order_by(Membership.created_at, Membership.user_id))
    return list(memberships)


@bp.post("")
@bp.input(MemberIn, arg_name="body")
@bp.output(MemberOut, status_code=201)
@bp.doc(security=SIGNED_IN, responses=[403, 409])
def add(campaign_id: int, body: dict) -> Membership:
    """Add a member (owners)

    Name the user by username; roles are owner, labeler and viewer.
    """
    campaign_access(campaign_id, Role.OWNER)
    username = normalise_username(body["username"])
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        abort(422, f"there is no active user named {username!r}",
              extra_data={"errors": {"json": {"username": ["no such active user"]}}})
    if db.session.get(Membership, (campaign_id, user.id)) is not None:
        abort(409, f"{username!r} is already a member: change their role with PATCH "
                   f"/api/campaigns/{campaign_id}/members/{user.id}")
    membership = Membership(campaign_id=campaign_id, user=user, role=body["role"])
    db.session.add(membership)
    try:
        db.session.commit()
    except IntegrityError:  # added by another owner at the same moment
        db.session.rollback()
        abort(409, f"{username!r} is already a member")
    return membership


@bp.patch("/<int:user_id>")
@bp.input(MemberUpdateIn, arg_name="body")
@bp.output(MemberOut)
@bp.doc(security=SIGNED_IN, responses=[403, 409])
def change_role(campaign_id: int, user_id: int, body: dict) -> Membership:
    """Change a member's role (owners)

    The last owner cannot be demoted.
    """
    campaign_access(campaign_id, Role.OWNER)
    membership = _membership_or_404(campaign_id, user_id)
    if body["role"] != membership.role:
        _keep_an_owner(membership)
        membership.role = body["role"]
        db.session.commit()
    return membership


@bp.delete("/<int:user_id>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN, responses=[403, 409])
def remove(campaign_id: int, user_id: int) -> tuple[str, int]:
    """Remove a member (owners), or leave a campaign (yourself)

    The member's labels stay in the campaign. The last owner cannot be removed.
    """
    leaving = user_id == current_user().id
    campaign_access(campaign_id, Role.VIEWER if leaving else Role.OWNER)
    membership = _membership_or_404(campaign_id, user_id)
    _keep_an_owner(membership)
    db.session.delete(membership)
    db.session.commit()
    return "", 204
