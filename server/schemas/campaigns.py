"""Schemas of campaigns, their settings and members."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Enum, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from ml.probe.orders import STRATEGIES as PROBE_STRATEGIES
from server.models.campaigns import CAMPAIGN_NAME_MAX, CAMPAIGN_TARGET_MAX, Role
from server.models.users import USERNAME_MAX
from server.teams.rules import MAX_HANDOUT_MINUTES, MAX_OVERLAP, TIE_RULES

DESCRIPTION_MAX = 10_000
SOURCE_TYPE_MAX = 16


class CampaignSettingsSchema(Schema):
    """A campaign's search settings (stored as JSON; every key optional)."""

    mag_window = Float(allow_none=True, validate=Range(min=0.01, max=10),
                       metadata={"description": "keep only candidates with |Δmag_r| to the "
                                                "seed below this (the paper uses 0.5); null: "
                                                "no window"})
    mag_r_min = Float(allow_none=True, validate=Range(min=0, max=40),
                      metadata={"description": "brightest r magnitude shown"})
    mag_r_max = Float(allow_none=True, validate=Range(min=0, max=40),
                      metadata={"description": "faintest r magnitude shown"})
    source_types = List(String(validate=Length(1, SOURCE_TYPE_MAX)), allow_none=True,
                        validate=Length(max=32),
                        metadata={"description": "catalog source types to show (for "
                                                 "example DEV, EXP, REX, SER); null: all"})
    # the campaign's probe (server.probe.settings documents each, with its default)
    probe_strategy = String(allow_none=True, validate=OneOf(PROBE_STRATEGIES), metadata={
        "description": "the order of candidate pages once a probe is trained: 'top' (highest "
                       "probability first, the default), 'uncertainty' (nearest 0.5 first) or "
                       "'mix' (the two alternated)"})
    probe_unlabeled_weight = Float(allow_none=True, validate=Range(min=0, max=1), metadata={
        "description": "weight of each unlabeled object drawn as a weak negative, relative to "
                       "a rejected object (default 0.1; 0: none)"})
    # team campaigns (server.teams.rules documents each, with its default)
    handout = Boolean(allow_none=True, metadata={
        "description": "hand candidate pages out, so that labelers do not get the same objects "
                       "at the same time (default false)"})
    overlap = Integer(allow_none=True, validate=Range(1, MAX_OVERLAP), metadata={
        "description": "with handout: how many labelers each object is handed to (default 1; "
                       "2 or more measures agreement)"})
    handout_minutes = Float(allow_none=True, validate=Range(1, MAX_HANDOUT_MINUTES), metadata={
        "description": "with handout: an object not labeled this long after it was handed out "
                       "returns to the pool (default 30)"})
    consensus_min_votes = Integer(allow_none=True, validate=Range(1, MAX_OVERLAP), metadata={
        "description": "labels an object needs before it has a consensus (default 1)"})
    consensus_tie = String(allow_none=True, validate=OneOf(TIE_RULES), metadata={
        "description": "the consensus when the most-voted values tie: 'unsure', 'reject' or "
                       "'none' (no consensus); default 'unsure'"})

    @validates_schema
    def _magnitude_range(self, data, **kwargs):
        low, high = data.get("mag_r_min"), data.get("mag_r_max")
        if low is not None and high is not None and low > high:
            raise ValidationError("mag_r_min must not be fainter than mag_r_max", "mag_r_min")


class CampaignIn(Schema):
    name = String(required=True, validate=Length(1, CAMPAIGN_NAME_MAX),
                  metadata={"example": "strong lenses, DR9 south"})
    description = String(load_default="", validate=Length(max=DESCRIPTION_MAX))
    target = String(load_default="", validate=Length(max=CAMPAIGN_TARGET_MAX),
                    metadata={"description": "what the campaign looks for: lens, ring, merger "
                                             "or free text", "example": "lens"})
    settings = Nested(CampaignSettingsSchema, load_default=dict)


class CampaignUpdateIn(Schema):
    name = String(validate=Length(1, CAMPAIGN_NAME_MAX))
    description = String(validate=Length(max=DESCRIPTION_MAX))
    target = String(validate=Length(max=CAMPAIGN_TARGET_MAX))
    settings = Nested(CampaignSettingsSchema, metadata={
        "description": "keys given replace the stored ones; keys left out are kept"})


class CampaignOut(Schema):
    id = Integer(required=True)
    name = String(required=True)
    description = String(required=True)
    target = String(required=True)
    settings = Nested(CampaignSettingsSchema, required=True)
    created_by = String(allow_none=True, attribute="created_by.username",
                        metadata={"description": "username of the creator"})
    created_at = DateTime(required=True)
    updated_at = DateTime(required=True)
    role = Enum(Role, by_value=True, required=True,
                metadata={"description": "the caller's role (administrators act as owners)"})


class CampaignListQuery(Schema):
    scope = String(load_default="member", validate=OneOf(["member", "all"]), metadata={
        "description": "'member': campaigns you belong to; 'all' (administrators only): every "
                       "campaign"})


class MemberIn(Schema):
    username = String(required=True, validate=Length(1, USERNAME_MAX))
    role = Enum(Role, by_value=True, required=True)


class MemberUpdateIn(Schema):
    role = Enum(Role, by_value=True, required=True)


class MemberOut(Schema):
    user_id = Integer(required=True)
    username = String(required=True, attribute="user.username")
    role = Enum(Role, by_value=True, required=True)
    created_at = DateTime(required=True)
