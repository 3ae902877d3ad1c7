"""Schemas of candidate pages."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import DateTime, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from ml.probe import STRATEGIES

PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 48, 200


class CandidateQuery(Schema):
    limit = Integer(load_default=PAGE_LIMIT_DEFAULT, validate=Range(1, PAGE_LIMIT_MAX))
    cursor = String(validate=Length(1, 500), metadata={
        "description": "next_cursor of the previous page (none: the first page)"})
    mag_window = Float(validate=Range(0.01, 10), metadata={
        "description": "|Δmag_r| to the seeds (default: the campaign's setting)"})
    mag_r_min = Float(validate=Range(0, 40), metadata={"description": "default: the campaign's"})
    mag_r_max = Float(validate=Range(0, 40), metadata={"description": "default: the campaign's"})
    source_type = List(String(validate=Length(1, 16)), metadata={
        "description": "repeat for several (default: the campaign's source_types)"})
    strategy = String(validate=OneOf(STRATEGIES), metadata={
        "description": "probe pages: 'top', 'uncertainty' or 'mix' (default: the campaign's "
                       "probe_strategy)"})


class CandidateOut(Schema):
    object_id = Integer(required=True)
    score = Float(required=True, metadata={
        "description": "order 'similarity': best cosine similarity to a seed; order 'probe': "
                       "the probe's probability that the object is a target"})
    ra = Float(required=True, metadata={"description": "degrees"})
    dec = Float(required=True, metadata={"description": "degrees"})
    mag_r = Float(allow_none=True, metadata={"description": "r magnitude (null: no flux)"})
    handed_out_until = DateTime(allow_none=True, metadata={
        "description": "hand-out campaigns: when this object returns to the pool unless you "
                       "label it (null: not handed out)"})


class CandidatePageOut(Schema):
    items = Nested(CandidateOut, many=True, required=True)
    next_cursor = String(allow_none=True, metadata={
        "description": "pass as cursor for the next page; null: no more candidates"})
    order = String(required=True, metadata={
        "description": "what ordered the page: 'similarity' (to the seeds) or 'probe' (the "
                       "campaign's newest probe)"})
    probe_version = Integer(allow_none=True, metadata={
        "description": "the probe version that ordered the page (null: similarity)"})
    strategy = String(allow_none=True, metadata={
        "description": "the probe strategy of the page: top, uncertainty or mix (null: "
                       "similarity)"})
    skipped_seeds = List(Integer(), required=True, metadata={
        "description": "seeds this bundle cannot use (made for another bundle or model)"})
