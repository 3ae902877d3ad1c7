"""``/api/campaigns``: campaigns (what a team looks for, with which settings)."""

from __future__ import annotations

import shutil
from typing import Any

from apiflask import APIBlueprint, abort
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.auth.access import campaign_access
from server.auth.identity import SIGNED_IN, current_user
from server.exports.files import campaign_exports_dir
from server.extensions import db
from server.models import Campaign, Membership, Role
from server.schemas.campaigns import (
    CampaignIn,
    CampaignListQuery,
    CampaignOut,
    CampaignSettingsSchema,
    CampaignUpdateIn,
)

bp = APIBlueprint("campaigns", __name__, url_prefix="/api/campaigns", tag="Campaigns")


def campaign_body(campaign: Campaign, role: Role) -> dict[str, Any]:
    """What CampaignOut dumps: the campaign's columns and the caller's role."""
    return {
        "id": campaign.id, "name": campaign.name, "description": campaign.description,
        "target": campaign.target, "settings": campaign.settings,
        "created_by": campaign.created_by, "created_at": campaign.created_at,
        "updated_at": campaign.updated_at, "role": role,
    }


@bp.get("")
@bp.input(CampaignListQuery, location="query", arg_name="query")
@bp.output(CampaignOut(many=True))
@bp.doc(security=SIGNED_IN, responses=[403])
def list_campaigns(query: dict) -> list[dict]:
    """Your campaigns

    The campaigns you are a member of, newest first, with your role in each. Administrators
    may ask for every campaign with `scope=all`.
    """
    user = current_user()
    if query["scope"] == "all":
        if not user.is_admin:
            abort(403, "only administrators may list every campaign (scope=all)")
        campaigns = db.session.scalars(select(Campaign).options(
            selectinload(Campaign.created_by)).order_by(Campaign.id.desc()))
        return [campaign_body(c, Role.OWNER) for c in campaigns]
    rows = db.session.execute(
        select(Campaign, Membership.role)
        .join(Membership, Membership.campaign_id == Campaign.id)
        .where(Membership.user_id == user.id)
        .options(selectinload(Campaign.created_by))
        .order_by(Campaign.id.desc())
    )
    return [campaign_body(c, Role.OWNER if user.is_admin else role) for c, role in rows]


@bp.post("")
@bp.input(CampaignIn, arg_name="body")
@bp.output(CampaignOut, status_code=201)
@bp.doc(security=SIGNED_IN)
def create(body: dict) -> dict:
    """Create a campaign

    Any signed-in user may; they become its owner.
    """
    user = current_user()
    campaign = Campaign(name=body["name"], description=body["description"],
                        target=body["target"], settings=_clean(body["settings"]),
                        created_by=user)
    campaign.memberships.append(Membership(user=user, role=Role.OWNER))
    db.session.add(campaign)
    db.session.commit()
    return campaign_body(campaign, Role.OWNER)


@bp.get("/<int:campaign_id>")
@bp.output(CampaignOut)
@bp.doc(security=SIGNED_IN)
def get(campaign_id: int) -> dict:
    """One campaign (members)"""
    campaign, role = campaign_access(campaign_id, Role.VIEWER)
    return campaign_body(campaign, role)


@bp.patch("/<int:campaign_id>")
@bp.input(CampaignUpdateIn, arg_name="body")
@bp.output(CampaignOut)
@bp.doc(security=SIGNED_IN, responses=[403])
def update(campaign_id: int, body: dict) -> dict:
    """Change a campaign (owners)

    Fields left out are kept. Settings are merged key by key: a key given replaces the stored
    one (null clears it), keys left out are kept.
    """
    campaign, role = campaign_access(campaign_id, Role.OWNER)
    for field in ("name", "description", "target"):
        if field in body:
            setattr(campaign, field, body[field])
    if "settings" in body:
        merged = {**campaign.settings, **body["settings"]}
        errors = CampaignSettingsSchema().validate(merged)
        if errors:
            abort(422, "the settings, merged with the stored ones, are not valid",
                  extra_data={"errors": {"json": {"settings": errors}}})
        campaign.settings = _clean(merged)
    db.session.commit()
    return campaign_body(campaign, role)


@bp.delete("/<int:campaign_id>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN, responses=[403])
def delete(campaign_id: int) -> tuple[str, int]:
    """Delete a campaign (owners)

    Deletes its seeds, memberships, labels and label history with it, and its export files.
    """
    campaign, _ = campaign_access(campaign_id, Role.OWNER)
    db.session.delete(campaign)
    db.session.commit()
    shutil.rmtree(campaign_exports_dir(current_app.config["EXPORTS_DIR"], campaign_id),
                  ignore_errors=True)
    return "", 204


def _clean(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as stored: keys set to null are dropped (null and absent mean the same)."""
    return {key: value for key, value in settings.items() if value is not None}
