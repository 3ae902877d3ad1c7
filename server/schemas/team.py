"""Schemas of a team campaign's consensus, agreement and progress."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Dict, Enum, Float, Integer, List, Nested, String
from apiflask.validators import OneOf, Range

from server.models.campaigns import Role
from server.schemas.labels import OBJECT_ID_MAX, PAGE_LIMIT_MAX
from server.teams.consensus import BASIS_LABELS, BASIS_SOURCE, VALUES

CONSENSUS_FILTERS = (*VALUES, "none")
WINDOW_MINUTES_MAX = 30 * 24 * 60


class ConsensusQuery(Schema):
    value = List(String(validate=OneOf(CONSENSUS_FILTERS)), metadata={
        "description": "only objects whose consensus is one of these (repeat the parameter); "
                       "'none': no consensus yet (too few votes, or a tie under the 'none' "
                       "rule)"})
    basis = String(validate=OneOf([BASIS_LABELS, BASIS_SOURCE]), metadata={
        "description": "only consensus from the team's labels, or only from imported sources"})
    after = Integer(load_default=-1, validate=Range(-1, OBJECT_ID_MAX), metadata={
        "description": "cursor: the next_after of the previous page (objects in id order)"})
    limit = Integer(load_default=200, validate=Range(1, PAGE_LIMIT_MAX))


class ConsensusOut(Schema):
    object_id = Integer(required=True)
    consensus = String(allow_none=True, metadata={
        "description": "accept, reject or unsure; null: none yet"})
    basis = String(allow_none=True, metadata={
        "description": "'labels' (the team's votes), 'source' (imported labels, until the team "
                       "has enough votes) or null"})
    n_accept = Integer(required=True)
    n_reject = Integer(required=True)
    n_unsure = Integer(required=True)
    n_votes = Integer(required=True, metadata={"description": "the team's labels"})
    n_source = Integer(required=True, metadata={"description": "imported labels"})


class ConsensusRulesOut(Schema):
    min_votes = Integer(required=True)
    tie = String(required=True)


class ConsensusPageOut(Schema):
    items = Nested(ConsensusOut, many=True, required=True)
    next_after = Integer(allow_none=True, metadata={
        "description": "pass as 'after' for the next page; null: this was the last page"})
    rules = Nested(ConsensusRulesOut, required=True)


class UserRef(Schema):
    id = Integer(required=True)
    username = String(required=True)


class FleissOut(Schema):
    kappa = Float(allow_none=True, metadata={
        "description": "Fleiss' kappa (null: undefined, e.g. no object with two labels)"})
    items = Integer(required=True, metadata={"description": "objects with at least two labels"})
    ratings = Integer(required=True, metadata={"description": "labels on those objects"})
    observed = Float(allow_none=True, metadata={"description": "mean agreement per object"})
    expected = Float(allow_none=True, metadata={"description": "agreement expected by chance"})
    category_share = Dict(String(), Float(), required=True)
    raters_min = Integer(required=True)
    raters_max = Integer(required=True)


class CohenOut(Schema):
    user_a = Nested(UserRef, required=True)
    user_b = Nested(UserRef, required=True)
    overlap = Integer(required=True, metadata={"description": "objects both labeled"})
    observed = Float(required=True)
    expected = Float(required=True)
    kappa = Float(allow_none=True, metadata={"description": "Cohen's kappa (null: undefined)"})
    confusion = List(List(Integer()), required=True, metadata={
        "description": "3 x 3 counts, rows user_a's value, columns user_b's, in the order "
                       "accept, reject, unsure"})


class AgreementOut(Schema):
    fleiss = Nested(FleissOut, required=True)
    pairs = Nested(CohenOut, many=True, required=True)


class ProgressQuery(Schema):
    window_minutes = Float(load_default=60, validate=Range(1, WINDOW_MINUTES_MAX), metadata={
        "description": "the recent window the rate is measured over"})


class LabelerProgressOut(Schema):
    user = Nested(UserRef, required=True)
    role = Enum(Role, by_value=True, allow_none=True, metadata={
        "description": "null: no longer a member"})
    counts = Dict(String(), Integer(), required=True, metadata={
        "description": "current labels per value"})
    total = Integer(required=True)
    recent = Integer(required=True, metadata={"description": "label writes in the window"})
    per_hour = Float(required=True, metadata={"description": "label writes per hour in the "
                                                             "window"})
    last_active = DateTime(allow_none=True)
    outstanding = Integer(required=True, metadata={
        "description": "objects handed to them and not labeled yet"})


class ProgressOut(Schema):
    window_minutes = Float(required=True)
    labelers = Nested(LabelerProgressOut, many=True, required=True)
    consensus = Dict(String(), Integer(), required=True, metadata={
        "description": "objects per consensus value ('none': voted but no consensus yet)"})
