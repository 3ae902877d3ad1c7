"""Schemas of survey objects and their images."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Dict, Float, Integer, List, Nested, Raw, String
from apiflask.validators import Range

from server.cutouts import BRIGHTNESS_MAX, BRIGHTNESS_MIN, SIZE_MAX, SIZE_MIN


class CutoutQuery(Schema):
    size = Integer(validate=Range(SIZE_MIN, SIZE_MAX), metadata={
        "description": "width = height in pixels (default: the survey's cutout size)"})
    brightness = Float(load_default=1.0, validate=Range(BRIGHTNESS_MIN, BRIGHTNESS_MAX),
                       metadata={"description": "multiplies the stretch's band scales "
                                                "(rounded to 0.01)"})


class ObjectQuery(Schema):
    neighbours = Integer(load_default=16, validate=Range(0, 200), metadata={
        "description": "how many most similar objects to list (0: none)"})
    mag_window = Float(validate=Range(0.01, 10), metadata={
        "description": "neighbours within |Δmag_r| of this object only"})


class NeighbourOut(Schema):
    object_id = Integer(required=True)
    score = Float(required=True, metadata={"description": "cosine similarity"})


class ObjectOut(Schema):
    object_id = Integer(required=True)
    ra = Float(required=True, metadata={"description": "degrees"})
    dec = Float(required=True, metadata={"description": "degrees"})
    mag_r = Float(allow_none=True, metadata={"description": "r magnitude (null: no flux)"})
    catalog = Dict(keys=String(), values=Raw(), required=True, metadata={
        "description": "every catalog column of the survey (flux, psfsize, psfdepth: g, r, z)"})
    viewer_url = String(required=True, metadata={
        "description": "the object in the Legacy Surveys sky viewer"})
    neighbours = List(Nested(NeighbourOut), allow_none=True, metadata={
        "description": "most similar objects first (null: the server has no search bundle)"})
